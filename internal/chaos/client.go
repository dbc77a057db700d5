package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// The API's headers the clients use.
const (
	IdempotencyKeyHeader = "Idempotency-Key"
	PositionHeader       = "Bookshelf-Position"
)

// Client settings.
const (
	// giveUp is how long a client retries one command before it records
	// its outcome as unknown.
	giveUp = 20 * time.Second
	// requestTimeout bounds one request.
	requestTimeout = 5 * time.Second
)

// Client uses the shelf through a gateway as a careful user would: it adds
// books of its own, marks them read, removes some, and reads each back
// after each write it was told of, asking for that write's position.
type Client struct {
	ID int
	// Gateways are where it sends its requests, http://host:port: one at a
	// time, the next one after a request that one did not answer at all
	// (refused, reset, timed out), as a load balancer in front of them
	// would. Client i starts at gateway i modulo their number.
	Gateways []string
	// Prefix makes the run's keys, and so its books, its own.
	Prefix  string
	History *History
	HTTP    *http.Client
	// BookID is the id of the book a POST /books with the key adds.
	BookID func(key string) string
	rng    *rand.Rand
	books  []clientBook
	n      int
	gw     int // the index of the gateway in use
}

// clientBook is a book a client added (or may have: its add's outcome
// unknown), removed or not: the client goes on using it, and the model
// decides what each answer may be.
type clientBook struct {
	id       string
	position string // of the last write acknowledged
}

// Run performs operations until ctx ends, pausing pause between them.
func (c *Client) Run(ctx context.Context, seed uint64, pause time.Duration) {
	c.rng = rand.New(rand.NewPCG(seed, uint64(c.ID)))
	c.gw = c.ID % max(1, len(c.Gateways))
	for ctx.Err() == nil {
		c.step(ctx)
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

func (c *Client) step(ctx context.Context) {
	r := c.rng.IntN(100)
	if len(c.books) == 0 || r < 30 {
		c.add(ctx)
		return
	}
	b := &c.books[c.rng.IntN(len(c.books))]
	switch {
	case r < 70:
		c.command(ctx, b, OpRead, http.MethodPost, "/books/"+b.id+"/read", `{}`)
	case r < 80:
		c.command(ctx, b, OpRemove, http.MethodDelete, "/books/"+b.id, "")
	default:
		c.get(ctx, b) // a re-read, of a removed book too
	}
}

func (c *Client) key() string {
	c.n++
	return fmt.Sprintf("%s-c%d-%d", c.Prefix, c.ID, c.n)
}

func (c *Client) add(ctx context.Context) {
	key := c.key()
	b := clientBook{id: c.BookID(key)}
	body := fmt.Sprintf(`{"title":"Chaos %s","authors":["Client %d"]}`, key, c.ID)
	op := c.do(ctx, Op{Kind: OpAdd, Book: b.id, Key: key}, http.MethodPost, "/books", body)
	if op.Result == Refused {
		return // never on the shelf
	}
	// Known or not, the book may be on the shelf: it is read and written
	// again, and the model decides what each answer may be.
	b.position = op.Position
	c.books = append(c.books, b)
	if op.Result == Ok {
		c.get(ctx, &c.books[len(c.books)-1])
	}
}

func (c *Client) command(ctx context.Context, b *clientBook, kind, method, path, body string) {
	op := c.do(ctx, Op{Kind: kind, Book: b.id, Key: c.key()}, method, path, body)
	if op.Result == Ok {
		if op.Position != "" {
			b.position = op.Position
		}
		c.get(ctx, b)
	}
}

// get reads the book back from the catalog, at the position of its last
// acknowledged write.
func (c *Client) get(ctx context.Context, b *clientBook) {
	c.do(ctx, Op{Kind: OpGet, Book: b.id, Position: b.position}, http.MethodGet, "/books/"+b.id, "")
}

// do sends one operation, retrying with the same key what the system could
// not answer, and records it.
func (c *Client) do(ctx context.Context, op Op, method, path, body string) Op {
	op.Client, op.Call = c.ID, time.Now()
	deadline := op.Call.Add(giveUp)
	wait := 100 * time.Millisecond
	moved := false // to the next gateway, since the last answer
	for {
		op.Tries++
		status, hdr, resp, err := c.send(ctx, op, method, path, body)
		op.Status = status
		if err == nil {
			moved = false
		}
		switch {
		case err == nil && status < 300:
			op.Result = Ok
			if op.Kind == OpGet {
				var b struct{ Reads int }
				if json.Unmarshal(resp, &b) != nil {
					op.Result = Unknown
				}
				op.Reads = b.Reads
			} else {
				op.Position = hdr.Get(PositionHeader)
			}
		case err == nil && status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests:
			op.Result, op.Problem = Refused, problemKind(resp)
		case err != nil && len(c.Gateways) > 1 && !moved && time.Now().Before(deadline) && ctx.Err() == nil:
			// That gateway did not answer: the next one gets the retry at
			// once, with the same key; if it does not answer either, the
			// client waits as below before each further try.
			c.gw = (c.gw + 1) % len(c.Gateways)
			moved = true
			continue
		default:
			if err != nil {
				c.gw = (c.gw + 1) % max(1, len(c.Gateways))
			}
			if time.Now().Add(wait).Before(deadline) && ctx.Err() == nil {
				time.Sleep(wait)
				wait = min(2*wait, time.Second)
				continue
			}
			op.Result = Unknown
		}
		op.Return = time.Now()
		c.History.Add(op)
		return op
	}
}

func (c *Client) send(ctx context.Context, op Op, method, path, body string) (int, http.Header, []byte, error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), requestTimeout)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(rctx, method, c.Gateways[c.gw]+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if op.Key != "" {
		req.Header.Set(IdempotencyKeyHeader, op.Key)
	}
	if op.Position != "" && op.Kind == OpGet {
		req.Header.Set(PositionHeader, op.Position)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header, b, err
}

// problemKind is the last part of a problem's type: "not-found",
// "removed", "conflict", ...
func problemKind(body []byte) string {
	var p struct{ Type string }
	if json.Unmarshal(bytes.TrimSpace(body), &p) != nil {
		return ""
	}
	return p.Type[strings.LastIndexByte(p.Type, '/')+1:]
}
