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
	interval time.Duration // between pings
	timeout  time.Duration // for one ping's answer

	mu     sync.Mutex
	err    error // nil while the broker counts as answering
	set    bool  // a first answer came
	missed int   // pings missed in a row
}

// probeMisses is how many pings in a row the broker must miss to count
// as away once it has answered: one slow answer on a busy machine is not
// an outage, and would take every instance out of the registry at once.
const probeMisses = 2

// NewProbe returns a probe of cfg's brokers; Run must run for it to know.
func NewProbe(cfg Config) *Probe {
	return &Probe{cfg: cfg, log: cfg.logger(), interval: time.Second, timeout: 2 * time.Second}
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

// Run probes every second until ctx ends, logging each change. The broker
// counts as away once it has missed probeMisses pings in a row, or if it
// has not answered yet.
func (p *Probe) Run(ctx context.Context) error {
	cl, err := kgo.NewClient(append(p.cfg.baseOpts(), p.cfg.metered("probe")...)...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, p.timeout)
		err := cl.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		p.mu.Lock()
		if err == nil {
			p.missed = 0
		} else {
			p.missed++
		}
		if err != nil && p.set && p.err == nil && p.missed < probeMisses {
			err = nil // a first miss after answers: not away yet
		}
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
