package httpapi

import (
	"net/http"
	"strings"
)

// routes is a view's ServeMux with a shortcut for the exact GET paths of
// its queries.
//
// A view's queries are most of the traffic a service sees, and they are
// cheap: the last-read page comes from a cache. Matching them in the
// ServeMux (cleaning the path, walking its tree under a lock) costs about
// a seventh of such a request. A request for one of these paths,
// spelled exactly, is the case where the mux's answer is known in
// advance: it would pick the route registered for that path and neither
// redirect nor unescape. The shortcut sets r.Pattern as the mux would, so
// the middleware counts the request under the same route; anything else,
// HEAD included, goes through the mux.
type routes struct {
	mux   *http.ServeMux
	exact []exactRoute // a few: a linear scan beats hashing the path
}

type exactRoute struct {
	path    string // r.URL.Path, exactly
	pattern string // as registered in the mux, the metrics' route label
	h       http.HandlerFunc
}

func newRoutes() *routes { return &routes{mux: http.NewServeMux()} }

// get registers h for GET path, in the mux and as a shortcut. Path has no
// wildcards; "/" means "/" only, not the whole tree.
func (rs *routes) get(path string, h http.HandlerFunc) {
	if strings.ContainsAny(path, "{}") {
		// The shortcut sets no path values.
		panic("httpapi: a shortcut route has no wildcards: " + path)
	}
	pattern := "GET " + path
	if path == "/" {
		pattern = "GET /{$}"
	}
	rs.mux.HandleFunc(pattern, h)
	rs.exact = append(rs.exact, exactRoute{path: path, pattern: pattern, h: h})
}

func (rs *routes) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// An empty RawPath means the path has no escapes the mux would match
	// on instead (such as %2F); the mux matches the escaped path.
	if r.Method == http.MethodGet && r.URL.RawPath == "" {
		for i := range rs.exact {
			if e := &rs.exact[i]; e.path == r.URL.Path {
				r.Pattern = e.pattern
				e.h(w, r)
				return
			}
		}
	}
	rs.mux.ServeHTTP(w, r)
}
