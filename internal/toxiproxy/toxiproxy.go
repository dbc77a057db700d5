// Package toxiproxy controls a Toxiproxy server over its HTTP API: the TCP
// proxies it runs, and whether each passes traffic. The compose stack puts
// one in front of the brokers for one books replica, so that the chaos
// harness can cut that replica off from the brokers while it keeps running,
// and reconnect it.
//
// Disabling a proxy closes its listener and every connection it carries:
// the replica's established connections die, and new ones are refused,
// until it is enabled again.
package toxiproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Server is the Toxiproxy server's command, as `go install` takes it; the
// image the compose stack runs is built from it (infra/images.sh reads the
// version from this line), and the tests run it.
const Server = "github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0"

// Proxy is one TCP proxy of the server.
type Proxy struct {
	Name     string `json:"name"`
	Listen   string `json:"listen"`
	Upstream string `json:"upstream"`
	Enabled  bool   `json:"enabled"`
}

// Client talks to one Toxiproxy server.
type Client struct {
	// Addr is the server's API, host:port.
	Addr string
	// HTTP is the client used (default: one with a 10 s timeout).
	HTTP *http.Client
}

func (c *Client) do(ctx context.Context, method, path string, body any, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+c.Addr+path, r)
	if err != nil {
		return fmt.Errorf("toxiproxy %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("toxiproxy %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("toxiproxy %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("toxiproxy %s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("toxiproxy %s %s: the answer: %w", method, path, err)
	}
	return nil
}

// Proxies are the server's proxies, by name.
func (c *Client) Proxies(ctx context.Context) ([]Proxy, error) {
	var byName map[string]Proxy
	if err := c.do(ctx, http.MethodGet, "/proxies", nil, &byName); err != nil {
		return nil, err
	}
	out := make([]Proxy, 0, len(byName))
	for _, p := range byName {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Proxy) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Create adds a proxy, enabled or not; the server refuses a name it has.
func (c *Client) Create(ctx context.Context, p Proxy) error {
	return c.do(ctx, http.MethodPost, "/proxies", p, nil)
}

// SetEnabled enables or disables the named proxy; disabling it closes the
// connections it carries.
func (c *Client) SetEnabled(ctx context.Context, name string, enabled bool) error {
	if name == "" || strings.ContainsAny(name, "/?#") {
		return fmt.Errorf("toxiproxy: no proxy can be named %q", name)
	}
	return c.do(ctx, http.MethodPost, "/proxies/"+name, map[string]bool{"enabled": enabled}, nil)
}

// SetAll enables or disables every proxy of the server, and returns their
// names. A server with no proxy is an error: nothing would be cut.
func (c *Client) SetAll(ctx context.Context, enabled bool) ([]string, error) {
	ps, err := c.Proxies(ctx)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("toxiproxy at %s has no proxy", c.Addr)
	}
	var names []string
	for _, p := range ps {
		if err := c.SetEnabled(ctx, p.Name, enabled); err != nil {
			return names, err
		}
		names = append(names, p.Name)
	}
	return names, nil
}
