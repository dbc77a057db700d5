package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// Query limits of the views.
const (
	MaxAuthorQuery = 256
	maxOffset      = 1 << 30
)

// LastRead is the HTTP handler of the lastread service: GET
// /books/last-read ({"books":[…]}), and the original GET
// /bookshelf/books/last/read and GET / (where the original service
// answered), which answer the bare JSON list as the original did; each
// with ?limit= (default 5, at most 100) and ?offset=; plus /healthz,
// /readyz, /metrics.
//
// ready says whether the replica has caught up with the log; until it
// has, queries are answered 503 with its reason.
func LastRead(rep *shelf.Replica[*shelf.LastRead], ready ReadyFunc, opts ...Option) http.Handler {
	_, handler := newLastReadHandler(rep, ready, newConfig(opts))
	return handler
}

func newLastReadHandler(rep *shelf.Replica[*shelf.LastRead], ready ReadyFunc, c *config) (*lastRead, http.Handler) {
	h := &lastRead{view: newView(c, ready, rep), rep: rep, answers: newAnswerCache()}
	rs := newRoutes()
	rs.get("/books/last-read", h.list(false))
	// Where the original answered, the original answer: a bare list.
	rs.get("/bookshelf/books/last/read", h.list(true))
	rs.get("/", h.list(true))
	Common(rs.mux, h.health(), c.metrics)
	return h, wrap(rs, c)
}

// Catalog is the HTTP handler of the catalog service: GET /books (and the
// original GET /bookshelf/books) with ?author=, ?q= (words of the title
// or an author's name, each a prefix), ?limit= (default 20, at most 100),
// ?offset= and the cursor ?after= (the answer's next), and GET
// /books/{id}; plus /healthz, /readyz, /metrics.
func Catalog(rep *shelf.Replica[*shelf.Catalog], ready ReadyFunc, opts ...Option) http.Handler {
	c := newConfig(opts)
	h := &catalog{view: newView(c, ready, rep), rep: rep, answers: newAnswerCache()}
	rs := newRoutes()
	rs.get("/books", h.list)
	rs.get("/bookshelf/books", h.list)
	rs.mux.HandleFunc("GET /books/{id}", h.get)
	Common(rs.mux, h.health(), c.metrics)
	return wrap(rs, c)
}

// Stats is the HTTP handler of the stats service: GET /stats; plus
// /healthz, /readyz, /metrics.
func Stats(rep *shelf.Replica[*shelf.Stats], ready ReadyFunc, opts ...Option) http.Handler {
	c := newConfig(opts)
	h := &stats{view: newView(c, ready, rep), rep: rep, answers: newAnswerCache()}
	rs := newRoutes()
	rs.get("/stats", h.get)
	Common(rs.mux, h.health(), c.metrics)
	return wrap(rs, c)
}

// positioned is what a view needs of its replica to read a client's own
// writes.
type positioned interface {
	Reached(pos shelf.Position) bool
	WaitFor(ctx context.Context, pos shelf.Position) error
}

// view is what the views' handlers share.
type view struct {
	cfg   *config
	ready ReadyFunc
	rep   positioned
}

func newView(c *config, ready ReadyFunc, rep positioned) view {
	if ready == nil {
		ready = alwaysReady
	}
	return view{cfg: c, ready: ready, rep: rep}
}

// health is what /readyz says: WithReady's function when given, else
// whether the view has caught up.
func (v view) health() ReadyFunc {
	if v.cfg.readySet {
		return v.cfg.ready
	}
	return v.readyz
}

// readyz reports a view not ready with its reason, prefixed so /readyz
// and a refused query read alike.
func (v view) readyz() (bool, string) {
	ok, reason := v.ready()
	if !ok && reason == "" {
		reason = "catching up with the log"
	}
	return ok, reason
}

// begin answers a query that cannot be answered yet, and returns false:
// the replica has not caught up at all (not ready), or not with the
// position the client asks for in Bookshelf-Position (it waits a while
// for it).
func (v view) begin(w http.ResponseWriter, r *http.Request) bool {
	if ok, reason := v.readyz(); !ok {
		writeError(w, r, notReady(reason), "")
		return false
	}
	// The server has canonicalised the header names: index the map
	// directly, as Header.Get would after canonicalising again.
	var hv string
	if vs := r.Header[PositionHeader]; len(vs) > 0 {
		hv = vs[0]
	}
	if hv == "" {
		return true
	}
	pos, err := shelf.ParsePosition(hv)
	if err != nil {
		writeError(w, r, err, "")
		return false
	}
	if v.rep.Reached(pos) {
		return true
	}
	ctx, cancel := context.WithTimeout(r.Context(), v.cfg.waitTimeout)
	defer cancel()
	if err := v.rep.WaitFor(ctx, pos); err != nil {
		writeError(w, r, unavailable("not-caught-up", "Not caught up",
			"this replica has not caught up with your write yet (%s); retry", pos), "")
		return false
	}
	return true
}

// listQuery is the query string of a list.
type listQuery struct {
	limit, offset    int
	author, after, q string
}

// parseQuery reads ?limit=, ?offset= and, when withAuthor (the catalog),
// ?author=, ?q= and ?after=; the first of each counts. Other parameters
// are ignored. It walks the raw query itself rather than building
// url.Values: a view's GET is a hot path and this one allocates nothing
// for plain values.
func parseQuery(r *http.Request, defLimit int, withAuthor bool) (listQuery, error) {
	q := listQuery{limit: defLimit}
	var seenLimit, seenOffset, seenAuthor, seenAfter, seenQ bool
	for rest := r.URL.RawQuery; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if strings.Contains(pair, ";") {
			return q, badRequest("malformed-query", "", "the query string cannot be read: it contains a semicolon; separate parameters with &")
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err := unescapeQuery(k)
		if err != nil {
			return q, err
		}
		switch {
		case k == "limit" && !seenLimit:
			seenLimit = true
			q.limit, err = intParam("limit", v, 1, shelf.MaxLimit)
		case k == "offset" && !seenOffset:
			seenOffset = true
			q.offset, err = intParam("offset", v, 0, maxOffset)
		case k == "author" && withAuthor && !seenAuthor:
			seenAuthor = true
			q.author, err = textParam("author", v, MaxAuthorQuery)
		case k == "q" && withAuthor && !seenQ:
			seenQ = true
			q.q, err = textParam("q", v, MaxAuthorQuery)
		case k == "after" && withAuthor && !seenAfter:
			seenAfter = true
			if q.after, err = unescapeQuery(v); err == nil && len(q.after) > shelf.MaxIDLen {
				err = invalidField("after", "after is a book id, at most %d bytes; use the next cursor of a page", shelf.MaxIDLen)
			}
		}
		if err != nil {
			return q, err
		}
	}
	return q, nil
}

// intParam reads the integer value raw of query parameter name, from min
// to max.
func intParam(name, raw string, lo, hi int) (int, error) {
	s, err := unescapeQuery(raw)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, invalidField(name, "%s must be an integer from %d to %d, not %q", name, lo, hi, s)
	}
	return n, nil
}

// textParam reads the text value raw of query parameter name, at most
// maxRunes characters.
func textParam(name, raw string, maxRunes int) (string, error) {
	s, err := unescapeQuery(raw)
	if err != nil {
		return "", err
	}
	if n := utf8.RuneCountInString(s); n > maxRunes {
		return "", invalidField(name, "%s is %d characters long, at most %d allowed", name, n, maxRunes)
	}
	return s, nil
}

// unescapeQuery decodes one key or value of a query string.
func unescapeQuery(s string) (string, error) {
	if !strings.ContainsAny(s, "%+") {
		return s, nil
	}
	u, err := url.QueryUnescape(s)
	if err != nil {
		return "", badRequest("malformed-query", "", "the query string cannot be read: %v", err)
	}
	return u, nil
}

type lastRead struct {
	view
	rep *shelf.Replica[*shelf.LastRead]
	// answers keeps recent answers. Most requests are the same few (the
	// app's GET /books/last-read), and reading the view and encoding is
	// most of their cost.
	answers *answerCache
}

// lastReadList is the answer of the last-read view.
type lastReadList struct {
	Books []shelf.ReadEntry `json:"books"`
}

// list answers with the books read last: as {"books":[…]}, or as the bare
// list when bare.
func (h *lastRead) list(bare bool) http.HandlerFunc {
	shape := "object?"
	if bare {
		shape = "list?"
	}
	answer := func(entries []shelf.ReadEntry) any {
		if bare {
			return entries
		}
		return lastReadList{Books: entries}
	}
	return func(w http.ResponseWriter, r *http.Request) { h.serve(w, r, shape, answer) }
}

func (h *lastRead) serve(w http.ResponseWriter, r *http.Request, shape string, answer func([]shelf.ReadEntry) any) {
	if !h.begin(w, r) {
		return
	}
	// As the catalog's: found by the query as sent, and the version.
	version, key := h.rep.Version(), shape+r.URL.RawQuery
	if a := h.answers.get(version, key); a != nil {
		writeJSONBody(w, http.StatusOK, a.body, a.length)
		return
	}
	q, err := parseQuery(r, shelf.DefaultLastReadLimit, false)
	if err != nil {
		writeError(w, r, err, "")
		return
	}
	var entries []shelf.ReadEntry
	h.rep.Read(func(v *shelf.LastRead) { entries = v.Latest(q.offset + q.limit) })
	writeCached(w, r, h.answers, version, key, answer(entries[min(q.offset, len(entries)):]))
}

type catalog struct {
	view
	rep *shelf.Replica[*shelf.Catalog]
	// answers keeps recent pages: a page of a large shelf costs its
	// books' copies and their encoding, and the same few are asked most.
	answers *answerCache
}

// catalogList is the answer of GET /books. Next, when set, is the cursor
// of the page after: ?after=<next>.
type catalogList struct {
	Books  []shelf.CatalogBook `json:"books"`
	Total  int                 `json:"total"`
	Limit  int                 `json:"limit"`
	Offset int                 `json:"offset"`
	After  string              `json:"after,omitempty"`
	Next   string              `json:"next,omitempty"`
}

func (h *catalog) list(w http.ResponseWriter, r *http.Request) {
	if !h.begin(w, r) {
		return
	}
	// Kept answers are found by the query as sent, before it is parsed:
	// two spellings of one query are two entries, and a hit costs no
	// parsing.
	version, key := h.rep.Version(), r.URL.RawQuery
	if a := h.answers.get(version, key); a != nil {
		writeJSONBody(w, http.StatusOK, a.body, a.length)
		return
	}
	q, err := parseQuery(r, shelf.DefaultListLimit, true)
	if err != nil {
		writeError(w, r, err, "")
		return
	}
	ans := catalogList{Limit: q.limit, Offset: q.offset, After: q.after}
	// Encoding happens outside the lock: Page copies the books.
	h.rep.Read(func(v *shelf.Catalog) {
		ans.Books, ans.Total, ans.Next, err = v.Page(shelf.PageQuery{Author: q.author, Q: q.q, Limit: q.limit, After: q.after, Offset: q.offset})
	})
	if err != nil {
		writeError(w, r, err, "")
		return
	}
	writeCached(w, r, h.answers, version, key, ans)
}

// writeCached answers v as JSON, keeping the bytes in answers as the
// answer to key at version.
func writeCached(w http.ResponseWriter, r *http.Request, answers *answerCache, version uint64, key string, v any) {
	buf, err := encodeJSON(v)
	if err != nil {
		writeError(w, r, statusError(http.StatusInternalServerError, "the answer could not be encoded"), "")
		return
	}
	a := answers.put(version, key, buf.Bytes())
	putBuf(buf)
	writeJSONBody(w, http.StatusOK, a.body, a.length)
}

func (h *catalog) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok || !h.begin(w, r) {
		return
	}
	var (
		b   shelf.CatalogBook
		err error
	)
	h.rep.Read(func(v *shelf.Catalog) { b, err = v.Get(id) })
	if err != nil {
		writeError(w, r, err, id)
		return
	}
	writeJSON(w, r, http.StatusOK, b)
}

type stats struct {
	view
	rep *shelf.Replica[*shelf.Stats]
	// answers keeps the last snapshot: with thousands of authors it is
	// a long answer to build.
	answers *answerCache
}

func (h *stats) get(w http.ResponseWriter, r *http.Request) {
	if !h.begin(w, r) {
		return
	}
	version := h.rep.Version()
	if a := h.answers.get(version, ""); a != nil {
		writeJSONBody(w, http.StatusOK, a.body, a.length)
		return
	}
	var s shelf.ReadingStats
	h.rep.Read(func(v *shelf.Stats) { s = v.Snapshot() })
	writeCached(w, r, h.answers, version, "", s)
}
