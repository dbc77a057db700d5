// Package web is the bookshelf web app: one page of hand-written HTML,
// CSS and JavaScript, embedded in the binary with go:embed, that drives
// the public API of the gateway from a browser. There is no build step and
// nothing is fetched from a network, at build or at run time.
//
// Handler puts the app in front of the gateway's API: a browser asking
// for GET / (its Accept names text/html) gets the app, and the app's files
// are under /app/. Everything else, GET / for curl or for Accept:
// text/plain included, goes to the API as before, so the text index of the
// API stays where it was. With an Ops, /ops is the operations console
// (see Ops).
//
// The page is a client of the API and nothing more. It reads the
// Bookshelf-Position of each command's answer and sends it with the
// queries that follow, so the views answer from a state that holds what
// the person just did (read-your-writes). The script builds every element
// with textContent, never innerHTML, and the answers carry a
// Content-Security-Policy that allows scripts and styles from the page's
// own origin only: data from the shelf is never markup.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"
)

//go:embed static
var static embed.FS

// Prefix is where the app's files are served.
const Prefix = "/app/"

// contentSecurityPolicy allows what the page loads from its own origin
// and nothing else: no inline script, no inline style, no frames.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// asset is one embedded file, read once, with its ETag.
type asset struct {
	name  string
	body  []byte
	ctype string
	etag  string
}

// assets reads the embedded files. A missing or unreadable file is a bug
// of the build: it panics at start, not at the first request.
func assets() map[string]*asset {
	out := map[string]*asset{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(b)
		}
		name := strings.TrimPrefix(p, "static/")
		out[name] = &asset{name: name, body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil || out["index.html"] == nil || out["ops.html"] == nil {
		panic("web: embedded files: " + errString(err))
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return "index.html or ops.html is missing"
	}
	return err.Error()
}

// An Option changes a setting of Handler from its default.
type Option func(*settings)

type settings struct{ tracesURL string }

// TracesURL is a trace viewer's address with {trace} where a trace id
// goes: the app links each command's answer to its trace (read from the
// answer's traceresponse header). Without it, no links.
func TracesURL(u string) Option { return func(s *settings) { s.tracesURL = u } }

// CheckTracesURL says what is wrong with a trace viewer address, nil if
// nothing: it is an http or https URL with {trace} in it.
func CheckTracesURL(raw string) error {
	u, err := url.Parse(strings.ReplaceAll(raw, "{trace}", "0"))
	switch {
	case err != nil:
		return fmt.Errorf("trace viewer URL %q: %w", raw, err)
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("trace viewer URL %q: want http:// or https:// and a host", raw)
	case !strings.Contains(raw, "{trace}"):
		return fmt.Errorf("trace viewer URL %q: put {trace} where the trace id goes (http://127.0.0.1:9411/zipkin/traces/{trace})", raw)
	}
	return nil
}

// Handler serves the app in front of api: GET or HEAD / from a browser,
// the files under Prefix, and the app's settings at /app/config.json;
// with ops, the operations console at /ops and its API under /ops/api/.
// Every other request goes to api.
func Handler(api http.Handler, ops *Ops, opts ...Option) http.Handler {
	var set settings
	for _, o := range opts {
		o(&set)
	}
	files := assets()
	config, _ := json.Marshal(struct {
		TracesURL string `json:"traces_url,omitempty"`
	}{set.tracesURL})
	sum := sha256.Sum256(config)
	files["config.json"] = &asset{name: "config.json", body: append(config, '\n'), ctype: "application/json", etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		get := r.Method == http.MethodGet || r.Method == http.MethodHead
		switch {
		case get && r.URL.Path == "/" && WantsHTML(r.Header.Get("Accept")):
			serve(w, r, files["index.html"])
		case get && r.URL.Path == "/ops" && ops != nil:
			serve(w, r, files["ops.html"])
		case strings.HasPrefix(r.URL.Path, "/ops/api/") && ops != nil:
			ops.serveAPI(w, r)
		case get && strings.HasPrefix(r.URL.Path, Prefix):
			a := files[strings.TrimPrefix(r.URL.Path, Prefix)]
			if a == nil || strings.HasSuffix(a.name, ".html") {
				http.NotFound(w, r)
				return
			}
			serve(w, r, a)
		default:
			api.ServeHTTP(w, r)
		}
	})
}

// serve answers with a, or 304 when the client holds it already. The
// files change only with the binary: the browser asks again each time
// (no-cache) and is told 304 while the ETag holds.
func serve(w http.ResponseWriter, r *http.Request, a *asset) {
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Vary", "Accept")
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}

// WantsHTML tells whether an Accept header asks for a page: it names
// text/html (or application/xhtml+xml) with a quality above zero. A
// missing Accept, */* alone (curl's) or text/plain is not a browser.
func WantsHTML(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		typ, params, _ := strings.Cut(part, ";")
		typ = strings.ToLower(strings.TrimSpace(typ))
		if typ != "text/html" && typ != "application/xhtml+xml" {
			continue
		}
		if !zeroQuality(params) {
			return true
		}
	}
	return false
}

// zeroQuality tells whether media-type parameters carry q=0.
func zeroQuality(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			v = strings.TrimSpace(v)
			return strings.Trim(v, "0.") == "" // 0, 0.0, 0.000
		}
	}
	return false
}
