package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bookshelf/bookshelf/internal/kafka"
)

// The browser test drives the web app in headless Chromium, as a person
// would with a mouse and a keyboard, against `bookshelf up` on free ports:
// add a book through the form, see the field error of an empty title, mark
// the book read and see it on top of the last books read at once, search
// for it, remove it. It takes a screenshot of each step into the test's
// artifact directory (go test -artifacts keeps them), and into
// $BOOKSHELF_SCREENSHOTS when that is set (the README's come from there).
//
// Chromium is Debian's (apt-get install -y chromium); $BOOKSHELF_CHROMIUM
// names another. Without it the test skips, unless BOOKSHELF_REQUIRE_INFRA
// is set (CI), where it fails.

// chromium finds the browser, or skips or fails the test.
func chromium(t *testing.T) string {
	t.Helper()
	names := []string{"chromium", "chromium-browser", "google-chrome", "headless_shell"}
	if p := os.Getenv("BOOKSHELF_CHROMIUM"); p != "" {
		names = []string{p}
	}
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	msg := "no Chromium on this machine (apt-get install -y chromium, or set BOOKSHELF_CHROMIUM)"
	if os.Getenv("BOOKSHELF_REQUIRE_INFRA") != "" {
		t.Fatal("BOOKSHELF_REQUIRE_INFRA is set and " + msg)
	}
	t.Skip(msg)
	return ""
}

// browser is one headless Chromium with one tab, stopped with the test.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// Quiet on a closed network: no updates, no sync, no first-run calls.
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1180, 820),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; it lives as long as ctx.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx
}

func TestBrowser(t *testing.T) {
	path := chromium(t)
	started := time.Now()
	sys := startUp(t, t.TempDir(), newPorts(t), target{name: "embedded", topic: "bookshelf"})
	t.Logf("bookshelf up ready in %v", time.Since(started).Round(time.Millisecond))
	ctx := browser(t, path)
	shots := newShots(t)

	// step runs the actions of one step within a bound, failing the test
	// with the page's state when they do not complete.
	step := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		began := time.Now()
		if err := chromedp.Do(sctx, actions...); err != nil {
			status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`["status", "catalog-summary", "dead-letters", "dl-result"].map(id => (document.getElementById(id) || {}).textContent).filter(Boolean).join(" | ")`))
			t.Fatalf("%s: %v (page says: %s)", name, err, status)
		}
		t.Logf("%s: %v", name, time.Since(began).Round(time.Millisecond))
	}
	// until waits for a JavaScript condition to hold.
	until := func(cond string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(10*time.Second))
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}

	const title = "The Left Hand of Darkness"
	step("open the shelf",
		chromedp.Navigate(sys.gateway+"/"),
		chromedp.WaitVisible(chromedp.CSS("#add-form")),
		until(`document.getElementById("catalog-summary").textContent.includes("empty")`),
	)
	shots.take(ctx, "shelf")

	// An empty title: the API's problem names the field, and the page
	// says so next to it.
	step("add a book without a title",
		chromedp.SendKeys(chromedp.CSS("#authors"), "Ursula K. Le Guin"),
		chromedp.Click(chromedp.CSS("#add-button")),
		chromedp.WaitVisible(chromedp.CSS("#title-error")),
	)
	if got := text("#title-error"); !strings.Contains(got, "empty") && !strings.Contains(got, "required") {
		t.Errorf("the title's error says %q", got)
	}
	if inv, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("title").getAttribute("aria-invalid") || ""`)); inv != "true" {
		t.Errorf("the title is not marked aria-invalid: %q", inv)
	}
	if focused, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.id`)); focused != "title" {
		t.Errorf("focus is on %q, want the title that needs mending", focused)
	}
	shots.take(ctx, "field-error")

	step("add the book",
		chromedp.SendKeys(chromedp.CSS("#title"), title),
		chromedp.SendKeys(chromedp.CSS("#year"), "1969"),
		chromedp.SendKeys(chromedp.CSS("#isbn"), "9780441478125"),
		chromedp.Click(chromedp.CSS("#add-button")),
		until(`[...document.querySelectorAll("#books td.title")].some(td => td.textContent === `+strconv.Quote(title)+`)`),
	)
	if !chromedpHidden(t, ctx, "#title-error") {
		t.Errorf("the title's error is still shown after a good add")
	}
	// Markup in a title stays text.
	const markup = `<img src=x onerror="document.title='owned'">`
	step("add a book whose title is markup",
		chromedp.SendKeys(chromedp.CSS("#title"), markup),
		chromedp.SendKeys(chromedp.CSS("#authors"), "Ursula K. Le Guin"),
		chromedp.Click(chromedp.CSS("#add-button")),
		until(`[...document.querySelectorAll("#books td.title")].some(td => td.textContent === `+strconv.Quote(markup)+`)`),
	)
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("main img").length`)); n != 0 {
		t.Errorf("a title became %d elements", n)
	}
	shots.take(ctx, "added")

	// Marking it read shows it on top of the last books read, without a
	// reload: the page sends the command's position with its queries.
	step("mark it read",
		chromedp.Click(chromedp.CSS(`#books button[aria-label="Mark “`+title+`” read"]`)),
		until(`(document.querySelector("#last-read-list li .title") || {}).textContent === `+strconv.Quote(title)),
		until(`document.querySelector("#stats-totals dd:nth-of-type(2)").textContent === "1"`),
	)
	shots.take(ctx, "read")

	step("search for it",
		chromedp.SendKeys(chromedp.CSS("#q"), "left hand"),
		chromedp.Click(chromedp.CSS(`#search-form button[type="submit"]`)),
		until(`document.getElementById("catalog-summary").textContent.startsWith("1 book found")`),
		until(`location.search === "?q=left+hand"`),
	)
	if got := text("#books td.title"); got != title {
		t.Errorf("the search found %q", got)
	}
	shots.take(ctx, "search")

	step("remove it",
		chromedp.Click(chromedp.CSS(`#books button[aria-label="Remove “`+title+`”"]`)),
		until(`document.getElementById("catalog-summary").textContent === "No book found."`),
		until(`document.getElementById("status").textContent.startsWith("Removed")`),
	)
	shots.take(ctx, "removed")

	// Paging: eleven more books make a second page of the first ten.
	// The page has not seen their positions: wait for the catalog to hold
	// them before asking it.
	var positions []string
	for i := range 11 {
		r := do(t, "POST", sys.gateway+"/books", "application/json", strings.NewReader(fmt.Sprintf(`{"title":"Book %02d"}`, i)))
		if r.status != 201 {
			t.Fatalf("add book %d: %d %s", i, r.status, r.body)
		}
		positions = append(positions, r.header.Get("Bookshelf-Position"))
	}
	getAt(t, sys.gateway+"/books", strings.Join(positions, ","))
	step("page the catalog",
		chromedp.Click(chromedp.CSS("#clear-search")),
		until(`document.getElementById("catalog-summary").textContent === "12 books."`),
		until(`document.querySelectorAll("#books tbody tr").length === 10`),
		chromedp.Click(chromedp.CSS("#next-page")),
		until(`location.search.startsWith("?after=") && document.querySelectorAll("#books tbody tr").length === 2`),
		until(`document.getElementById("next-page").disabled && !document.getElementById("prev-page").disabled`),
		chromedp.Click(chromedp.CSS("#prev-page")),
		until(`location.search === "" && document.querySelectorAll("#books tbody tr").length === 10`),
	)

	// A search in the address is the page's state too: opened afresh,
	// it shows the same.
	step("open a search by its address",
		chromedp.Navigate(sys.gateway+"/?author="+strings.ReplaceAll("Ursula K. Le Guin", " ", "+")),
		until(`document.getElementById("author").value === "Ursula K. Le Guin"`),
		until(`document.getElementById("catalog-summary").textContent === "1 book found by Ursula K. Le Guin."`),
	)

	opsConsole(t, ctx, sys, shots, step, until)
}

// opsConsole drives /ops: every service healthy, a poison command pushed
// with kcat onto the commands topic shown as a dead letter, shown whole,
// mended in the page and redriven to where it came from, and then
// applied: the book it adds is in the catalog.
func opsConsole(t *testing.T, ctx context.Context, sys *system, shots *shots,
	step func(string, ...chromedp.Action[chromedp.Void]), until func(string) chromedp.Action[chromedp.Void]) {
	t.Helper()
	commands := kafka.TopicsFor("bookshelf").Commands
	step("open the operations console",
		chromedp.Navigate(sys.gateway+"/ops"),
		until(`document.getElementById("status").textContent.startsWith("5 of 5 instances healthy")`),
		until(`document.querySelectorAll("#instances tbody tr[data-ready=yes]").length === 5`),
		until(`document.getElementById("dead-letters").textContent === "0 dead letters in the topic, 0 not redriven"`),
		// The aggregate's partitions, and each view's position.
		until(`[...document.querySelectorAll("#instances tbody tr[data-service=books] td")].some(td => /^0( \(\d+\))?, 1( \(\d+\))?, 2( \(\d+\))?$/.test(td.textContent))`),
		until(`document.querySelectorAll("#views tbody tr svg.chart").length === 6`),
		until(`document.getElementById("cmd-rate").textContent !== "—"`),
		until(`document.getElementById("trace-form").hidden`), // no viewer given
	)
	// Commands while the console looks: their rate and latency show.
	for i := range 20 {
		if r := postJSON(t, sys.gateway+"/books", fmt.Sprintf(`{"title":"Busy %02d"}`, i)); r.status != 201 {
			t.Fatalf("add: %d %s", r.status, r.body)
		}
	}
	step("see the commands' figures",
		// The window reaches back 30 s at most: the commands of the steps
		// before may be in it too.
		until(`document.getElementById("cmd-p50").textContent !== "—"`),
		until(`Number((/^(\d+) accepted/.exec(document.getElementById("cmd-outcomes").textContent) || [0, 0])[1]) >= 20`),
		until(`Number(document.getElementById("cmd-rate").textContent) > 0`),
	)
	shots.take(ctx, "ops")

	// A poison command, as an outside writer would push it: kcat, at the
	// embedded broker's address.
	kcatProduce(t, sys.broker(), commands, `{"id":"poison","type":"add-book","book_id":`)
	step("see the poison command dead-lettered",
		until(`document.getElementById("dead-letters").textContent === "1 dead letter in the topic, 1 not redriven"`),
		until(`document.querySelectorAll("#dead-letter-list tbody tr[data-id]").length === 1`),
	)
	var list struct {
		DeadLetters []struct {
			ID, Origin, OriginTopic, Error string
		} `json:"dead_letters"`
	}
	getAt(t, sys.gateway+"/ops/api/dead-letters", "").json(t, &list)
	if len(list.DeadLetters) != 1 || !strings.HasPrefix(list.DeadLetters[0].Origin, commands+"/") || list.DeadLetters[0].Error == "" {
		t.Fatalf("dead letters: %+v", list)
	}
	dl := list.DeadLetters[0]
	var part int32
	fmt.Sscanf(strings.TrimPrefix(dl.Origin, commands+"/"), "%d/", &part)

	step("show it",
		chromedp.Click(chromedp.CSS(`#dead-letter-list button[aria-label="Show dead letter `+dl.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#dl-detail")),
		until(`document.activeElement.id === "dl-detail-title"`),
		until(`document.getElementById("dl-value").value.startsWith('{"id":"poison"')`),
	)
	shots.take(ctx, "ops-dead-letter")

	// Mended: a whole command for a book whose home is the partition the
	// poison came from, where the redrive sends it.
	bookID := ""
	for i := 0; bookID == ""; i++ {
		if id := fmt.Sprintf("mended-%d", i); kafka.Home(id, int32(defaultPartitions)) == part {
			bookID = id
		}
	}
	const title = "The Dispossessed"
	mended := fmt.Sprintf(`{"id":"mended-command","type":"add-book","book_id":%q,"book":{"title":%q,"authors":["Ursula K. Le Guin"]},"issued_at":%q}`,
		bookID, title, time.Now().UTC().Format(time.RFC3339))
	step("redrive it mended",
		chromedp.SetValue(chromedp.CSS("#dl-value"), mended),
		chromedp.Click(chromedp.CSS("#dl-redrive-mended")),
		until(`document.getElementById("dl-result").textContent.startsWith("1 redriven, 0 not")`),
		until(`document.getElementById("dead-letters").textContent === "1 dead letter in the topic, 0 not redriven"`),
		until(`[...document.querySelectorAll("#dead-letter-list tbody td")].some(td => td.textContent.startsWith("yes, to `+commands+`/"))`),
	)
	shots.take(ctx, "ops-redriven")
	eventually(t, "the mended command applied", func() bool {
		r := do(t, "GET", sys.gateway+"/books/"+bookID, "", nil)
		return r.status == 200 && strings.Contains(string(r.body), title)
	})
	// Redriven once, it is not sent again: the page says why.
	step("redrive it again",
		chromedp.Click(chromedp.CSS("#dl-redrive-one")),
		until(`document.getElementById("dl-result").textContent.includes("redriven already")`),
	)
	step("the console again, the book added",
		chromedp.Click(chromedp.CSS("#dl-close")),
		until(`document.activeElement.id === "dl-title"`),
		until(`document.getElementById("status").textContent.startsWith("5 of 5 instances healthy")`),
	)
	shots.take(ctx, "ops-after")
}

func chromedpHidden(t *testing.T, ctx context.Context, sel string) bool {
	t.Helper()
	hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector(`+strconv.Quote(sel)+`).hidden`))
	if err != nil {
		t.Fatalf("%s hidden: %v", sel, err)
	}
	return hidden
}

// shots writes numbered screenshots into the test's artifact directory
// and, when set, $BOOKSHELF_SCREENSHOTS.
type shots struct {
	t    *testing.T
	dirs []string
	n    int
}

func newShots(t *testing.T) *shots {
	s := &shots{t: t, dirs: []string{t.ArtifactDir()}}
	if d := os.Getenv("BOOKSHELF_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		s.dirs = append(s.dirs, d)
	}
	return s
}

func (s *shots) take(ctx context.Context, name string) {
	s.t.Helper()
	s.n++
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		s.t.Fatalf("screenshot %s: %v", name, err)
	}
	file := fmt.Sprintf("%d-%s.png", s.n, name)
	for _, d := range s.dirs {
		if err := os.WriteFile(filepath.Join(d, file), png, 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
	s.t.Logf("screenshot %s: %d KB", file, len(png)/1024)
}

// With a trace viewer given (--traces-url), the web app links the last
// command to its trace, read from the W3C traceresponse header of the
// command's answer, and /ops offers to open a trace. The header is set
// here by a proxy in front of the gateway, as a traced gateway sets it;
// an answer without one gets no link.
func TestBrowserTraceLink(t *testing.T) {
	path := chromium(t)
	const viewer = "http://127.0.0.1:9411/zipkin/traces/{trace}"
	ports := newPorts(t)
	startUpInProcess(t, ports, "--traces-url", viewer)
	gw, _ := url.Parse(fmt.Sprintf("http://127.0.0.1:%d", ports["gateway"]))
	const trace = "4bf92f3577b34da6a3ce929d0e0e4736"
	var traced atomic.Bool
	proxy := httputil.NewSingleHostReverseProxy(gw)
	proxy.ModifyResponse = func(r *http.Response) error {
		if r.Request.Method != http.MethodGet && traced.Load() {
			r.Header.Set("traceresponse", "00-"+trace+"-00f067aa0ba902b7-01")
		}
		return nil
	}
	front := httptest.NewServer(proxy)
	defer front.Close()
	ctx := browser(t, path)
	until := func(cond string) chromedp.Action[chromedp.Void] {
		return chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(10*time.Second))
	}
	run := func(name string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	run("a command without a trace",
		chromedp.Navigate(front.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS("#add-form")),
		chromedp.SendKeys(chromedp.CSS("#title"), "Untraced"),
		chromedp.Click(chromedp.CSS("#add-button")),
		until(`document.getElementById("status").textContent.startsWith("Added")`),
	)
	if !chromedpHidden(t, ctx, "#last-trace") {
		t.Errorf("a link to a trace without a traceresponse header")
	}
	traced.Store(true)
	run("a traced command",
		chromedp.SendKeys(chromedp.CSS("#title"), "Traced"),
		chromedp.Click(chromedp.CSS("#add-button")),
		until(`!document.getElementById("last-trace").hidden`),
	)
	href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("last-trace-link").href`))
	if want := strings.Replace(viewer, "{trace}", trace, 1); err != nil || href != want {
		t.Errorf("the trace link goes to %q (%v), want %s", href, err, want)
	}
	run("the console offers to open a trace",
		chromedp.Navigate(front.URL+"/ops"),
		until(`!document.getElementById("trace-form").hidden`),
		until(`document.getElementById("trace-viewer").href === "http://127.0.0.1:9411/zipkin/"`),
	)
}
