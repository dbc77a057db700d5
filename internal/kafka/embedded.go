package kafka

import (
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
	// Advertise is the host clients are told to reach the broker at, when
	// it differs from Addr's (a wildcard address, say).
	Advertise string
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
	// kfake binds 127.0.0.1 and advertises its listener's address; listen
	// where we were asked instead, and advertise what we were told to.
	listen := func(network, _ string) (net.Listener, error) {
		ln, err := net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil || cfg.Advertise == "" {
			return ln, err
		}
		bound := ln.Addr().(*net.TCPAddr)
		return advertised{ln, &net.TCPAddr{IP: net.ParseIP(cfg.Advertise), Port: bound.Port}, cfg.Advertise}, nil
	}
	opts := []kfake.Opt{
		kfake.Ports(port),
		kfake.ListenFn(listen),
		kfake.ClusterID("bookshelf"),
		kfake.BrokerConfigs(embeddedBrokerConfigs),
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

// embeddedBrokerConfigs are the embedded broker's settings. Its consumer
// groups (KIP-848) take the heartbeat interval from the broker only, not
// from the group's config as Kafka does: 250 ms, the interval of a 1.5 s
// session (Config.heartbeatInterval), where the default is 5 s, which
// would hold a dead member's partitions up to 5 s past its session.
var embeddedBrokerConfigs = map[string]string{
	"group.consumer.heartbeat.interval.ms": "250",
}

// advertised is a listener that reports the address clients should use.
type advertised struct {
	net.Listener
	addr *net.TCPAddr
	host string
}

func (a advertised) Addr() net.Addr {
	if a.addr.IP == nil {
		// A host name: kfake only needs its String.
		return hostAddr(net.JoinHostPort(a.host, strconv.Itoa(a.addr.Port)))
	}
	return a.addr
}

// hostAddr is a net.Addr that is a host name and a port.
type hostAddr string

func (h hostAddr) Network() string { return "tcp" }
func (h hostAddr) String() string  { return string(h) }

// Addr is where clients reach the broker, host:port.
func (b *Broker) Addr() string { return b.addr }

// Close stops the broker, flushing its log to disk.
func (b *Broker) Close() { b.cluster.Close() }
