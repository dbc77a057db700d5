package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kgo"
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
			status, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("status").textContent + " | " + document.getElementById("catalog-summary").textContent`))
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

	// The operations page: every instance ready, and a poison record
	// pushed onto the log shows up as a dead letter; mended and redriven
	// with bookshelf dlq, it is counted as redriven.
	pushRecord(t, sys.broker(), "bookshelf", []byte(`{"specversion":"1.0","id":`))
	step("open the operations page",
		chromedp.Navigate(sys.gateway+"/ops"),
		until(`document.getElementById("status").textContent.startsWith("5 of 5 instances ready")`),
		until(`document.getElementById("dead-letters").textContent === "1 dead letter in the topic, 1 not redriven"`),
	)
	shots.take(ctx, "ops")
	mended := filepath.Join(t.TempDir(), "mended")
	if err := os.WriteFile(mended, []byte("Book 03"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(binary, "dlq", "redrive", "--origin", "bookshelf", "--value-file", mended, "--broker", sys.broker()).CombinedOutput(); err != nil {
		t.Fatalf("dlq redrive: %v\n%s", err, out)
	}
	step("see it redriven",
		until(`document.getElementById("dead-letters").textContent === "1 dead letter in the topic, 0 not redriven"`),
	)
}

// pushRecord produces one record, as an outside writer would.
func pushRecord(t *testing.T, broker, topic string, value []byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Value: value}).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
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
