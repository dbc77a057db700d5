package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bookshelf/bookshelf/internal/kafka"
	"github.com/bookshelf/bookshelf/internal/load"
	"github.com/bookshelf/bookshelf/internal/shelf"
)

// runLoad runs the load scenarios: against a bookshelf of its own (`up` on
// free ports, in a temporary folder) or, with --target, against any
// gateway. Each query is measured beside a bare net/http handler serving
// the same bytes, in the same run.
func runLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("load", "Load the bookshelf and measure it: commands pushed past capacity beside a view's\nqueries, then the catalog's queries at a large shelf, each beside a bare baseline.", stderr)
	var (
		target, brokers, topic, jsonOut, scenarios string
		books, rate, queryRate                     int
		dur                                        time.Duration
	)
	f.str(&target, "target", "", "a gateway to load, http://host:port (default: a bookshelf of its own, up on free ports)")
	f.str(&brokers, "broker", "", "the brokers of --target's bookshelf, for the bulk import of books")
	f.str(&topic, "topic", kafka.DefaultTopic, "the event log of --target's bookshelf")
	var viewBroker string
	f.str(&viewBroker, "views-broker", "", "the brokers of the views scenario, which writes a log of its own there and deletes it after (default: an embedded broker in a process of its own)")
	f.int(&books, "books", 1_000_000, "books imported straight into the event log before the query scenarios")
	f.int(&rate, "rate", 4000, "commands per second pushed in the overload scenario")
	f.int(&queryRate, "query-rate", 500, "queries per second of each query scenario")
	f.duration(&dur, "duration", 10*time.Second, "how long each scenario runs")
	f.str(&jsonOut, "json", "load.json", "where to write the results as JSON (empty: nowhere)")
	f.str(&scenarios, "scenarios", "commands,queries,views", "which scenarios to run: commands, queries, views")
	if err := f.parse(args); err != nil {
		return err
	}
	log, err := serviceLogger(stderr, "info", "text")
	if err != nil {
		return err
	}
	if target == "" && slices.ContainsFunc(splitList(scenarios), func(s string) bool { return s != "views" }) {
		sys, err := startOwnUp(ctx, log)
		if err != nil {
			return err
		}
		defer sys.stop()
		target, brokers, topic = sys.gateway, sys.broker, kafka.DefaultTopic
	}
	target = strings.TrimRight(target, "/")
	cl := load.Client()
	var results []load.Result
	var catchUps []catchUp
	for _, sc := range splitList(scenarios) {
		var rs []load.Result
		switch sc {
		case "commands":
			rs, err = commandScenario(ctx, cl, target, brokers, topic, rate, queryRate, dur, log)
		case "queries":
			rs, err = queryScenario(ctx, cl, target, brokers, topic, books, queryRate, dur, log)
		case "views":
			catchUps, err = viewsScenario(ctx, viewBroker, books, log)
		default:
			return fmt.Errorf("unknown scenario %q: commands, queries or views", sc)
		}
		if err != nil {
			return fmt.Errorf("scenario %s: %w", sc, err)
		}
		results = append(results, rs...)
	}
	if len(results) > 0 {
		load.Table(stdout, results)
	}
	if len(catchUps) > 0 {
		catchUpTable(stdout, catchUps)
	}
	if jsonOut != "" {
		b, err := json.MarshalIndent(struct {
			Requests []load.Result `json:"requests"`
			CatchUps []catchUp     `json:"catch_ups,omitempty"`
		}{results, catchUps}, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "results written to %s\n", jsonOut)
	}
	return nil
}

// commandScenario pushes commands at rate beside last-read queries at
// queryRate, then commands at a tenth of the rate: what is shed, what the
// view keeps answering, and how soon commands are back to normal. Beside
// the last, at the same rate, the bare path through the same brokers: a
// record of a command's size produced and consumed back with franz-go.
func commandScenario(ctx context.Context, cl *http.Client, target, brokers, topic string, rate, queryRate int, dur time.Duration, log *slog.Logger) ([]load.Result, error) {
	add := load.PostJSON(cl, target+"/books", func(i int) io.Reader {
		return strings.NewReader(fmt.Sprintf(`{"title":"Load %d","authors":["Author %d"]}`, i, i%500))
	})
	lastRead := load.Get(cl, func(int) string { return target + "/books/last-read" })
	log.Info("load: commands past capacity beside queries", "commands_per_second", rate, "queries_per_second", queryRate, "for", dur)
	done := make(chan load.Result, 1)
	go func() {
		done <- load.Run(ctx, load.Spec{Name: "last-read beside the commands", Rate: queryRate, Duration: dur, Do: lastRead})
	}()
	over := load.Run(ctx, load.Spec{Name: "commands past capacity", Rate: rate, Duration: dur, Do: add})
	beside := <-done
	after := load.Run(ctx, load.Spec{Name: "commands after", Rate: max(rate/10, 1), Duration: min(dur, 5*time.Second), Do: add})
	out := []load.Result{over, beside, after}
	if brokers == "" {
		log.Warn("load: no --broker, so no bare franz-go baseline for the commands")
		return out, ctx.Err()
	}
	rt, err := kafka.NewRoundTrip(ctx, kafka.Config{Brokers: splitList(brokers), Topics: kafka.TopicsFor(topic), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("the bare baseline: %w", err)
	}
	defer rt.Close(context.WithoutCancel(ctx))
	bare := load.Run(ctx, load.Spec{Name: "commands after (bare franz-go)", Rate: after.Target, Duration: after.Duration,
		Do: func(ctx context.Context, _ int) (int, error) {
			if err := rt.Do(ctx, commandSize); err != nil {
				return 0, err
			}
			return http.StatusOK, nil
		}})
	return append(out, bare), ctx.Err()
}

// commandSize is about the size of a command record of the scenario.
const commandSize = 300

// queryScenario imports books straight into the event log, waits for the
// catalog to hold them, then loads each catalog query beside a bare
// handler serving the bytes of the same answer.
func queryScenario(ctx context.Context, cl *http.Client, target, brokers, topic string, books, queryRate int, dur time.Duration, log *slog.Logger) ([]load.Result, error) {
	if brokers == "" {
		return nil, fmt.Errorf("the bulk import needs --broker with --target")
	}
	total, err := catalogTotal(ctx, cl, target)
	if err != nil {
		return nil, err
	}
	if want := books - total; want > 0 {
		shelfBooks := make([]shelf.Book, want)
		stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
		for i := range shelfBooks {
			shelfBooks[i] = shelf.Book{ID: fmt.Sprintf("load-%s-%d", stamp, i), Title: loadTitle(i),
				Authors: []string{fmt.Sprintf("Author %d", i%5000), fmt.Sprintf("Writer %d", (i/7)%5000)}}
		}
		began := time.Now()
		cfg := kafka.Config{Brokers: splitList(brokers), Topics: kafka.TopicsFor(topic), Logger: log}
		err := kafka.ImportBooks(ctx, cfg, shelfBooks, func(n int) {
			if n%100_000 == 0 || n == want {
				log.Info("load: importing books", "done", n, "of", want, "per_second", int(float64(n)/max(time.Since(began).Seconds(), 0.001)))
			}
		})
		if err != nil {
			return nil, err
		}
		for total < books {
			time.Sleep(time.Second)
			if total, err = catalogTotal(ctx, cl, target); err != nil {
				return nil, err
			}
			log.Info("load: the catalog reads the import", "books", total, "of", books)
		}
		log.Info("load: the catalog holds the books", "books", total, "seconds", int(time.Since(began).Seconds()))
	}
	var out []load.Result
	for _, q := range []struct{ name, path string }{
		{"catalog first page", "/books?limit=20"},
		{"catalog by author", "/books?author=" + url.QueryEscape("Author 4242") + "&limit=20"},
		{"catalog deep offset", "/books?limit=20&offset=" + strconv.Itoa(max(books-100, 0))},
		{"catalog search, one word", "/books?q=dune7&limit=20"},
		{"catalog search, two words", "/books?q=" + url.QueryEscape("dune7 sol") + "&limit=20"},
	} {
		body, err := fetch(ctx, cl, target+q.path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", q.name, err)
		}
		bare, stop, err := bareServer(body)
		if err != nil {
			return nil, err
		}
		log.Info("load: "+q.name, "path", q.path, "per_second", queryRate, "for", dur/2)
		ours := load.Run(ctx, load.Spec{Name: q.name, Rate: queryRate, Duration: dur / 2,
			Do: load.Get(cl, func(int) string { return target + q.path })})
		base := load.Run(ctx, load.Spec{Name: q.name + " (bare)", Rate: queryRate, Duration: dur / 2,
			Do: load.Get(cl, func(int) string { return bare })})
		stop()
		out = append(out, ours, base)
	}
	return out, ctx.Err()
}

// loadTitle is a title of three words of a thousand, as a shelf has.
func loadTitle(i int) string {
	words := []string{"Dune", "Solaris", "Foundation", "Night", "Wind", "Sea", "Earth", "Tombs", "Shore", "River",
		"Stars", "Glass", "Bead", "Game", "City", "Silence", "Winter", "Summer", "Heaven", "World", "Forest", "Fire"}
	w := func(k int) string { return fmt.Sprintf("%s%d", words[k%len(words)], (k/len(words))%30) }
	return w(i*7919) + " " + w(i*104729+1) + " " + w(i*1299709+2)
}

func catalogTotal(ctx context.Context, cl *http.Client, target string) (int, error) {
	body, err := fetch(ctx, cl, target+"/books?limit=1")
	if err != nil {
		return 0, err
	}
	var ans struct{ Total int }
	if err := json.Unmarshal(body, &ans); err != nil {
		return 0, fmt.Errorf("the catalog's answer: %w", err)
	}
	return ans.Total, nil
}

func fetch(ctx context.Context, cl *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, bytes.TrimSpace(b))
	}
	return b, err
}

// bareServer serves body to every GET, as a bare net/http handler: the
// baseline of a query.
func bareServer(body []byte) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/", func() { _ = srv.Close() }, nil
}

// ownUp is a `bookshelf up` this process started.
type ownUp struct {
	cmd             *exec.Cmd
	dir             string
	gateway, broker string
}

// startOwnUp starts `bookshelf up` on free ports in a temporary folder and
// waits until its gateway is ready.
func startOwnUp(ctx context.Context, log *slog.Logger) (*ownUp, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "bookshelf-load-")
	if err != nil {
		return nil, err
	}
	args := []string{"up", "--data-dir", filepath.Join(dir, "data")}
	ports := map[string]int{}
	for _, name := range []string{"gateway", "books", "catalog", "stats", "lastread", "broker"} {
		if ports[name], err = unusedPort(); err != nil {
			return nil, err
		}
		args = append(args, fmt.Sprintf("--%s-port=%d", name, ports[name]))
	}
	u := &ownUp{dir: dir, gateway: fmt.Sprintf("http://127.0.0.1:%d", ports["gateway"]), broker: fmt.Sprintf("127.0.0.1:%d", ports["broker"])}
	u.cmd = exec.Command(self, args...)
	logs, err := os.Create(filepath.Join(dir, "up.log"))
	if err != nil {
		return nil, err
	}
	u.cmd.Stdout, u.cmd.Stderr = logs, logs
	if err := u.cmd.Start(); err != nil {
		return nil, err
	}
	log.Info("load: started a bookshelf of its own", "gateway", u.gateway, "broker", u.broker, "logs", logs.Name())
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := http.Get(u.gateway + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return u, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			u.stop()
			return nil, fmt.Errorf("the bookshelf of its own did not get ready; see %s", logs.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (u *ownUp) stop() {
	_ = u.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = u.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = u.cmd.Process.Kill()
		<-done
	}
	_ = os.RemoveAll(u.dir)
}

// catchUp is what the views scenario measured of one service: how soon it
// was ready, having read the whole log, and its memory then.
type catchUp struct {
	Service     string        `json:"service"`
	Records     int           `json:"records"`
	Ready       time.Duration `json:"ready_ns"`
	RSS         int64         `json:"rss_bytes"`
	PeakRSS     int64         `json:"peak_rss_bytes"`
	PerBook     int64         `json:"rss_bytes_per_book"`
	FirstAnswer time.Duration `json:"first_answer_ns"` // for the aggregate, a command on each partition
}

// viewsScenario writes a log of books, and a read of each, to a topic of
// its own (on brokers, or on an embedded broker it starts as a process of
// its own), then starts each view, and an aggregate instance, as a
// process of its own on that log, one after the other: how soon each is
// ready, and what it holds in memory then.
func viewsScenario(ctx context.Context, brokers string, books int, log *slog.Logger) ([]catchUp, error) {
	dir, err := os.MkdirTemp("", "bookshelf-views-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	topic := "bookshelf-load-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if brokers == "" {
		port, err := unusedPort()
		if err != nil {
			return nil, err
		}
		_, stop, err := startService(dir, "broker", "--port", strconv.Itoa(port), "--data-dir", filepath.Join(dir, "data"), "--topic", topic)
		if err != nil {
			return nil, err
		}
		defer stop()
		brokers = fmt.Sprintf("127.0.0.1:%d", port)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if c, err := net.Dial("tcp", brokers); err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("the broker did not listen on %s; see %s", brokers, filepath.Join(dir, "broker.log"))
			}
		}
	}
	cfg := kafka.Config{Brokers: splitList(brokers), Topics: kafka.TopicsFor(topic), Logger: log}
	if err := kafka.EnsureTopics(ctx, cfg); err != nil {
		return nil, err
	}
	defer func() {
		if err := kafka.DeleteTopics(context.WithoutCancel(ctx), cfg); err != nil {
			log.Warn("load: the views scenario's topics stay", "topic", topic, "err", err)
		}
	}()
	shelfBooks, ids := loadBooks(books)
	began := time.Now()
	progress := func(what string, of int) func(int) {
		return func(n int) {
			if n%100_000 == 0 || n == of {
				log.Info("load: importing "+what, "done", n, "of", of, "per_second", int(float64(n)/max(time.Since(began).Seconds(), 0.001)))
			}
		}
	}
	if err := kafka.ImportBooks(ctx, cfg, shelfBooks, progress("books", books)); err != nil {
		return nil, err
	}
	began = time.Now()
	if err := kafka.ImportReads(ctx, cfg, ids, progress("reads", books)); err != nil {
		return nil, err
	}
	// The aggregate rebuilds a partition's state at its first command:
	// one read of a book of each partition.
	var reads []string
	for p := range kafka.DefaultPartitions {
		if i := slices.IndexFunc(ids, func(id string) bool { return kafka.Home(id, kafka.DefaultPartitions) == p }); i >= 0 {
			reads = append(reads, "/books/"+ids[i]+"/read")
		}
	}
	// Each first answer is checked against what was imported.
	catalogHolds := func(body []byte) error {
		var ans struct{ Total int }
		if err := json.Unmarshal(body, &ans); err != nil || ans.Total != books {
			return fmt.Errorf("the catalog holds %d books, want %d (%v)", ans.Total, books, err)
		}
		return nil
	}
	lastReadShows := func(body []byte) error {
		var ans struct{ Books []shelf.ReadEntry }
		if err := json.Unmarshal(body, &ans); err != nil || len(ans.Books) == 0 || ans.Books[0].ID != ids[len(ids)-1] {
			return fmt.Errorf("last read %+v, want %s first (%v)", ans.Books, ids[len(ids)-1], err)
		}
		return nil
	}
	statsCount := func(body []byte) error {
		var ans shelf.ReadingStats
		if err := json.Unmarshal(body, &ans); err != nil || ans.BooksRead != books || ans.DistinctBooks != books || ans.BooksOnShelf != books {
			return fmt.Errorf("stats %+v, want %d books read, distinct and on the shelf (%v)", ans, books, err)
		}
		return nil
	}
	var out []catchUp
	for _, svc := range []struct {
		kind   string
		probes []string
		check  func([]byte) error
	}{
		{"catalog", []string{"/books?limit=20"}, catalogHolds},
		{"lastread", []string{"/books/last-read"}, lastReadShows},
		{"stats", []string{"/stats"}, statsCount},
		{"books", reads, nil},
	} {
		c, err := measureCatchUp(ctx, dir, svc.kind, svc.probes, svc.check, brokers, topic, log)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", svc.kind, err)
		}
		c.Records, c.PerBook = 2*books, c.RSS/int64(max(books, 1))
		out = append(out, c)
	}
	return out, nil
}

// loadBooks are n books as the load scenarios make them, and their ids.
func loadBooks(n int) ([]shelf.Book, []string) {
	books, ids := make([]shelf.Book, n), make([]string, n)
	stamp := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := range books {
		ids[i] = fmt.Sprintf("load-%s-%d", stamp, i)
		books[i] = shelf.Book{ID: ids[i], Title: loadTitle(i),
			Authors: []string{fmt.Sprintf("Author %d", i%5000), fmt.Sprintf("Writer %d", (i/7)%5000)}}
	}
	return books, ids
}

// measureCatchUp starts one service on the log and waits until it is
// ready; then it times its first queries (probes: GETs, whose answers
// check checks, or for the aggregate POSTs of commands, which wait for its
// state of their partitions) and reads the process's memory.
func measureCatchUp(ctx context.Context, dir, kind string, probes []string, check func([]byte) error, brokers, topic string, log *slog.Logger) (catchUp, error) {
	port, err := unusedPort()
	if err != nil {
		return catchUp{}, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	log.Info("load: catching up", "service", kind, "at", base)
	began := time.Now()
	cmd, stop, err := startService(dir, kind, "--broker", brokers, "--topic", topic, "--port", strconv.Itoa(port), "--id", "load-"+kind)
	if err != nil {
		return catchUp{}, err
	}
	defer stop()
	c := catchUp{Service: kind}
	for last := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				c.Ready = time.Since(began)
				break
			}
		}
		if time.Since(began) > 5*time.Minute || ctx.Err() != nil {
			return c, fmt.Errorf("not ready after %s; see %s", time.Since(began).Round(time.Second), filepath.Join(dir, kind+".log"))
		}
		if time.Since(last) > 2*time.Second {
			last = time.Now()
			log.Info("load: waiting for the service to catch up", "service", kind, "seconds", int(time.Since(began).Seconds()))
		}
	}
	at := time.Now()
	for _, probe := range probes {
		if kind != "books" {
			body, err := fetch(ctx, http.DefaultClient, base+probe)
			if err == nil && check != nil {
				err = check(body)
			}
			if err != nil {
				return c, err
			}
			continue
		}
		resp, err := http.Post(base+probe, "application/json", strings.NewReader("{}"))
		if err != nil {
			return c, err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return c, fmt.Errorf("POST %s: %d %s", probe, resp.StatusCode, bytes.TrimSpace(body))
		}
	}
	c.FirstAnswer = time.Since(at)
	// What it holds once settled: it gives back what catching up took
	// right after (see leanAfterCatchUp).
	time.Sleep(2 * time.Second)
	c.RSS, c.PeakRSS, err = processMemory(cmd.Process.Pid)
	log.Info("load: caught up", "service", kind, "seconds", fmt.Sprintf("%.2f", c.Ready.Seconds()), "rss_mb", c.RSS>>20)
	return c, err
}

// processMemory reads a process's resident memory, now and at its peak,
// from /proc (Linux).
func processMemory(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, fmt.Errorf("the process's memory: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		var kb int64
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			rss = kb << 10
		} else if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
			peak = kb << 10
		}
	}
	return rss, peak, nil
}

// unusedPort is a port on 127.0.0.1 that nothing listens on now.
func unusedPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startService starts this binary's subcommand kind with args, its output
// in dir, and returns how to stop it (an interrupt, then a kill after 30 s).
func startService(dir, kind string, args ...string) (*exec.Cmd, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	logs, err := os.Create(filepath.Join(dir, kind+".log"))
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(self, append([]string{kind}, args...)...)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		logs.Close()
		return nil, nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logs.Close()
	}
	return cmd, stop, nil
}

// catchUpTable prints what the views scenario measured.
func catchUpTable(w io.Writer, cs []catchUp) {
	fmt.Fprintf(w, "\n%-10s %10s %9s %13s %9s %9s %10s\n", "service", "records", "ready s", "first answer", "RSS MB", "peak MB", "RSS B/book")
	for _, c := range cs {
		fmt.Fprintf(w, "%-10s %10d %9.2f %13s %9d %9d %10d\n", c.Service, c.Records, c.Ready.Seconds(),
			c.FirstAnswer.Round(time.Microsecond), c.RSS>>20, c.PeakRSS>>20, c.PerBook)
	}
	fmt.Fprintln(w, "(first answer: the first query once ready; for books, a command on each partition, which waits for its state)")
}
