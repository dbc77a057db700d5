package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// runProbe is a health check for images without curl: it asks one URL and
// succeeds only on 200. A bare path (/readyz) is asked of the address a
// service wrote to its --addr-file, so that a service on --port 0 can be
// checked without knowing the port it got.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f := newFlags("probe", "Ask a service's URL and exit 0 only on 200 OK: the health check of the image.\nThe argument is a URL (http://127.0.0.1:8080/readyz) or a path (/readyz) asked\nof the address in --addr-file, written there by a service started with the same file.", stderr)
	var addrFile string
	var timeout time.Duration
	f.str(&addrFile, "addr-file", "", "file a service wrote its listening address to (see the services' --addr-file)")
	f.duration(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	if err := f.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelpShown
		}
		return errHelp
	}
	if err := f.envErr; err != nil {
		return err
	}
	if f.NArg() != 1 {
		f.Usage()
		return errors.New("probe takes one URL or path")
	}
	target, err := probeURL(f.Arg(0), addrFile)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return fmt.Errorf("probe %q: %w", target, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe %s: %s: %s", target, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(stdout, "%s: %s\n", target, resp.Status)
	return nil
}

// probeURL is arg when it is a URL, else arg as a path on the address read
// from addrFile.
func probeURL(arg, addrFile string) (string, error) {
	if strings.HasPrefix(arg, "http://") || strings.HasPrefix(arg, "https://") {
		return arg, nil
	}
	if !strings.HasPrefix(arg, "/") {
		return "", fmt.Errorf("probe %q: want a URL (http://host:port/path) or a path (/readyz)", arg)
	}
	if addrFile == "" {
		return "", fmt.Errorf("probe %q: a path needs --addr-file (or $%s) to say where the service listens", arg, envName("addr-file"))
	}
	b, err := os.ReadFile(addrFile)
	if err != nil {
		return "", fmt.Errorf("probe: the service has not written its address yet: %w", err)
	}
	hostPort := strings.TrimSpace(string(b))
	if _, _, err := net.SplitHostPort(hostPort); err != nil {
		return "", fmt.Errorf("probe: %s holds %q, not host:port", addrFile, hostPort)
	}
	return "http://" + hostPort + arg, nil
}

// writeAddrFile writes where ln listens to path (nothing when path is
// empty), for the probe of a service whose port was chosen at start. The
// returned func removes it. The address is one a client on this host can
// dial: a wildcard listener is reached on loopback.
func writeAddrFile(path string, ln net.Listener) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	addr := ln.Addr().(*net.TCPAddr)
	host := addr.IP.String()
	if addr.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(net.JoinHostPort(host, fmt.Sprint(addr.Port))+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("--addr-file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("--addr-file: %w", err)
	}
	return func() { os.Remove(path) }, nil
}
