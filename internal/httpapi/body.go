package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBodyBytes bounds a request body. A book is far smaller; anything
// bigger is a mistake or an attack, answered 413.
const MaxBodyBytes = 64 << 10

// readBody reads the whole body, at most MaxBodyBytes, and checks its media
// type. An empty body (or only white space) is returned as nil without a
// media type check, so a POST that may carry nothing needs no Content-Type.
// The bytes are kept as received: an idempotency key hashes them.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	if r.ContentLength > MaxBodyBytes {
		return nil, tooLarge(w)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return nil, tooLarge(w)
		}
		return nil, badRequest("malformed-body", "", "the request body could not be read: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	if err := checkJSONType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	return body, nil
}

func tooLarge(w http.ResponseWriter) error {
	// The rest of the body is not read: do not reuse the connection.
	w.Header().Set("Connection", "close")
	return statusError(http.StatusRequestEntityTooLarge, "the request body is larger than %d KiB", MaxBodyBytes>>10)
}

// checkJSONType accepts application/json and application/*+json, with
// parameters, in UTF-8 (the only encoding JSON allows on the wire).
func checkJSONType(ct string) error {
	if ct == "" {
		return statusError(http.StatusUnsupportedMediaType, "the request has a body but no Content-Type; send it as application/json")
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return statusError(http.StatusUnsupportedMediaType, "Content-Type %q cannot be parsed; send application/json", ct)
	}
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return statusError(http.StatusUnsupportedMediaType, "Content-Type %s is not accepted; send application/json", mt)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return statusError(http.StatusUnsupportedMediaType, "charset %s is not accepted; JSON is sent as UTF-8", cs)
	}
	return nil
}

// decodeJSON decodes body, one JSON object, into v. Unknown fields are
// refused so that a typo ("author") is not silently dropped; known is the
// list of field names the message suggests.
func decodeJSON(body []byte, v any, known string) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, known)
	}
	end := dec.InputOffset()
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return badRequest("malformed-json", "", "the request body goes on after the JSON object ends (at byte %d): send one object", end)
	}
	return nil
}

// jsonError turns a decoding error into a 400 a person can act on.
func jsonError(err error, known string) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return badRequest("malformed-json", "", "the request body is not valid JSON: %v (at byte %d)", syn, syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
		return badRequest("malformed-json", "", "the request body is not valid JSON: it ends in the middle of a value")
	case errors.As(err, &typ):
		field, _, _ := strings.Cut(typ.Field, ".")
		if field == "" {
			return badRequest("malformed-json", "", "the request body must be a JSON object, not %s", article(typ.Value))
		}
		return invalidField(field, "%s must be %s, not %s", field, expected(field), article(typ.Value))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return invalidField(name, "unknown field %q; the fields are %s", name, known)
	}
	return badRequest("malformed-json", "", "the request body is not valid JSON: %v", err)
}

func expected(field string) string {
	switch field {
	case "authors":
		return "a list of strings"
	case "year":
		return "an integer"
	case "read_at":
		return "an RFC 3339 time, such as \"2024-05-01T20:00:00Z\""
	}
	return "a string"
}

// article reads the decoder's "string", "number 1.5", "array"... as words.
func article(v string) string {
	kind, rest, _ := strings.Cut(v, " ")
	if kind == "bool" {
		kind = "boolean"
	}
	a := "a"
	if kind == "array" || kind == "object" {
		a = "an"
	}
	if rest != "" {
		return fmt.Sprintf("%s %s (%s)", a, kind, rest)
	}
	return a + " " + kind
}
