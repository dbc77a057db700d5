package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/bookshelf/bookshelf/internal/kafka"
	"github.com/bookshelf/bookshelf/internal/registry"
	"github.com/bookshelf/bookshelf/internal/web"
)

// The operations console's outside parts: the registry's instances and
// the dead-letter topic, adapted to what package web asks for.

// Instances lists a service's healthy instances for the console, with the
// version each registered with.
func (r *resolver) Instances(ctx context.Context, service string) ([]web.Instance, error) {
	ins, err := r.reg.Healthy(ctx, service)
	if err != nil {
		// As Resolve does: the last answer stands in for a while.
		urls, rerr := r.Resolve(ctx, service)
		if rerr != nil {
			return nil, rerr
		}
		out := make([]web.Instance, len(urls))
		for i, u := range urls {
			out[i] = web.Instance{ID: strings.TrimPrefix(u, "http://"), URL: u}
		}
		return out, nil
	}
	out := make([]web.Instance, len(ins))
	for i, in := range ins {
		out[i] = web.Instance{ID: in.ID, URL: in.URL(), Version: in.Meta["version"]}
	}
	return out, nil
}

// deadLetterTopic is the dead-letter topic of cfg, read and redriven as
// `bookshelf dlq` does.
type deadLetterTopic struct {
	cfg kafka.Config
	// reg, when set, is where the brokers are found at each request, for
	// a gateway that has no --broker: the registry's healthy kafka.
	reg registry.Registry
}

// config is cfg with the brokers the registry knows now, when it is asked.
func (t deadLetterTopic) config(ctx context.Context) (kafka.Config, error) {
	if t.reg == nil {
		return t.cfg, nil
	}
	ins, err := t.reg.Healthy(ctx, registry.Kafka)
	if err != nil {
		return t.cfg, fmt.Errorf("find the brokers in the registry: %w", err)
	}
	if len(ins) == 0 {
		return t.cfg, errors.New("the registry knows no healthy kafka")
	}
	cfg := t.cfg
	cfg.Brokers = nil
	for _, in := range ins {
		cfg.Brokers = append(cfg.Brokers, in.HostPort())
	}
	return cfg, nil
}

func (t deadLetterTopic) List(ctx context.Context) ([]web.DeadLetter, error) {
	cfg, err := t.config(ctx)
	if err != nil {
		return nil, err
	}
	ds, err := kafka.ReadDeadLetters(ctx, cfg)
	if err != nil {
		return nil, err
	}
	out := make([]web.DeadLetter, len(ds))
	for i, d := range ds {
		out[i] = t.toWeb(d)
	}
	return out, nil
}

func (t deadLetterTopic) toWeb(d kafka.DeadLetter) web.DeadLetter {
	w := web.DeadLetter{
		ID: d.ID(), Origin: d.Origin(), OriginTopic: d.OriginTopic, Time: d.Time.UTC(), Error: d.Error, By: d.By,
		Redriven: d.Redriven, RedrivenTo: d.RedrivenTo, Size: len(d.Value), Headers: map[string]string{},
	}
	if err := d.Redrivable(t.cfg.Topics, 0); err != nil {
		w.NotRedrivable = err.Error()
	}
	for _, h := range d.Headers {
		w.Headers[h.Key] = printable(h.Value)
		if h.Key == "traceparent" {
			w.TraceID = traceID(string(h.Value))
		}
	}
	if utf8.Valid(d.Value) {
		w.Value = string(d.Value)
	} else {
		w.Value, w.ValueBase64 = base64.StdEncoding.EncodeToString(d.Value), true
	}
	return w
}

// traceID is the trace id of a W3C traceparent, 00-<trace>-<span>-<flags>,
// "" if it is not one.
func traceID(tp string) string {
	parts := strings.Split(strings.TrimSpace(tp), "-")
	if len(parts) != 4 || len(parts[1]) != 32 || strings.Trim(parts[1], "0123456789abcdef") != "" || strings.Trim(parts[1], "0") == "" {
		return ""
	}
	return parts[1]
}

func (t deadLetterTopic) Redrive(ctx context.Context, ids []string, origin string, value []byte) ([]web.Redriven, error) {
	cfg, err := t.config(ctx)
	if err != nil {
		return nil, err
	}
	match, done := redriveMatch(ids, origin)
	res, err := kafka.Redrive(ctx, cfg, match, kafka.RedriveOpts{Value: value})
	if errors.Is(err, kafka.ErrNothingToRedrive) {
		switch {
		case origin != "" && *done > 0:
			return nil, fmt.Errorf("%w: the %s from %s %s redriven already", web.ErrNoDeadLetter, plural(*done, "dead letter"), origin, isAre(*done))
		case origin != "":
			return nil, fmt.Errorf("%w: no dead letter in %s came from %s", web.ErrNoDeadLetter, t.cfg.Topics.DLQ, origin)
		}
		return nil, fmt.Errorf("%w: no dead letter %s in %s", web.ErrNoDeadLetter, strings.Join(ids, ", "), t.cfg.Topics.DLQ)
	}
	out := make([]web.Redriven, 0, len(res)+len(ids))
	for _, r := range res {
		x := web.Redriven{ID: r.DeadLetter.ID(), To: r.To}
		if r.Err != nil {
			x.Error = r.Err.Error()
		}
		out = append(out, x)
	}
	for _, id := range ids {
		if !slicesHasID(res, id) && err == nil {
			out = append(out, web.Redriven{ID: id, Error: "no dead letter " + id + " in " + t.cfg.Topics.DLQ})
		}
	}
	return out, err
}

// redriveMatch picks the dead letters of a redrive: those named by ids,
// or every one from origin not redriven yet (running the same redrive
// twice sends nothing the second time); done counts those from origin
// passed over for being redriven already.
func redriveMatch(ids []string, origin string) (match func(kafka.DeadLetter) bool, done *int) {
	done = new(int)
	return func(d kafka.DeadLetter) bool {
		if origin != "" {
			if d.OriginTopic == origin && d.RedrivenTo != "" {
				*done++
				return false
			}
			return d.OriginTopic == origin
		}
		for _, id := range ids {
			if d.ID() == id {
				return true
			}
		}
		return false
	}, done
}
