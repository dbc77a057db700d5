package toxiproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// server builds and starts the real Toxiproxy server on a free port, and
// stops it at the end of the test. Without the Go module proxy it skips,
// unless BOOKSHELF_REQUIRE_INFRA is set (CI), where it fails.
func server(t *testing.T) *Client {
	t.Helper()
	bin := t.TempDir()
	install := exec.Command("go", "install", "-trimpath", Server)
	install.Env = append(os.Environ(), "GOBIN="+bin, "CGO_ENABLED=0", "GOFLAGS=")
	install.Dir = bin // outside this module: the server's own go.mod decides its dependencies
	if out, err := install.CombinedOutput(); err != nil {
		msg := "go install " + Server + ": " + err.Error() + ": " + strings.TrimSpace(string(out))
		if os.Getenv("BOOKSHELF_REQUIRE_INFRA") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	port := freePort(t)
	cmd := exec.Command(filepath.Join(bin, "server"), "-host", "127.0.0.1", "-port", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	c := &Client{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	ctx := t.Context()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Proxies(ctx)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("toxiproxy did not answer in 10 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// echo serves lines back on a free port, as a broker stands behind a proxy.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				_, _ = io.Copy(conn, conn)
			}()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(conn net.Conn, line string) (string, error) {
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(conn, line+"\n"); err != nil {
		return "", err
	}
	got, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(got), err
}

// through opens a connection to addr and sends line over it, which must
// come back; the connection stays open until the test ends.
func through(t *testing.T, addr, line string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("%s: %v", line, err)
	}
	t.Cleanup(func() { conn.Close() })
	if got, err := roundTrip(conn, line); err != nil || got != line {
		t.Fatalf("%s, through the proxy: %q, %v", line, got, err)
	}
	return conn
}

// A cut resets the connections through every proxy, the established ones
// as the new ones, while the proxy keeps its port; after the reconnection
// a new connection passes. Cutting twice, or reconnecting what is not cut,
// changes nothing; names it has not got, or cannot have, are errors.
func TestCutAndReconnect(t *testing.T) {
	c := server(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := c.Cut(ctx); err == nil {
		t.Error("a server with no proxy was cut")
	}
	if err := c.Create(ctx, Proxy{Name: "kafka-1", Listen: "127.0.0.1:0", Upstream: echo(t), Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(ctx, Proxy{Name: "kafka-1", Listen: "127.0.0.1:0", Upstream: echo(t), Enabled: true}); err == nil {
		t.Error("a second proxy of the same name was created")
	}
	ps, err := c.Proxies(ctx)
	if err != nil || len(ps) != 1 || !ps[0].Enabled || strings.HasSuffix(ps[0].Listen, ":0") {
		t.Fatalf("proxies %+v, %v: want kafka-1, enabled, on the port it got", ps, err)
	}
	addr := ps[0].Listen

	conn := through(t, addr, "before")

	for range 2 {
		names, err := c.Cut(ctx)
		if err != nil || len(names) != 1 || names[0] != "kafka-1" {
			t.Fatalf("cut: %v, %v", names, err)
		}
	}
	if ts, err := c.Toxics(ctx, "kafka-1"); err != nil || len(ts) != 1 || ts[0].Type != "reset_peer" {
		t.Errorf("toxics after two cuts: %+v, %v: want one reset_peer", ts, err)
	}
	// The established connection dies: its next request ends with an
	// error, not a timeout (which would mean it still stood, only silent).
	dead := func(what string, conn net.Conn) {
		t.Helper()
		got, err := roundTrip(conn, what)
		var ne net.Error
		if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Errorf("%s: a connection passed the cut: %q, %v", what, got, err)
		}
	}
	dead("established", conn)
	if conn2, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		t.Errorf("a new connection while cut: %v, want it accepted, then reset", err)
	} else {
		dead("new", conn2)
		conn2.Close()
	}
	// The proxy keeps its port while cut: nothing else can listen there.
	if ln, err := net.Listen("tcp", addr); err == nil {
		ln.Close()
		t.Errorf("%s was free while cut", addr)
	}

	for range 2 {
		if _, err := c.Reconnect(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ts, err := c.Toxics(ctx, "kafka-1"); err != nil || len(ts) != 0 {
		t.Errorf("toxics after the reconnection: %+v, %v", ts, err)
	}
	through(t, addr, "after the reconnection")

	if err := c.AddToxic(ctx, "kafka-9", cut); err == nil {
		t.Error("a toxic was added to a proxy the server has not got")
	}
	if err := c.RemoveToxic(ctx, "kafka-1", "cut"); err == nil {
		t.Error("a toxic the proxy has not got was removed")
	}
	for _, bad := range []string{"", "a/b", "x?y", "%2e%2e"} {
		if err := c.AddToxic(ctx, bad, cut); err == nil {
			t.Errorf("a toxic was added to a proxy named %q", bad)
		}
		if err := c.RemoveToxic(ctx, "kafka-1", bad); err == nil {
			t.Errorf("a toxic named %q was removed", bad)
		}
	}
	down := &Client{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))}
	if _, err := down.Proxies(ctx); err == nil {
		t.Error("a server that does not run answered")
	}
}

// A disabled proxy refuses connections and drops the established ones, as
// a server that died; enabled again, it passes new ones. Enabling an open
// proxy changes nothing, and a name it has not got is an error.
func TestDisableAndEnable(t *testing.T) {
	c := server(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := c.Create(ctx, Proxy{Name: "kafka-2", Listen: addr, Upstream: echo(t), Enabled: true}); err != nil {
		t.Fatal(err)
	}
	conn := through(t, addr, "before")

	if err := c.Disable(ctx, "kafka-2"); err != nil {
		t.Fatal(err)
	}
	if got, err := roundTrip(conn, "established"); err == nil {
		t.Errorf("an established connection passed a disabled proxy: %q", got)
	}
	if conn2, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn2.Close()
		t.Error("a disabled proxy accepted a connection, want it refused")
	}
	if ps, err := c.Proxies(ctx); err != nil || len(ps) != 1 || ps[0].Enabled {
		t.Errorf("proxies %+v, %v: want kafka-2 disabled", ps, err)
	}

	for range 2 {
		if err := c.Enable(ctx, "kafka-2"); err != nil {
			t.Fatal(err)
		}
	}
	through(t, addr, "after enabling")
	if err := c.Disable(ctx, "kafka-9"); err == nil {
		t.Error("a proxy the server has not got was disabled")
	}
	if err := c.Enable(ctx, "a/b"); err == nil {
		t.Error("a proxy named a/b was enabled")
	}
}

// Restore opens a closed proxy and ends a cut on another, names the two,
// and leaves the one that was fine alone.
func TestRestore(t *testing.T) {
	c := server(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	addrs := map[string]string{}
	for _, name := range []string{"kafka-1", "kafka-2", "kafka-3"} {
		addrs[name] = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
		if err := c.Create(ctx, Proxy{Name: name, Listen: addrs[name], Upstream: echo(t), Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Disable(ctx, "kafka-1"); err != nil {
		t.Fatal(err)
	}
	if err := c.AddToxic(ctx, "kafka-3", cut); err != nil {
		t.Fatal(err)
	}
	changed, err := c.Restore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(changed, ",") != "kafka-1,kafka-3" {
		t.Errorf("restored %v, want kafka-1 and kafka-3", changed)
	}
	for name, addr := range addrs {
		through(t, addr, "after restoring "+name)
	}
	if changed, err := c.Restore(ctx); err != nil || len(changed) != 0 {
		t.Errorf("a second restore changed %v (%v), want nothing", changed, err)
	}
}
