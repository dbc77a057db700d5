// Package web is the bookshelf web app: one page of hand-written HTML,
// CSS and JavaScript, embedded in the binary with go:embed, that drives
// the public API of the gateway from a browser. There is no build step and
// nothing is fetched from a network, at build or at run time.
//
// Handler puts the app in front of the gateway's API: a browser asking
// for GET / (its Accept names text/html) gets the app, and the app's files
// are under /app/. Everything else, GET / for curl or for Accept:
// text/plain included, goes to the API as before, so the text index of the
// API stays where it was. With an Ops, /ops is a page of every service's
// instances, their readiness and the dead letters (see Ops).
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
	"io/fs"
	"mime"
	"net/http"
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

// Handler serves the app in front of api: GET or HEAD / from a browser,
// and the files under Prefix; with ops, the operations page at /ops and
// what it reads at /ops/status. Every other request goes to api.
func Handler(api http.Handler, ops *Ops) http.Handler {
	files := assets()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		get := r.Method == http.MethodGet || r.Method == http.MethodHead
		switch {
		case get && r.URL.Path == "/" && WantsHTML(r.Header.Get("Accept")):
			serve(w, r, files["index.html"])
		case get && r.URL.Path == "/ops" && ops != nil:
			serve(w, r, files["ops.html"])
		case get && r.URL.Path == "/ops/status" && ops != nil:
			ops.serveStatus(w, r)
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
