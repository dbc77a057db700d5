package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// startUpInProcess runs `bookshelf up` in this process, on free ports,
// until the test ends, and waits for every service to be ready. Every
// service then shares the process, as under `up`: their metrics must not
// collide.
func startUpInProcess(t *testing.T, ports map[string]int, extra ...string) {
	t.Helper()
	args := []string{"up", "--data-dir", filepath.Join(t.TempDir(), "data"), "--log-level", "warn"}
	for name, p := range ports {
		args = append(args, fmt.Sprintf("--%s-port=%d", name, p))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	out := &lockedBuffer{}
	go func() { done <- run(ctx, append(args, extra...), out, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("up: %v\n%s", err, out.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for _, svc := range []string{"books", "lastread", "catalog", "stats", "gateway"} {
		for {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[svc]))
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			select {
			case err := <-done:
				t.Fatalf("up stopped: %v\n%s", err, out.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never became ready\n%s", svc, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// scrapeFamilies parses a service's /metrics.
func scrapeFamilies(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", url, resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return fams
}

// Every service's /metrics has the families the README lists, each of
// its type; the Kafka clients' own (kprom) are there for each client
// role, several services in one process notwithstanding.
func TestMetricFamiliesOfEveryService(t *testing.T) {
	ports := newPorts(t)
	startUpInProcess(t, ports)
	gw := fmt.Sprintf("http://127.0.0.1:%d", ports["gateway"])
	add := postJSON(t, gw+"/books", `{"title":"Solaris","authors":["Stanisław Lem"]}`)
	if add.status != 201 {
		t.Fatalf("add: %d %s", add.status, add.body)
	}
	var b bookJSON
	add.json(t, &b)
	read := do(t, "POST", gw+"/books/"+b.ID+"/read", "", nil)
	if read.status != 200 {
		t.Fatalf("read: %d %s", read.status, read.body)
	}
	for _, path := range []string{"/books/" + b.ID, "/stats", "/books/last-read"} {
		getAt(t, gw+path, read.header.Get("Bookshelf-Position"))
	}

	common := map[string]dto.MetricType{
		"go_goroutines":                           dto.MetricType_GAUGE,
		"process_start_time_seconds":              dto.MetricType_GAUGE,
		"bookshelf_build_info":                    dto.MetricType_GAUGE,
		"bookshelf_http_request_duration_seconds": dto.MetricType_HISTOGRAM,
		"go_sched_latencies_seconds":              dto.MetricType_HISTOGRAM,
	}
	// What tells why commands were shed, where commands are taken.
	gate := map[string]dto.MetricType{
		"bookshelf_sched_latency_seconds":  dto.MetricType_GAUGE,
		"bookshelf_sched_commands_allowed": dto.MetricType_GAUGE,
		"bookshelf_sched_cuts_total":       dto.MetricType_COUNTER,
	}
	kafkaClient := map[string]dto.MetricType{
		"bookshelf_kafka_connects_total":                 dto.MetricType_COUNTER,
		"bookshelf_kafka_read_bytes_total":               dto.MetricType_COUNTER,
		"bookshelf_kafka_write_bytes_total":              dto.MetricType_COUNTER,
		"bookshelf_kafka_request_duration_e2e_seconds":   dto.MetricType_HISTOGRAM,
		"bookshelf_kafka_buffered_fetch_records_total":   dto.MetricType_GAUGE,
		"bookshelf_kafka_buffered_produce_records_total": dto.MetricType_GAUGE,
	}
	view := map[string]dto.MetricType{
		"bookshelf_view_apply_lag_seconds":      dto.MetricType_HISTOGRAM,
		"bookshelf_view_lag_records":            dto.MetricType_GAUGE,
		"bookshelf_view_lag_seconds":            dto.MetricType_GAUGE,
		"bookshelf_view_position_records":       dto.MetricType_GAUGE,
		"bookshelf_events_applied_total":        dto.MetricType_COUNTER,
		"bookshelf_records_dead_lettered_total": dto.MetricType_COUNTER,
		"bookshelf_kafka_fetch_records_total":   dto.MetricType_COUNTER,
	}
	want := map[string]map[string]dto.MetricType{
		"books": {
			"bookshelf_command_duration_seconds":     dto.MetricType_HISTOGRAM,
			"bookshelf_command_decision_seconds":     dto.MetricType_HISTOGRAM,
			"bookshelf_commands_decided_total":       dto.MetricType_COUNTER,
			"bookshelf_commands_dead_lettered_total": dto.MetricType_COUNTER,
			"bookshelf_partition_owner_info":         dto.MetricType_GAUGE,
			"bookshelf_group_lag_records":            dto.MetricType_GAUGE,
			"bookshelf_http_shed_total":              dto.MetricType_COUNTER,
			"bookshelf_kafka_produce_records_total":  dto.MetricType_COUNTER,
			"bookshelf_kafka_fetch_records_total":    dto.MetricType_COUNTER,
		},
		"lastread": view, "catalog": view, "stats": view,
		"gateway": {"bookshelf_gateway_attempts_total": dto.MetricType_COUNTER},
	}
	for svc, fams := range want {
		got := scrapeFamilies(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[svc]))
		check := func(name string, typ dto.MetricType) {
			f, ok := got[name]
			switch {
			case !ok:
				t.Errorf("%s: no %s", svc, name)
			case f.GetType() != typ:
				t.Errorf("%s: %s is a %s, want a %s", svc, name, f.GetType(), typ)
			case len(f.GetMetric()) == 0:
				t.Errorf("%s: %s has no series", svc, name)
			}
		}
		for name, typ := range common {
			check(name, typ)
		}
		for name, typ := range fams {
			check(name, typ)
		}
		if svc == "books" || svc == "gateway" {
			for name, typ := range gate {
				check(name, typ)
			}
		}
		if svc != "gateway" {
			for name, typ := range kafkaClient {
				check(name, typ)
			}
		}
		for name := range got {
			if strings.HasPrefix(name, "bookshelf_") && strings.HasSuffix(name, "_total") && got[name].GetType() == dto.MetricType_GAUGE &&
				!strings.HasPrefix(name, "bookshelf_kafka_buffered_") {
				t.Errorf("%s: %s ends in _total but is a gauge", svc, name)
			}
		}
	}

	// The aggregate owns every partition here, one instance alone, and the
	// group has decided what it was sent; the clients are told apart.
	books := scrapeFamilies(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", ports["books"]))
	if n := len(books["bookshelf_partition_owner_info"].GetMetric()); n != defaultPartitions {
		t.Errorf("books owns %d partitions, want %d", n, defaultPartitions)
	}
	clients := map[string]bool{}
	for _, m := range books["bookshelf_kafka_connects_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "client" {
				clients[l.GetValue()] = true
			}
		}
	}
	for _, c := range []string{"processor", "submitter", "replies", "probe"} {
		if !clients[c] {
			t.Errorf("books: no Kafka client metrics of the %s (%v)", c, clients)
		}
	}
	var decided uint64
	for _, m := range books["bookshelf_command_decision_seconds"].GetMetric() {
		decided += m.GetHistogram().GetSampleCount()
	}
	if decided < 2 {
		t.Errorf("decision latency of %d commands, want 2", decided)
	}
	cat := scrapeFamilies(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", ports["catalog"]))
	if n := cat["bookshelf_view_apply_lag_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(); n < 2 {
		t.Errorf("the catalog observed the apply lag of %d events, want 2", n)
	}
}
