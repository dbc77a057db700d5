package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
)

// JSONContentType is the media type of every successful JSON answer.
const JSONContentType = "application/json"

// bufPool holds encoding buffers: an answer is encoded once, whole, so its
// length is known and an encoding error can still become a problem.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf keeps an unusually large answer's buffer out of the pool.
const maxPooledBuf = 256 << 10

// encodeJSON appends v, as JSON and a newline, to a pooled buffer. The
// caller returns the buffer with putBuf.
func encodeJSON(v any) (*bytes.Buffer, error) {
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		putBuf(buf)
		return nil, err
	}
	return buf, nil
}

func putBuf(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBuf {
		bufPool.Put(buf)
	}
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	buf, err := encodeJSON(v)
	if err != nil {
		// Only a bug gets here (the answers are plain structs); it is not
		// the client's fault.
		writeError(w, r, statusError(http.StatusInternalServerError, "the answer could not be encoded"), "")
		return
	}
	writeJSONBytes(w, status, buf.Bytes())
	putBuf(buf)
}

// jsonContentType is the Content-Type value of a JSON answer, built once.
// Assigning a value to the header map directly skips Header.Set's
// canonicalising (the names here are canonical) and its allocation. Sharing
// one slice is safe because header values are replaced, never changed in
// place: Set and Del replace the slice, and Add appends past its capacity
// into a new one.
var jsonContentType = []string{JSONContentType}

// contentLength is the Content-Length value of a body of n bytes.
func contentLength(n int) []string { return []string{strconv.Itoa(n)} }

// writeJSONBytes answers body, JSON already encoded.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	writeJSONBody(w, status, body, contentLength(len(body)))
}

// writeJSONBody answers body, JSON already encoded, whose Content-Length
// value is length: a cached answer builds its own once.
func writeJSONBody(w http.ResponseWriter, status int, body []byte, length []string) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	h["Content-Length"] = length
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
