package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bookshelf/bookshelf/internal/tracing"
)

// flags wraps a FlagSet whose every flag falls back to an environment
// variable BOOKSHELF_<NAME> (dashes as underscores), shown in --help.
type flags struct {
	*flag.FlagSet
	envErr error
	// wordy names the flags that take every word up to the next flag, as
	// the original's argparse took --tags: "--tags books last".
	wordy map[string]bool
}

func newFlags(name, summary string, stderr io.Writer) *flags {
	fs := flag.NewFlagSet("bookshelf "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &flags{FlagSet: fs, wordy: map[string]bool{}}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: bookshelf %s [flags]\n\n%s\n\nFlags (each also read from the environment variable shown):\n", name, summary)
		fs.PrintDefaults()
	}
	return f
}

func envName(flagName string) string {
	return "BOOKSHELF_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func (f *flags) str(p *string, name, def, usage string) {
	if v, ok := os.LookupEnv(envName(name)); ok {
		def = v
	}
	f.StringVar(p, name, def, usage+" ($"+envName(name)+")")
}

// words is str for a flag that takes several words, each its own
// argument (--tags books last) or one quoted argument ("books last"): they
// are joined with spaces.
func (f *flags) words(p *string, name, def, usage string) {
	f.str(p, name, def, usage)
	f.wordy[name] = true
}

// joinWords joins the words that follow a wordy flag into its value, so
// that the flag package, which stops at the first word that is not a
// flag, reads them as one.
func (f *flags) joinWords(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, value, inline := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		if !strings.HasPrefix(a, "-") || !f.wordy[name] {
			out = append(out, a)
			continue
		}
		var words []string
		if inline {
			words = append(words, value)
		}
		for i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			i++
			words = append(words, args[i])
		}
		if !inline && len(words) == 0 {
			out = append(out, a) // no value: the flag package says so
			continue
		}
		out = append(out, "--"+name+"="+strings.Join(words, " "))
	}
	return out
}

func (f *flags) int(p *int, name string, def int, usage string) {
	f.IntVar(p, name, fromEnv(f, name, def, strconv.Atoi, "an integer"), usage+" ($"+envName(name)+")")
}

func (f *flags) duration(p *time.Duration, name string, def time.Duration, usage string) {
	f.DurationVar(p, name, fromEnv(f, name, def, time.ParseDuration, "a duration such as 6s"), usage+" ($"+envName(name)+")")
}

// fromEnv is the flag's environment value when set, else def; a value
// that does not parse is kept as an error for parse to return.
func fromEnv[T any](f *flags, name string, def T, parseValue func(string) (T, error), want string) T {
	v, ok := os.LookupEnv(envName(name))
	if !ok {
		return def
	}
	x, err := parseValue(v)
	if err != nil {
		f.envErr = errors.Join(f.envErr, fmt.Errorf("$%s=%q: not %s", envName(name), v, want))
		return def
	}
	return x
}

// parse parses args; --help prints usage and returns errHelp's nil twin.
func (f *flags) parse(args []string) error {
	if err := f.Parse(f.joinWords(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelpShown
		}
		return errHelp
	}
	if f.NArg() > 0 {
		f.Usage()
		return fmt.Errorf("unexpected argument %q", f.Arg(0))
	}
	return f.envErr
}

// errHelpShown: --help was asked for and printed; not a failure.
var errHelpShown = errors.New("help shown")

// listen opens a TCP listener, turning a taken port into one line that
// names the port and the flag that changes it.
func listen(addr string, port int, flagName string) (net.Listener, error) {
	hp := net.JoinHostPort(addr, strconv.Itoa(port))
	ln, err := net.Listen("tcp", hp)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("port %d on %s is taken; choose another with --%s", port, addr, flagName)
		}
		return nil, fmt.Errorf("listen on %s (--%s): %w", hp, flagName, err)
	}
	return ln, nil
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// newLogger builds a service's logger: text for people or JSON for
// machines (format), each line logged within a trace carrying its
// trace_id and span_id.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler
	switch format {
	case "", "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
	log := slog.New(tracing.LogHandler(h))
	tracing.LogErrors(log)
	return log, nil
}
