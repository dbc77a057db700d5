package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bookshelf/bookshelf/internal/load"
)

// make load, small and fast: every scenario runs against a bookshelf of
// the load's own, and its answers are correct. Its figures are not
// checked here: speed is measured by make load and make bench.
func TestLoadRunsEveryScenario(t *testing.T) {
	out := filepath.Join(t.TempDir(), "load.json")
	cmd := exec.Command(binary, "load", "--books", "3000", "--duration", "1s", "--rate", "200", "--query-rate", "50", "--json", out)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("bookshelf load: %v\n%s", err, b)
	}
	for _, want := range []string{"scenario", "commands past capacity", "last-read beside the commands", "catalog search, two words (bare)", "commands after (bare franz-go)", "RSS B/book"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the table lacks %q:\n%s", want, b)
		}
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Requests []load.Result
		CatchUps []catchUp `json:"catch_ups"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatalf("results %s: %v", raw, err)
	}
	rs := res.Requests
	if len(rs) != 14 {
		t.Fatalf("%d results, want 14:\n%s", len(rs), b)
	}
	for _, r := range rs {
		// Nothing unanswered, nothing but a success or a shed, and the
		// queries all answered: at these rates nothing is past capacity.
		if r.Sent == 0 || r.Errors > 0 || r.Failed > 0 || (!strings.HasPrefix(r.Name, "commands") && r.OK != r.Sent) {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
	// The views scenario checked each first answer against the log; it
	// measured each service.
	if len(res.CatchUps) != 4 {
		t.Fatalf("%d services caught up, want 4:\n%s", len(res.CatchUps), b)
	}
	for _, c := range res.CatchUps {
		if c.Ready <= 0 || c.RSS <= 0 || c.Records != 6000 {
			t.Errorf("%s: %+v", c.Service, c)
		}
	}
}
