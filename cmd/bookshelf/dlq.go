package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/bookshelf/bookshelf/internal/kafka"
)

// dlqUsage is the help of `bookshelf dlq`.
const dlqUsage = `usage: bookshelf dlq <list|show|redrive> [flags] [dead letter ...]

The dead-letter topic (<topic>.dlq) holds the records a reader could not use,
with where each came from and why. A dead letter is named by its place in that
topic, partition:offset, as 'list' shows it.

  list                  every dead letter: id, origin topic/partition/offset, time, error
  show ID               one dead letter: its headers and its value
  redrive ID...         send dead letters back to the topic and partition they came from
  redrive --origin T    ... every dead letter that came from topic T

A redriven copy carries the header ` + kafka.HeaderRedriven + ` (how many times it has been
redriven); failing again, it is dead-lettered again with it, and redrive refuses it
after --max-redrives tries. Each redrive is recorded in the dead-letter topic, so a
dead letter is sent back once. What cannot be redriven is listed with the reason.

'bookshelf dlq <list|show|redrive> --help' shows the flags.`

func runDLQ(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, dlqUsage)
		if len(args) == 0 {
			return errHelp
		}
		return errHelpShown
	}
	verb, rest := args[0], args[1:]
	summaries := map[string]string{
		"list":    "List the dead letters: id (partition:offset in the dead-letter topic), origin, time, error.",
		"show":    "Show one dead letter, named by its id (partition:offset): its headers and its value.",
		"redrive": "Send dead letters back to the topic and partition they came from: the ones named by id,\nor with --origin every one that came from a topic.",
	}
	summary, ok := summaries[verb]
	if !ok {
		fmt.Fprintln(stderr, dlqUsage)
		return fmt.Errorf("dlq: unknown command %q: want list, show or redrive", verb)
	}
	f := newFlags("dlq "+verb, summary, stderr)
	var brokers, topic, origin, valueFile string
	var asJSON, dryRun bool
	var maxRedrives int
	f.str(&brokers, "broker", "127.0.0.1:9092", "Kafka brokers, host:port, comma-separated")
	f.str(&topic, "topic", kafka.DefaultTopic, "the event log's topic; the dead-letter topic is <topic>.dlq")
	switch verb {
	case "list":
		f.str(&origin, "origin", "", "only the dead letters that came from this topic")
		f.BoolVar(&asJSON, "json", false, "one JSON object per dead letter")
	case "show":
		f.BoolVar(&asJSON, "json", false, "as a JSON object")
	case "redrive":
		f.str(&origin, "origin", "", "redrive every dead letter that came from this topic")
		f.int(&maxRedrives, "max-redrives", kafka.DefaultMaxRedrives, "refuse a record redriven this many times already")
		f.str(&valueFile, "value-file", "", "send the contents of this file as the value instead (one dead letter, mended)")
		f.BoolVar(&dryRun, "dry-run", false, "say what would be redriven, send nothing")
	}
	ids, err := parseWithArgs(f, rest)
	if err != nil {
		return err
	}
	cfg := kafka.Config{Brokers: splitList(brokers), Topics: kafka.TopicsFor(topic)}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	switch verb {
	case "list":
		if len(ids) > 0 {
			return fmt.Errorf("dlq list takes no ids (use dlq show %s)", ids[0])
		}
		return dlqList(ctx, cfg, origin, asJSON, stdout)
	case "show":
		if len(ids) != 1 {
			return errors.New("dlq show takes one id, partition:offset, as dlq list shows it")
		}
		return dlqShow(ctx, cfg, ids[0], asJSON, stdout)
	}
	if (len(ids) == 0) == (origin == "") {
		return errors.New("dlq redrive takes ids (partition:offset) or --origin <topic>, one of the two")
	}
	o := kafka.RedriveOpts{MaxRedrives: maxRedrives, DryRun: dryRun}
	if valueFile != "" {
		if o.Value, err = os.ReadFile(valueFile); err != nil {
			return err
		}
	}
	return dlqRedrive(ctx, cfg, ids, origin, o, stdout)
}

// parseWithArgs parses flags with the ids among them, before or after:
// "show 0:3 --json" and "show --json 0:3" alike.
func parseWithArgs(f *flags, args []string) ([]string, error) {
	var ids, flagArgs []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			ids = append(ids, a)
			continue
		}
		flagArgs = append(flagArgs, a)
		name := strings.TrimLeft(a, "-")
		if fl := f.Lookup(name); fl != nil && !strings.Contains(name, "=") && !isBool(fl.Value) && i+1 < len(args) {
			i++
			flagArgs = append(flagArgs, args[i])
		}
	}
	for _, id := range ids {
		if _, _, err := parseDeadLetterID(id); err != nil {
			return nil, err
		}
	}
	return ids, f.parse(flagArgs)
}

func isBool(v any) bool {
	b, ok := v.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// parseDeadLetterID reads "partition:offset".
func parseDeadLetterID(s string) (int32, int64, error) {
	ps, offs, ok := strings.Cut(s, ":")
	p, perr := strconv.ParseInt(ps, 10, 32)
	o, oerr := strconv.ParseInt(offs, 10, 64)
	if !ok || perr != nil || oerr != nil || p < 0 || o < 0 {
		return 0, 0, fmt.Errorf("%q is not a dead letter's id: want partition:offset, such as 0:12, as dlq list shows it", s)
	}
	return int32(p), o, nil
}

// deadLetterJSON is a dead letter as list --json and show --json write it.
type deadLetterJSON struct {
	ID         string            `json:"id"`
	Time       time.Time         `json:"time"`
	Origin     string            `json:"origin"`
	OriginTime *time.Time        `json:"origin_time,omitempty"`
	Error      string            `json:"error"`
	By         string            `json:"by,omitempty"`
	Redriven   int               `json:"redriven"`
	RedrivenTo string            `json:"redriven_to,omitempty"`
	Cut        string            `json:"cut,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
	Value      string            `json:"value,omitempty"`
}

func toJSON(d kafka.DeadLetter, full bool) deadLetterJSON {
	j := deadLetterJSON{ID: d.ID(), Time: d.Time.UTC(), Origin: d.Origin(), Error: d.Error, By: d.By,
		Redriven: d.Redriven, RedrivenTo: d.RedrivenTo, Cut: d.Cut}
	if !d.OriginTime.IsZero() {
		t := d.OriginTime.UTC()
		j.OriginTime = &t
	}
	if full {
		j.Headers = map[string]string{}
		for _, h := range d.Headers {
			j.Headers[h.Key] = string(h.Value)
		}
		j.Value = string(d.Value)
	}
	return j
}

func dlqList(ctx context.Context, cfg kafka.Config, origin string, asJSON bool, stdout io.Writer) error {
	ds, err := kafka.ReadDeadLetters(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		for _, d := range ds {
			if origin == "" || d.OriginTopic == origin {
				if err := enc.Encode(toJSON(d, false)); err != nil {
					return err
				}
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tORIGIN\tDEAD-LETTERED\tREDRIVEN\tERROR")
	n := 0
	for _, d := range ds {
		if origin != "" && d.OriginTopic != origin {
			continue
		}
		n++
		state := strconv.Itoa(d.Redriven)
		if d.RedrivenTo != "" {
			state += " → " + d.RedrivenTo
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.ID(), d.Origin(), d.Time.UTC().Format(time.RFC3339), state, oneLine(d.Error, 100))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s in %s\n", plural(n, "dead letter"), cfg.Topics.DLQ)
	return nil
}

func findDeadLetter(ctx context.Context, cfg kafka.Config, id string) (kafka.DeadLetter, error) {
	ds, err := kafka.ReadDeadLetters(ctx, cfg)
	if err != nil {
		return kafka.DeadLetter{}, err
	}
	for _, d := range ds {
		if d.ID() == id {
			return d, nil
		}
	}
	return kafka.DeadLetter{}, fmt.Errorf("no dead letter %s in %s (dlq list shows them)", id, cfg.Topics.DLQ)
}

func dlqShow(ctx context.Context, cfg kafka.Config, id string, asJSON bool, stdout io.Writer) error {
	d, err := findDeadLetter(ctx, cfg, id)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(toJSON(d, true))
	}
	fmt.Fprintf(stdout, "dead letter %s of %s, written %s\n", d.ID(), cfg.Topics.DLQ, d.Time.UTC().Format(time.RFC3339Nano))
	fmt.Fprintf(stdout, "origin      %s", d.Origin())
	if !d.OriginTime.IsZero() {
		fmt.Fprintf(stdout, ", written %s", d.OriginTime.UTC().Format(time.RFC3339Nano))
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "error       %s\n", d.Error)
	if d.By != "" {
		fmt.Fprintf(stdout, "by          %s\n", d.By)
	}
	fmt.Fprintf(stdout, "redriven    %d times before", d.Redriven)
	if d.RedrivenTo != "" {
		fmt.Fprintf(stdout, "; redriven since, to %s", d.RedrivenTo)
	}
	fmt.Fprintln(stdout)
	if err := d.Redrivable(cfg.Topics, 0); err != nil {
		fmt.Fprintf(stdout, "redrive     no: %v\n", err)
	} else {
		fmt.Fprintln(stdout, "redrive     yes")
	}
	fmt.Fprintln(stdout, "headers:")
	for _, h := range d.Headers {
		fmt.Fprintf(stdout, "  %s: %s\n", h.Key, printable(h.Value))
	}
	fmt.Fprintf(stdout, "value (%d bytes):\n%s\n", len(d.Value), printable(d.Value))
	return nil
}

func dlqRedrive(ctx context.Context, cfg kafka.Config, ids []string, origin string, o kafka.RedriveOpts, stdout io.Writer) error {
	match, donePtr := redriveMatch(ids, origin)
	res, err := kafka.Redrive(ctx, cfg, match, o)
	done := *donePtr
	if errors.Is(err, kafka.ErrNothingToRedrive) {
		if origin != "" && done > 0 {
			fmt.Fprintf(stdout, "the %s from %s %s redriven already; nothing left to redrive\n", plural(done, "dead letter"), origin, isAre(done))
			return nil
		}
		if origin != "" {
			return fmt.Errorf("no dead letter in %s came from %s", cfg.Topics.DLQ, origin)
		}
		return fmt.Errorf("no dead letter %s in %s (dlq list shows them)", strings.Join(ids, ", "), cfg.Topics.DLQ)
	}
	sent, refused := 0, 0
	for _, r := range res {
		switch {
		case r.Err != nil:
			refused++
			fmt.Fprintf(stdout, "not redriven: %v\n", r.Err)
		case o.DryRun:
			sent++
			fmt.Fprintf(stdout, "would redrive %s to %s/%d\n", r.DeadLetter.ID(), r.DeadLetter.OriginTopic, r.DeadLetter.OriginPartition)
		default:
			sent++
			fmt.Fprintf(stdout, "redriven %s to %s (redrive %d)\n", r.DeadLetter.ID(), r.To, r.DeadLetter.Redriven+1)
		}
	}
	if len(ids) > 0 {
		for _, id := range ids {
			if !slicesHasID(res, id) {
				refused++
				fmt.Fprintf(stdout, "not redriven: no dead letter %s in %s\n", id, cfg.Topics.DLQ)
			}
		}
	}
	if err != nil {
		return err
	}
	verb := "redriven"
	if o.DryRun {
		verb = "to redrive"
	}
	fmt.Fprintf(stdout, "%d %s, %d not", sent, verb, refused)
	if done > 0 {
		fmt.Fprintf(stdout, ", %d redriven before", done)
	}
	fmt.Fprintln(stdout)
	if refused > 0 {
		return fmt.Errorf("%s could not be redriven", plural(refused, "dead letter"))
	}
	return nil
}

func slicesHasID(res []kafka.Redriven, id string) bool {
	for _, r := range res {
		if r.DeadLetter.ID() == id {
			return true
		}
	}
	return false
}

// printable shows bytes as text when they are UTF-8 without control
// characters, else quoted with escapes: a poison record may hold anything,
// and a terminal must not take it as commands.
func printable(b []byte) string {
	if utf8.Valid(b) && !strings.ContainsFunc(string(b), func(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f }) {
		return string(b)
	}
	return strconv.Quote(string(b))
}

// oneLine is s on one line, at most n characters.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) > n {
		s = string([]rune(s)[:n-1]) + "…"
	}
	return s
}

// plural is "1 dead letter", "2 dead letters".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}

func isAre(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}
