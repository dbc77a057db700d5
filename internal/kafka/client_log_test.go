package kafka

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
)

// The client's log follows the service's level: its debug lines reach a
// service that logs at debug, and only its warnings and errors otherwise.
func TestClientLogFollowsTheLevel(t *testing.T) {
	for _, tc := range []struct {
		level slog.Level
		want  kgo.LogLevel
	}{{slog.LevelDebug, kgo.LogLevelDebug}, {slog.LevelInfo, kgo.LogLevelWarn}, {slog.LevelWarn, kgo.LogLevelWarn}} {
		var buf bytes.Buffer
		l := kgoLogger{slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.level}))}
		if got := l.Level(); got != tc.want {
			t.Errorf("service at %v: the client logs at %v, want %v", tc.level, got, tc.want)
		}
		l.Log(kgo.LogLevelWarn, "broker away", "addr", "127.0.0.1:9092")
		if !strings.Contains(buf.String(), `msg="kafka: broker away" addr=127.0.0.1:9092`) {
			t.Errorf("the warning did not reach the log: %q", buf.String())
		}
	}
}
