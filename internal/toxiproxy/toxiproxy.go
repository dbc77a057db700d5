// Package toxiproxy controls a Toxiproxy server over its HTTP API: the TCP
// proxies it runs, and the toxics on them. The compose stack puts one in
// front of the brokers for one books replica, so that the chaos harness
// can cut that replica off from the brokers while it keeps running, and
// reconnect it.
//
// A cut is a reset_peer toxic on what the client sends: every connection
// through the proxy, established or new, is reset (TCP RST) on its next
// request, as a firewall that rejects would. A cut leaves the proxies
// enabled on purpose: a disabled proxy lets go of its port, which another
// process on the machine may take meanwhile (the tests hand out ports in
// that range), and then the replica talks to whatever listens there, and
// the proxy cannot listen again. Only a proxy in front of a broker that is
// down is disabled (Disable), for the few seconds the broker is.
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
	Name     string  `json:"name"`
	Listen   string  `json:"listen"`
	Upstream string  `json:"upstream"`
	Enabled  bool    `json:"enabled"`
	Toxics   []Toxic `json:"toxics"`
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

// Disable closes the named proxy's port and every connection through it:
// a client is refused, as by a server that does not run. Enable opens it
// again. In front of a broker that died, a proxy left enabled accepts a
// connection and closes it at once, and a Kafka client takes that for a
// broker alive but troubled: it retries that broker rather than look for
// the one that took over its partitions or its coordinators, as a refused
// connection makes it do.
//
// The port is let go meanwhile: the stack's are below the ephemeral range,
// and so no outgoing connection takes one.
func (c *Client) Disable(ctx context.Context, proxy string) error {
	return c.setEnabled(ctx, proxy, false)
}

// Enable opens a proxy Disable closed; an open proxy stays open.
func (c *Client) Enable(ctx context.Context, proxy string) error {
	return c.setEnabled(ctx, proxy, true)
}

func (c *Client) setEnabled(ctx context.Context, proxy string, on bool) error {
	path, err := proxyPath(proxy)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, path, map[string]bool{"enabled": on}, nil)
}

// Toxic is one toxic on a proxy: a kind of trouble on one direction of
// its connections (upstream: what the client sends).
type Toxic struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Stream     string         `json:"stream"`
	Toxicity   float64        `json:"toxicity"`
	Attributes map[string]any `json:"attributes"`
}

// cut is the toxic of a cut: every connection reset on its next request.
var cut = Toxic{Name: "cut", Type: "reset_peer", Stream: "upstream", Toxicity: 1, Attributes: map[string]any{"timeout": 0}}

func proxyPath(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "/?#%") {
		return "", fmt.Errorf("toxiproxy: no proxy can be named %q", name)
	}
	return "/proxies/" + name, nil
}

// AddToxic adds a toxic to the named proxy, for its established
// connections as for new ones.
func (c *Client) AddToxic(ctx context.Context, proxy string, t Toxic) error {
	path, err := proxyPath(proxy)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, path+"/toxics", t, nil)
}

// RemoveToxic removes the named toxic from the named proxy.
func (c *Client) RemoveToxic(ctx context.Context, proxy, toxic string) error {
	path, err := proxyPath(proxy)
	if err != nil {
		return err
	}
	if _, err := proxyPath(toxic); err != nil {
		return fmt.Errorf("toxiproxy: no toxic can be named %q", toxic)
	}
	return c.do(ctx, http.MethodDelete, path+"/toxics/"+toxic, nil, nil)
}

// Toxics are the toxics on the named proxy.
func (c *Client) Toxics(ctx context.Context, proxy string) ([]Toxic, error) {
	path, err := proxyPath(proxy)
	if err != nil {
		return nil, err
	}
	var ts []Toxic
	return ts, c.do(ctx, http.MethodGet, path+"/toxics", nil, &ts)
}

// Cut resets every connection through every proxy of the server from now
// on, until Reconnect, and returns the proxies' names. A server with no
// proxy is an error: nothing would be cut. A proxy cut already stays cut.
func (c *Client) Cut(ctx context.Context) ([]string, error) {
	return c.each(ctx, func(p Proxy) error {
		if hasToxic(p, cut.Name) {
			return nil
		}
		return c.AddToxic(ctx, p.Name, cut)
	})
}

// Reconnect ends a cut on every proxy: connections made from now on pass.
// A proxy not cut is left as it is.
func (c *Client) Reconnect(ctx context.Context) ([]string, error) {
	return c.each(ctx, func(p Proxy) error {
		if !hasToxic(p, cut.Name) {
			return nil
		}
		return c.RemoveToxic(ctx, p.Name, cut.Name)
	})
}

// Restore opens every proxy and ends every cut: what a run stopped hard
// (between a fault and its heal) left closed or cut is passed again. It
// returns the names of the proxies it changed.
func (c *Client) Restore(ctx context.Context) ([]string, error) {
	ps, err := c.Proxies(ctx)
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, p := range ps {
		if !p.Enabled {
			if err := c.Enable(ctx, p.Name); err != nil {
				return changed, err
			}
		}
		if hasToxic(p, cut.Name) {
			if err := c.RemoveToxic(ctx, p.Name, cut.Name); err != nil {
				return changed, err
			}
		}
		if !p.Enabled || hasToxic(p, cut.Name) {
			changed = append(changed, p.Name)
		}
	}
	return changed, nil
}

func (c *Client) each(ctx context.Context, fn func(Proxy) error) ([]string, error) {
	ps, err := c.Proxies(ctx)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("toxiproxy at %s has no proxy", c.Addr)
	}
	var names []string
	for _, p := range ps {
		if err := fn(p); err != nil {
			return names, err
		}
		names = append(names, p.Name)
	}
	return names, nil
}

func hasToxic(p Proxy, name string) bool {
	return slices.ContainsFunc(p.Toxics, func(t Toxic) bool { return t.Name == name })
}
