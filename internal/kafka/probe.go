package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Probe tells whether the broker answers now. A service reports itself not
// ready while it does not (so the registry stops sending it traffic), and
// refuses writes at once instead of letting them wait for a broker that is
// away.
type Probe struct {
	cfg      Config
	log      *slog.Logger
	interval time.Duration

	mu  sync.Mutex
	err error // nil while the broker answers
	set bool  // a first answer came
}

// NewProbe returns a probe of cfg's brokers; Run must run for it to know.
func NewProbe(cfg Config) *Probe {
	return &Probe{cfg: cfg, log: cfg.logger(), interval: time.Second}
}

// Err is nil while the broker answers, else why it does not; before the
// first probe it says so.
func (p *Probe) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.set {
		return errors.New("broker not probed yet")
	}
	return p.err
}

// Run probes every second until ctx ends, logging each change.
func (p *Probe) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(p.cfg.baseOpts()...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := cl.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		p.mu.Lock()
		changed := !p.set || (err == nil) != (p.err == nil)
		first := !p.set
		p.err, p.set = err, true
		p.mu.Unlock()
		switch {
		case changed && err != nil:
			p.log.Warn("the broker does not answer", "brokers", p.cfg.Brokers, "err", err)
		case changed && !first:
			p.log.Info("the broker answers again", "brokers", p.cfg.Brokers)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
