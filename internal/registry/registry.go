// Package registry is the port through which services find each other: an
// Instance, the Registry interface, and Memory, the in-process
// implementation used when every service runs in one process. The Consul
// implementation lives in its own package and satisfies the same
// behaviour suite.
package registry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
)

// Service names under which the components register.
const (
	Books    = "books"
	LastRead = "lastreadbooks"
	Catalog  = "booklist"
	Stats    = "readingstats"
	Gateway  = "gateway"
	Kafka    = "kafka"
)

// Instance is one running copy of a service.
type Instance struct {
	// ID is unique among all instances of all services.
	ID      string
	Service string
	// Address and Port are where others reach it.
	Address string
	Port    int
	Tags    []string
	Meta    map[string]string
	// Check is how a registry with health checks probes the instance:
	// CheckHTTP (its /readyz and /healthz) unless it says CheckTCP (a
	// connection to its port, for a service that speaks no HTTP, such as
	// the broker).
	Check string
}

// Ways to check an instance.
const (
	CheckHTTP = ""
	CheckTCP  = "tcp"
)

// HostPort is "address:port".
func (i Instance) HostPort() string { return net.JoinHostPort(i.Address, strconv.Itoa(i.Port)) }

// URL is the instance's HTTP base URL.
func (i Instance) URL() string { return "http://" + i.HostPort() }

// Registry keeps track of instances.
type Registry interface {
	// Register announces an instance as ready to serve. Registering the
	// same ID again replaces it.
	Register(ctx context.Context, in Instance) error
	// Deregister withdraws an instance; an unknown ID is not an error.
	Deregister(ctx context.Context, id string) error
	// Healthy lists the instances of service that can take requests.
	Healthy(ctx context.Context, service string) ([]Instance, error)
}

// ErrInvalid is returned for an instance that cannot be registered.
var ErrInvalid = errors.New("invalid instance")

// Validate checks an instance before registration.
func (i Instance) Validate() error {
	switch {
	case i.ID == "":
		return fmt.Errorf("%w: no id", ErrInvalid)
	case i.Service == "":
		return fmt.Errorf("%w: no service name", ErrInvalid)
	case i.Address == "":
		return fmt.Errorf("%w: no address", ErrInvalid)
	case i.Port <= 0 || i.Port > 65535:
		return fmt.Errorf("%w: port %d", ErrInvalid, i.Port)
	}
	return nil
}

// Memory is an in-process registry: what the services of one process use to
// find each other. Every registered instance counts as healthy; services
// register only once ready and deregister before they stop.
type Memory struct {
	mu        sync.RWMutex
	instances map[string]Instance
}

// NewMemory returns an empty registry.
func NewMemory() *Memory { return &Memory{instances: map[string]Instance{}} }

// Register implements Registry.
func (m *Memory) Register(_ context.Context, in Instance) error {
	if err := in.Validate(); err != nil {
		return err
	}
	in.Tags = slices.Clone(in.Tags)
	m.mu.Lock()
	m.instances[in.ID] = in
	m.mu.Unlock()
	return nil
}

// Deregister implements Registry.
func (m *Memory) Deregister(_ context.Context, id string) error {
	m.mu.Lock()
	delete(m.instances, id)
	m.mu.Unlock()
	return nil
}

// Healthy implements Registry. Instances come in ID order.
func (m *Memory) Healthy(_ context.Context, service string) ([]Instance, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Instance
	for _, in := range m.instances {
		if in.Service == service {
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b Instance) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out, nil
}
