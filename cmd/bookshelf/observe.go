package main

import (
	"context"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/bookshelf/bookshelf/internal/kafka"
	"github.com/bookshelf/bookshelf/internal/metrics"
)

// serviceMetrics is a service's metrics registry, with what every
// service says of itself: bookshelf_build_info (its version, as the
// registry's metadata has it) beside the runtime's and the process's own
// (process_start_time_seconds gives its uptime).
func serviceMetrics() *metrics.Registry {
	reg := metrics.NewRegistry()
	reg.GaugeVec("bookshelf_build_info", "Always 1: the version of the binary and the Go it was built with.", "version", "goversion").
		With(version, runtime.Version()).Set(1)
	return reg
}

// viewLagBuckets are the bounds of the view apply lag, in seconds: an
// event written a moment ago is applied in milliseconds; a view that
// fell behind (a broker away, a freeze) catches up over seconds.
var viewLagBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// partitionMetrics publishes which command partitions a books instance
// owns, and how far the consumer group is behind on each of them (read
// with kadm at scrape time, reused for a second). Each instance publishes
// its own partitions only, so summing over instances counts each once.
func partitionMetrics(reg *metrics.Registry, proc *kafka.Processor, lag *kafka.GroupLag, log *slog.Logger) {
	reg.GaugeVecFunc("bookshelf_partition_owner_info", "Always 1, for each command partition this instance owns now.", []string{"partition"},
		func(emit func(float64, ...string)) {
			for _, p := range proc.Owned() {
				emit(1, strconv.Itoa(int(p)))
			}
		})
	var mu sync.Mutex
	lastErr := ""
	reg.GaugeVecFunc("bookshelf_group_lag_records", "Commands of each partition this instance owns not yet decided: the end offset less the group's committed one.",
		[]string{"partition"}, func(emit func(float64, ...string)) {
			owned := proc.Owned()
			if len(owned) == 0 {
				return
			}
			// Within a scraper's patience (the console waits 2 s for all
			// of /metrics): a slow broker leaves this gauge out of one
			// scrape rather than the whole scrape unanswered.
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			lags, err := lag.Lag(ctx)
			mu.Lock()
			if msg := errString(err); msg != lastErr {
				// Logged on a change only: scrapes come every few seconds.
				lastErr = msg
				if err != nil {
					log.Warn("the group's lag cannot be read", "err", err)
				}
			}
			mu.Unlock()
			for _, p := range owned {
				if n, ok := lags[p]; ok {
					emit(float64(n), strconv.Itoa(int(p)))
				}
			}
		})
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
