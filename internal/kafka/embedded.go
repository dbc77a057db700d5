package kafka

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is an embedded Kafka-protocol broker (franz-go's kfake), persisted
// on disk, for running the bookshelf with nothing installed. It speaks the
// protocol on a real TCP port, so kcat and every other client can use it.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
}

// BrokerConfig configures an embedded broker.
type BrokerConfig struct {
	// Addr is the host:port to listen on, 127.0.0.1:9092 by default.
	Addr string
	// DataDir keeps the log across restarts; empty keeps it in memory.
	DataDir string
	Logger  *slog.Logger
}

// StartBroker starts an embedded broker. The error wraps the listener's
// when the port is taken, so callers can say which flag to change.
func StartBroker(cfg BrokerConfig) (*Broker, error) {
	addr := cfg.Addr
	if addr == "" {
		addr = "127.0.0.1:9092"
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("broker address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("broker port %q: %w", portStr, err)
	}
	// kfake binds 127.0.0.1; listen where we were asked instead. It
	// advertises the port only, on the host it was asked for.
	listen := func(network, _ string) (net.Listener, error) {
		return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
	}
	opts := []kfake.Opt{
		kfake.Ports(port),
		kfake.ListenFn(listen),
		kfake.ClusterID("bookshelf"),
	}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("broker data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on %s: %w", addr, err)
	}
	return &Broker{cluster: c, addr: c.ListenAddrs()[0]}, nil
}

// Addr is where the broker listens, host:port.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker, flushing its log to disk.
func (b *Broker) Close() { b.cluster.Close() }

// Run serves until ctx ends, then closes the broker.
func (b *Broker) Run(ctx context.Context) error {
	<-ctx.Done()
	b.Close()
	return nil
}
