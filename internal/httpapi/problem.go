package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/bookshelf/bookshelf/internal/shelf"
)

// ProblemContentType is the media type of every error answer (RFC 9457).
const ProblemContentType = "application/problem+json"

// problemBase prefixes the type URIs of the problems specific to the
// bookshelf. They identify a kind of problem; nothing is served there.
// Problems that an HTTP status says all about use "about:blank".
const problemBase = "https://bookshelf.dev/problems/"

// Problem is an RFC 9457 problem details object.
type Problem struct {
	Type     string `json:"type"`
	Title    string `json:"title"`
	Status   int    `json:"status"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
	// Field names the wrong field, query parameter or header of a 400.
	Field string `json:"field,omitempty"`

	// retryAfter is the Retry-After header in seconds, 0 for none.
	retryAfter int
}

// requestError is an error of the HTTP layer (body, media type, query,
// headers, readiness) that knows its answer.
type requestError struct {
	status     int
	kind       string // the type's last segment; "" for about:blank
	title      string
	field      string
	detail     string
	retryAfter int
}

func (e *requestError) Error() string { return e.detail }

func badRequest(kind, field, format string, args ...any) *requestError {
	title := "Malformed request"
	if field != "" {
		title = "Invalid field"
	}
	return &requestError{status: http.StatusBadRequest, kind: kind, title: title, field: field, detail: fmt.Sprintf(format, args...)}
}

func invalidField(field, format string, args ...any) *requestError {
	return badRequest("invalid-field", field, format, args...)
}

func unavailable(kind, title, format string, args ...any) *requestError {
	return &requestError{status: http.StatusServiceUnavailable, kind: kind, title: title, detail: fmt.Sprintf(format, args...), retryAfter: 1}
}

// statusError is a problem that an HTTP status says all about.
func statusError(status int, format string, args ...any) *requestError {
	return &requestError{status: status, detail: fmt.Sprintf(format, args...)}
}

// problemTable maps the domain's errors to HTTP. It is the one place where
// that happens; the order matters (first match wins).
var problemTable = []struct {
	target error
	status int
	kind   string
	title  string
}{
	{shelf.ErrNotFound, http.StatusNotFound, "not-found", "Book not found"},
	{shelf.ErrRemoved, http.StatusNotFound, "removed", "Book removed"},
	{shelf.ErrConflict, http.StatusConflict, "conflict", "Conflict"},
	// The request is well formed, but what it would write the log does
	// not take; sending it again gets the same answer.
	{shelf.ErrRefused, http.StatusUnprocessableEntity, "refused", "Refused by the event log"},
	// Well formed, but the aggregate instance that owns the book cannot
	// decide it (a command type it does not know, during an upgrade).
	{shelf.ErrUndecidable, http.StatusUnprocessableEntity, "undecidable", "Cannot be decided"},
	// The log cannot take the command now: retry.
	{shelf.ErrUnavailable, http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	{shelf.ErrInvalid, http.StatusBadRequest, "invalid-request", "Invalid request"},
}

// problemFor turns an error into the answer a client gets. bookID, when
// known, makes the detail of a 404 precise. Anything the table does not
// know is a bug: a 500, which writeError logs, never a 503 that would tell
// clients and the gateway to retry it.
func problemFor(err error, bookID string) Problem {
	var re *requestError
	if errors.As(err, &re) {
		p := Problem{Type: "about:blank", Title: re.title, Status: re.status, Detail: re.detail, Field: re.field, retryAfter: re.retryAfter}
		if re.kind != "" {
			p.Type = problemBase + re.kind
		}
		if p.Title == "" {
			p.Title = http.StatusText(re.status)
		}
		return p
	}
	var fe *shelf.FieldError
	if errors.As(err, &fe) {
		return Problem{
			Type: problemBase + "invalid-field", Title: "Invalid field", Status: http.StatusBadRequest,
			Detail: fe.Field + ": " + fe.Reason, Field: fe.Field,
		}
	}
	for _, row := range problemTable {
		if !errors.Is(err, row.target) {
			continue
		}
		p := Problem{Type: problemBase + row.kind, Title: row.title, Status: row.status, Detail: err.Error()}
		switch row.target {
		case shelf.ErrNotFound:
			if bookID != "" {
				p.Detail = fmt.Sprintf("there is no book with id %q", bookID)
			}
		case shelf.ErrRemoved:
			if bookID != "" {
				p.Detail = fmt.Sprintf("the book %q was removed", bookID)
			}
		case shelf.ErrUnavailable:
			p.retryAfter = 1
			p.Detail = "the event log cannot take writes right now; retry in a moment"
			if errors.Is(err, context.DeadlineExceeded) {
				p.Detail = "no outcome for the command arrived in time; it may still take effect: retry with the same Idempotency-Key to be safe"
			}
		case shelf.ErrConflict:
			// An outcome carries the aggregate's message, which already
			// starts with "conflict: "; say it once.
			d := p.Detail
			for strings.HasPrefix(d, "conflict: ") {
				d = strings.TrimPrefix(d, "conflict: ")
			}
			p.Detail = d
		}
		return p
	}
	return Problem{
		Type: "about:blank", Title: http.StatusText(http.StatusInternalServerError), Status: http.StatusInternalServerError,
		Detail: "the server failed on this request; it has been logged",
	}
}

// writeError answers err as a problem. An error the table does not know
// (a 500) is handed to the middleware, which logs it with the request.
func writeError(w http.ResponseWriter, r *http.Request, err error, bookID string) {
	p := problemFor(err, bookID)
	if p.Status == http.StatusInternalServerError {
		if sw, ok := w.(*statusWriter); ok {
			sw.err = err
		}
	}
	writeProblem(w, r, p)
}

// writeProblem writes p, with the request path as its instance.
func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Instance == "" && r != nil {
		p.Instance = r.URL.Path
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: strings and ints only
		body = []byte(`{"type":"about:blank","title":"Internal Server Error","status":500}`)
		p.Status = http.StatusInternalServerError
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", ProblemContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Encoding")
	if p.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(p.retryAfter))
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}
