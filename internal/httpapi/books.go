package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/bookshelf/bookshelf/internal/metrics"
	"github.com/bookshelf/bookshelf/internal/shelf"
)

// Submitter hands a command to the aggregate and waits for its outcome:
// accepted or replayed (with the position of its event), or rejected. An
// error wrapping shelf.ErrUnavailable means the command path failed (the
// log cannot take writes, no outcome before ctx ended): the command may or
// may not take effect, and the client is told to retry. Any other error is
// a bug.
type Submitter interface {
	Submit(ctx context.Context, c shelf.Command) (shelf.Outcome, error)
}

// Header names of the API.
const (
	PositionHeader       = "Bookshelf-Position"
	IdempotencyKeyHeader = "Idempotency-Key"
)

// Limits of the command API.
const (
	MaxIdempotencyKeyLen = 255
	// maxReadAhead is how far in the future a read_at may be: clocks drift.
	maxReadAhead = 5 * time.Minute
)

// Canonical routes: an idempotency key is scoped by these, so a retry on
// an original path (/bookshelf/books...) is the same command.
const (
	routeAdd    = "POST /books"
	routeRemove = "DELETE /books/{id}"
	routeRead   = "POST /books/{id}/read"
)

// Books is the HTTP handler of the books service (the aggregate's command
// API): POST /books, DELETE /books/{id}, POST /books/{id}/read, and the
// original POST /bookshelf/books and POST /bookshelf/books/{id}/finished;
// plus /healthz, /readyz and /metrics.
//
// It checks a request, turns it into a shelf.Command, submits it and
// answers with the outcome. The answer of a command that took effect
// carries the position of its event in Bookshelf-Position, which a client
// hands to a view to read its own write.
func Books(s Submitter, opts ...Option) http.Handler {
	c := newConfig(opts)
	b := &books{sub: s, cfg: c, latency: c.metrics.HistogramVec("bookshelf_command_duration_seconds",
		"From a command's submission to its outcome, as the books service answers it, by command type and outcome "+
			"(accepted, replayed, rejected, unavailable, error).", CommandBuckets, "command", "outcome")}
	// Commands past the bound are shed at once: queued, they would
	// wait out their deadline and tie a connection each meanwhile.
	lim := newLimiter(c.maxCommands, "commands", c.gate, c.metrics)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /books", lim.wrap(b.add))
	mux.HandleFunc("POST /bookshelf/books", lim.wrap(b.add))
	mux.HandleFunc("DELETE /books/{id}", lim.wrap(b.remove))
	mux.HandleFunc("POST /books/{id}/read", lim.wrap(b.read))
	mux.HandleFunc("POST /bookshelf/books/{id}/finished", lim.wrap(b.read))
	Common(mux, c.ready, c.metrics)
	return wrap(mux, c)
}

type books struct {
	sub     Submitter
	cfg     *config
	latency *metrics.HistogramVec
}

// CommandBuckets are the bounds of the command latency histograms, in
// seconds: a command is decided in milliseconds when all is well, and
// waits up to the submit timeout (10 s) when it is not.
var CommandBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// addBody is the body of POST /books. Authors is kept raw to tell an absent
// or null list (no authors) from an empty one (an error).
type addBody struct {
	Title   *string         `json:"title"`
	Authors json.RawMessage `json:"authors"`
	Year    *int            `json:"year"`
	ISBN    *string         `json:"isbn"`
}

const addFields = `"title", "authors", "year" and "isbn"`

func (b *books) add(w http.ResponseWriter, r *http.Request) {
	key, err := idempotencyKey(r)
	if err != nil {
		writeError(w, r, err, "")
		return
	}
	body, err := readBody(w, r)
	if err != nil {
		writeError(w, r, err, "")
		return
	}
	if body == nil {
		writeError(w, r, badRequest("malformed-json", "", "the request body is empty; send a JSON object with %s", addFields), "")
		return
	}
	draft, err := parseDraft(body)
	if err != nil {
		writeError(w, r, err, "")
		return
	}
	id := randomID()
	if key != "" {
		// The same key names the same book, so a retry lands on the same
		// partition and the aggregate recognises it.
		id = KeyedBookID(key)
	}
	now := b.cfg.now()
	book, err := draft.Validate(id, now)
	if err != nil {
		writeError(w, r, err, "")
		return
	}
	cmd := b.command(shelf.CmdAddBook, routeAdd, id, key, body, now)
	cmd.Book = &book
	out, ok := b.submit(w, r, cmd)
	if !ok {
		return
	}
	answer := book
	if out.Book != nil {
		answer = *out.Book
		answer.ID = id
	}
	if answer.Authors == nil {
		answer.Authors = []string{}
	}
	w.Header().Set("Location", "/books/"+id)
	writeJSON(w, r, http.StatusCreated, answer)
}

// parseDraft decodes the body of POST /books.
func parseDraft(body []byte) (shelf.BookDraft, error) {
	var in addBody
	if err := decodeJSON(body, &in, addFields); err != nil {
		return shelf.BookDraft{}, err
	}
	d := shelf.BookDraft{Title: in.Title, Year: in.Year, ISBN: in.ISBN}
	// A null list counts as no list: "no authors", not "empty authors".
	if len(in.Authors) > 0 && string(in.Authors) != "null" {
		if err := json.Unmarshal(in.Authors, &d.Authors); err != nil {
			return shelf.BookDraft{}, invalidField("authors", "authors must be a list of strings")
		}
		d.AuthorsGiven = true
	}
	return d, nil
}

// bookAndKey reads the book id of the path and the Idempotency-Key of a
// per-book command, answering the error itself when one is wrong.
func bookAndKey(w http.ResponseWriter, r *http.Request) (id, key string, ok bool) {
	if id, ok = pathID(w, r); !ok {
		return "", "", false
	}
	key, err := idempotencyKey(r)
	if err != nil {
		writeError(w, r, err, id)
		return "", "", false
	}
	return id, key, true
}

// readAtBody is the optional body of POST /books/{id}/read.
type readAtBody struct {
	ReadAt *string `json:"read_at"`
}

func (b *books) read(w http.ResponseWriter, r *http.Request) {
	id, key, ok := bookAndKey(w, r)
	if !ok {
		return
	}
	body, err := readBody(w, r) // may be empty: then no Content-Type is needed
	if err != nil {
		writeError(w, r, err, id)
		return
	}
	now := b.cfg.now()
	readAt, err := parseReadAt(body, now)
	if err != nil {
		writeError(w, r, err, id)
		return
	}
	cmd := b.command(shelf.CmdMarkRead, routeRead, id, key, body, now)
	cmd.ReadAt = readAt
	out, ok := b.submit(w, r, cmd)
	if !ok {
		return
	}
	answer := readAnswer{ID: id, Authors: []string{}}
	if out.Book != nil {
		answer.Title = out.Book.Title
		if out.Book.Authors != nil {
			answer.Authors = out.Book.Authors
		}
	}
	switch {
	case out.ReadAt != nil:
		answer.ReadAt = out.ReadAt
	case !readAt.IsZero():
		answer.ReadAt = &readAt
	}
	writeJSON(w, r, http.StatusOK, answer)
}

// readAnswer is the answer of POST /books/{id}/read.
type readAnswer struct {
	ID      string     `json:"id"`
	Title   string     `json:"title"`
	Authors []string   `json:"authors"`
	ReadAt  *time.Time `json:"read_at,omitempty"`
}

// parseReadAt reads the optional {"read_at": RFC 3339} body. The zero time
// means "when the aggregate decides".
func parseReadAt(body []byte, now time.Time) (time.Time, error) {
	if body == nil {
		return time.Time{}, nil
	}
	var in readAtBody
	if err := decodeJSON(body, &in, `"read_at"`); err != nil {
		return time.Time{}, err
	}
	if in.ReadAt == nil {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *in.ReadAt)
	if err != nil {
		return time.Time{}, invalidField("read_at", "read_at must be an RFC 3339 time, such as \"2024-05-01T20:00:00Z\": %q is not", *in.ReadAt)
	}
	if t.IsZero() {
		return time.Time{}, invalidField("read_at", "read_at %s is not a plausible time", *in.ReadAt)
	}
	if t.After(now.Add(maxReadAhead)) {
		return time.Time{}, invalidField("read_at", "read_at %s is in the future", *in.ReadAt)
	}
	return t.UTC(), nil
}

func (b *books) remove(w http.ResponseWriter, r *http.Request) {
	id, key, ok := bookAndKey(w, r)
	if !ok {
		return
	}
	cmd := b.command(shelf.CmdRemoveBook, routeRemove, id, key, nil, b.cfg.now())
	if _, ok := b.submit(w, r, cmd); !ok {
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// command builds a command. Without an idempotency key its id is random;
// with one, it is derived from the key and the route, and the hash of the
// body lets the aggregate tell a retry (same body: the same answer) from a
// reuse of the key (another body: 409).
func (b *books) command(typ, route, bookID, key string, body []byte, now time.Time) shelf.Command {
	c := shelf.Command{Type: typ, BookID: bookID, IssuedAt: now.UTC()}
	if key == "" {
		c.ID = randomID()
		return c
	}
	c.ID = keyedCommandID(route, bookID, key)
	sum := sha256.Sum256(body)
	c.RequestHash = hex.EncodeToString(sum[:])
	return c
}

// submit hands cmd to the aggregate and writes the answer of anything but
// a success, which it returns for the caller to answer.
func (b *books) submit(w http.ResponseWriter, r *http.Request, cmd shelf.Command) (shelf.Outcome, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), b.cfg.submitTimeout)
	defer cancel()
	began := time.Now()
	out, err := b.sub.Submit(ctx, cmd)
	b.observe(cmd.Type, began, out, err)
	if err != nil {
		level := slog.LevelWarn
		if r.Context().Err() != nil {
			level = slog.LevelDebug // the client left; nobody reads the answer
		}
		b.cfg.log.LogAttrs(r.Context(), level, "command not submitted",
			slog.String("command_id", cmd.ID), slog.String("book_id", cmd.BookID),
			slog.String("type", cmd.Type), slog.Any("err", err))
		if ctx.Err() != nil && !errors.Is(err, shelf.ErrUnavailable) {
			// The wait ran out: the command path did not answer in time.
			err = fmt.Errorf("%w: %w", shelf.ErrUnavailable, err)
		}
		// ErrUnavailable is a 503 the client may retry; anything else
		// is a bug, a logged 500.
		writeError(w, r, err, cmd.BookID)
		return out, false
	}
	switch out.Status {
	case shelf.StatusAccepted, shelf.StatusReplayed:
		if out.Position != "" {
			w.Header().Set(PositionHeader, out.Position)
		}
		return out, true
	case shelf.StatusRejected:
		writeError(w, r, out.Err(), cmd.BookID)
		return out, false
	}
	writeError(w, r, fmt.Errorf("command %s: an outcome with an unknown status %q", cmd.ID, out.Status), cmd.BookID)
	return out, false
}

// observe counts a command's latency under its outcome.
func (b *books) observe(typ string, began time.Time, out shelf.Outcome, err error) {
	outcome := "error"
	switch {
	case errors.Is(err, shelf.ErrUnavailable) || (err != nil && errors.Is(err, context.DeadlineExceeded)):
		outcome = "unavailable"
	case err != nil:
	case out.Status == shelf.StatusAccepted:
		outcome = "accepted"
	case out.Status == shelf.StatusReplayed:
		outcome = "replayed"
	case out.Status == shelf.StatusRejected:
		outcome = "rejected"
	}
	b.latency.With(typ, outcome).Observe(time.Since(began).Seconds())
}

// idempotencyKey returns the request's Idempotency-Key, "" if none.
func idempotencyKey(r *http.Request) (string, error) {
	vals := r.Header.Values(IdempotencyKeyHeader)
	switch len(vals) {
	case 0:
		return "", nil
	case 1:
	default:
		return "", invalidField(IdempotencyKeyHeader, "send one Idempotency-Key header, not %d", len(vals))
	}
	k := vals[0]
	if len(k) == 0 || len(k) > MaxIdempotencyKeyLen {
		return "", invalidField(IdempotencyKeyHeader, "Idempotency-Key must be 1 to %d characters long", MaxIdempotencyKeyLen)
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return "", invalidField(IdempotencyKeyHeader, "Idempotency-Key must be printable ASCII")
		}
	}
	return k, nil
}

// pathID returns the {id} of the path, or answers 400.
func pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !validID(id) {
		writeError(w, r, invalidField("id", "a book id is 1 to %d characters of A-Z, a-z, 0-9, '.', '_' and '-'", shelf.MaxIDLen), "")
		return "", false
	}
	return id, true
}

func validID(id string) bool {
	if len(id) == 0 || len(id) > shelf.MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// randomID returns 16 random bytes in hex.
func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	return hex.EncodeToString(b[:])
}

// derive returns a stable id of 32 hex digits for s.
// KeyedBookID is the id of the book a POST /books with the Idempotency-Key
// key adds.
func KeyedBookID(key string) string { return derive("book-id " + key) }

// KeyedCommandID is the id of the command a request with the
// Idempotency-Key key becomes: of type shelf.CmdAddBook, CmdMarkRead or
// CmdRemoveBook, on bookID. A checker finds the command's events by it.
func KeyedCommandID(typ, bookID, key string) string {
	route := map[string]string{shelf.CmdAddBook: routeAdd, shelf.CmdMarkRead: routeRead, shelf.CmdRemoveBook: routeRemove}[typ]
	return keyedCommandID(route, bookID, key)
}

func keyedCommandID(route, bookID, key string) string {
	scope := route
	if route != routeAdd {
		scope += " " + bookID
	}
	return derive(scope + " " + key)
}

func derive(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}
