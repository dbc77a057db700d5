package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// api stands for the gateway's API behind the app.
var api = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "api "+r.Method+" "+r.URL.Path)
})

func get(t *testing.T, h http.Handler, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

const chromeAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"

func TestBrowserGetsTheApp(t *testing.T) {
	h := Handler(api, nil)
	rec := get(t, h, "/?q=dune", "Accept", chromeAccept)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") ||
		!strings.Contains(rec.Body.String(), `<script src="/app/app.js"`) {
		t.Fatalf("GET / from a browser: %d %q %.200s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("no Content-Security-Policy limiting scripts: %q", csp)
	}
	if rec.Header().Get("Vary") != "Accept" {
		t.Errorf("Vary %q: caches must keep the page and the index apart", rec.Header().Get("Vary"))
	}
}

func TestOthersGetTheAPI(t *testing.T) {
	h := Handler(api, nil)
	for _, accept := range []string{"", "*/*", "text/plain", "application/json", "text/html;q=0", "text/plain, text/html;q=0.0"} {
		rec := get(t, h, "/", "Accept", accept)
		if rec.Body.String() != "api GET /" {
			t.Errorf("Accept %q: %q, want the API's index", accept, rec.Body)
		}
	}
	for _, path := range []string{"/books", "/api", "/stats", "/app", "/index.html"} {
		if rec := get(t, h, path, "Accept", chromeAccept); rec.Body.String() != "api GET "+path {
			t.Errorf("%s: %q, want the API", path, rec.Body)
		}
	}
}

func TestFiles(t *testing.T) {
	h := Handler(api, nil)
	for path, ctype := range map[string]string{"/app/app.js": "text/javascript", "/app/app.css": "text/css"} {
		rec := get(t, h, path)
		if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), ctype) || rec.Body.Len() == 0 {
			t.Errorf("%s: %d %q", path, rec.Code, rec.Header().Get("Content-Type"))
			continue
		}
		etag := rec.Header().Get("ETag")
		if again := get(t, h, path, "If-None-Match", etag); etag == "" || again.Code != 304 {
			t.Errorf("%s: ETag %q, then %d; want 304", path, etag, again.Code)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", path)
		}
	}
	for _, path := range []string{"/app/", "/app/index.html", "/app/nothing.js", "/app/../web.go"} {
		if rec := get(t, h, path); rec.Code != 404 {
			t.Errorf("%s: %d, want 404", path, rec.Code)
		}
	}
}

// The script never turns data into markup: every element is built with
// textContent, so a title such as "<img onerror=…>" stays text.
func TestScriptBuildsNoMarkup(t *testing.T) {
	b, err := static.ReadFile("static/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
		if strings.Contains(string(b), bad) {
			t.Errorf("app.js uses %s", bad)
		}
	}
}

// Every input of the page has a label, and every field the API names in a
// problem has a place for its error, tied to the input.
func TestPageIsLabelled(t *testing.T) {
	b, err := static.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, m := range regexp.MustCompile(`<input id="([a-z-]+)"`).FindAllStringSubmatch(page, -1) {
		if !strings.Contains(page, `<label for="`+m[1]+`"`) {
			t.Errorf("input %s has no label", m[1])
		}
	}
	for _, f := range []string{"title", "authors", "year", "isbn"} {
		if !strings.Contains(page, `id="`+f+`" name="`+f+`"`) || !strings.Contains(page, `aria-describedby="`+f+`-error"`) ||
			!strings.Contains(page, `id="`+f+`-error"`) {
			t.Errorf("field %s: no input with its error slot", f)
		}
	}
}

func TestWantsHTML(t *testing.T) {
	for accept, want := range map[string]bool{
		chromeAccept: true, "text/html": true, "TEXT/HTML; charset=utf-8": true, "application/xhtml+xml": true,
		"": false, "*/*": false, "text/*": false, "text/plain": false, "text/html;q=0": false, "text/html; q=0.000": false,
		"text/html;q=0.1": true,
	} {
		if got := WantsHTML(accept); got != want {
			t.Errorf("WantsHTML(%q) = %v, want %v", accept, got, want)
		}
	}
}
