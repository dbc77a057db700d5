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

// writeJSONBytes answers body, JSON already encoded.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", JSONContentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
