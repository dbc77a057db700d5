package main

import (
	"fmt"

	"github.com/bookshelf/bookshelf/internal/registry"
	"github.com/bookshelf/bookshelf/internal/tracing"
)

// startTracing sets up the traces of one service instance from the
// standard OTEL_* variables (see tracing.Start): off unless they ask for
// an exporter.
func startTracing(in registry.Instance, o serviceFlags) (*tracing.Provider, error) {
	tp, err := tracing.Start(tracing.Settings{Service: in.Service, Fixed: o.several, Instance: in.ID, Version: version})
	if err != nil {
		return nil, fmt.Errorf("traces of %s: %w", in.Service, err)
	}
	return tp, nil
}

// logFormatFlag adds --log-format.
func (o *serviceFlags) logFormatFlag(f *flags) {
	f.str(&o.logFormat, "log-format", "text", "text (for people) or json (for machines); a line logged within a trace carries trace_id and span_id")
}
