package main

import (
	"context"
	"errors"
	"testing"

	"github.com/bookshelf/bookshelf/internal/registry"
)

// flakyRegistry answers Healthy from a fixed list, or fails while down.
type flakyRegistry struct {
	registry.Registry
	ins  []registry.Instance
	down bool
}

func (f *flakyRegistry) Healthy(context.Context, string) ([]registry.Instance, error) {
	if f.down {
		return nil, errors.New("connection refused")
	}
	return f.ins, nil
}

// While the registry does not answer, the gateway's resolver answers what
// it said last; without a last answer, the error.
func TestResolverStandsInForAnAbsentRegistry(t *testing.T) {
	reg := &flakyRegistry{ins: []registry.Instance{{Service: "books", ID: "b1", Address: "127.0.0.1", Port: 8081}}}
	r := newResolver(reg)
	ctx := context.Background()
	if urls, err := r.Resolve(ctx, "books"); err != nil || len(urls) != 1 {
		t.Fatalf("registry up: %v %v", urls, err)
	}
	reg.down = true
	if urls, err := r.Resolve(ctx, "books"); err != nil || len(urls) != 1 || urls[0] != "http://127.0.0.1:8081" {
		t.Errorf("registry down: %v %v, want the last answer", urls, err)
	}
	if _, err := r.Resolve(ctx, "booklist"); err == nil {
		t.Error("a service never resolved: no error")
	}
}
