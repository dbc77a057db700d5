package web

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// FuzzParseSamples holds the console's reader of /metrics to the
// Prometheus text format as the Prometheus project reads it: whatever
// exposition expfmt's parser accepts, parseSamples reads into the same
// samples (names, labels, values); and nothing makes it panic. Comment
// lines are dropped first, so every sample is untyped and expfmt keeps
// each line's own name (x_bucket, x_sum), as parseSamples does.
func FuzzParseSamples(f *testing.F) {
	for _, seed := range []string{
		"bookshelf_commands_decided_total 12\n",
		"# HELP x a gauge\n# TYPE x gauge\nx{a=\"1\",b=\"two words\"} 3.5\n",
		"h_bucket{le=\"0.005\"} 1\nh_bucket{le=\"+Inf\"} 4\nh_sum 0.25\nh_count 4\n",
		"x{a=\"quote \\\" backslash \\\\ newline \\n\"} -1e-3 1700000000000\n",
		"x{a=\"1\",} NaN\ny +Inf\nz -Inf\n",
		"  x{ a = \"1\" } 2\n",
		"x{a=\"1\"}2\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		got := parseSamples(text) // must not panic, whatever the text
		var lines []string
		for line := range strings.Lines(text) {
			trimmed := strings.TrimLeft(line, " \t")
			name, _, _ := strings.Cut(trimmed, "{")
			name, _, _ = strings.Cut(name, " ")
			name, _, _ = strings.Cut(name, "\t")
			switch {
			case strings.HasPrefix(trimmed, "{"), strings.Contains(name, `"`):
				// A quoted name, inside the braces or (as expfmt also
				// takes it) in the name itself, as in A"b"0: Prometheus
				// 3's form for names outside [a-zA-Z_:][a-zA-Z0-9_:]*.
				// No service of ours writes one, and the console does
				// not read it.
				return
			case !strings.HasPrefix(trimmed, "#"):
				lines = append(lines, line)
			}
		}
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(strings.Join(lines, "")))
		if err != nil {
			return // not an exposition Prometheus reads: ours may read less or more
		}
		var want []string
		for name, fam := range fams {
			for _, m := range fam.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				want = append(want, sampleKey(name, labels, m.GetUntyped().GetValue()))
			}
		}
		var have []string
		for _, s := range got {
			have = append(have, sampleKey(s.name, s.labels, s.value))
		}
		slices.Sort(want)
		slices.Sort(have)
		if !slices.Equal(have, want) {
			t.Fatalf("%q\nexpfmt reads %q\nparseSamples %q", text, want, have)
		}
	})
}

// sampleKey writes a sample out for comparison, labels in order and NaN
// equal to itself.
func sampleKey(name string, labels map[string]string, v float64) string {
	var b strings.Builder
	b.WriteString(name)
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%q", k, labels[k])
	}
	if math.IsNaN(v) {
		return b.String() + " NaN"
	}
	return fmt.Sprintf("%s %v", b.String(), v)
}
