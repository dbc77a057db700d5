package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A service on --port 0 writes the port it got to --addr-file, and the probe
// finds it there: the health check of a container whose port no one chose.
func TestProbeFindsAServiceOnPortZero(t *testing.T) {
	file := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, []string{"gateway", "--port", "0", "--addr-file", file}, &bytes.Buffer{}, &stderr)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := run(t.Context(), []string{"probe", "--addr-file", file, "/healthz"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("probe never passed: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if addr := strings.TrimSpace(string(b)); !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
		t.Errorf("--addr-file holds %q, want 127.0.0.1 and the port the kernel gave", addr)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("gateway: %v", err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("the address file outlived the service: %v", err)
	}
}

func TestProbeAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.Error(w, "catching up", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	cases := []struct {
		args    []string
		wantErr string
	}{
		{args: []string{srv.URL + "/readyz"}},
		{args: []string{srv.URL + "/other"}, wantErr: "503 Service Unavailable: catching up"},
		{args: []string{"readyz"}, wantErr: "want a URL"},
		{args: []string{"/readyz"}, wantErr: "needs --addr-file"},
		{args: []string{"--addr-file", "/nonexistent/addr", "/readyz"}, wantErr: "has not written its address"},
		{args: []string{}, wantErr: "one URL or path"},
		{args: []string{"http://127.0.0.1:1/readyz"}, wantErr: "connection refused"},
	}
	for _, tc := range cases {
		err := run(t.Context(), append([]string{"probe"}, tc.args...), &bytes.Buffer{}, &bytes.Buffer{})
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("probe %q: %v", tc.args, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("probe %q: %v, want an error containing %q", tc.args, err, tc.wantErr)
		}
	}
}
