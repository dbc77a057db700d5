package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type staticResolver map[string][]string

func (s staticResolver) Resolve(_ context.Context, service string) ([]string, error) {
	if service == "broken" {
		return nil, errors.New("registry away")
	}
	return s[service], nil
}

func instance(t *testing.T, ready int, readyBody, metrics string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			w.WriteHeader(ready)
			w.Write([]byte(readyBody))
		case "/metrics":
			w.Write([]byte(metrics))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// The operations page shows what each instance says of itself, and what
// cannot be asked, and why.
func TestOpsStatus(t *testing.T) {
	view := instance(t, 200, "ready\n", "# HELP x\nbookshelf_records_dead_lettered_total 3\nother 1\n").URL
	books := instance(t, 200, "ready, but the dead-letter topic is away\n", "bookshelf_commands_dead_lettered_total 1\n").URL
	behind := instance(t, 503, `{"title":"Not ready","detail":"catching up: 10 of 20 records"}`, "").URL
	// An instance the registry still lists, gone before the page asks.
	gone := instance(t, 200, "", "")
	gone.Close()
	ops := &Ops{
		Resolver: staticResolver{"books": {books}, "booklist": {view, behind}, "gateway": {gone.URL}},
		Services: []string{"books", "booklist", "readingstats", "broken", "gateway"},
		DeadLetters: func(context.Context) (int, int, error) {
			return 4, 1, nil
		},
	}
	h := Handler(api, ops)

	rec := get(t, h, "/ops/status")
	var st opsStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || rec.Code != 200 {
		t.Fatalf("%d %v %s", rec.Code, err, rec.Body)
	}
	byName := map[string]opsService{}
	for _, s := range st.Services {
		byName[s.Service] = s
	}
	if len(st.Services) != 5 || st.DeadLetters == nil || st.DeadLetters.Total != 4 || st.DeadLetters.Waiting != 1 {
		t.Fatalf("status = %+v", st)
	}
	b := byName["books"].Instances[0]
	if !b.Ready || !strings.Contains(b.Status, "dead-letter topic is away") || b.DeadLettered == nil || *b.DeadLettered != 1 {
		t.Errorf("books = %+v", b)
	}
	cat := byName["booklist"].Instances
	if !cat[0].Ready || *cat[0].DeadLettered != 3 || cat[1].Ready || cat[1].Status != "Not ready: catching up: 10 of 20 records" {
		t.Errorf("catalog = %+v", cat)
	}
	if len(byName["readingstats"].Instances) != 0 || byName["broken"].Error != "registry away" {
		t.Errorf("a service without instances, one the registry cannot say: %+v %+v", byName["readingstats"], byName["broken"])
	}
	if g := byName["gateway"].Instances[0]; g.Ready || !strings.HasPrefix(g.Status, "unreachable") {
		t.Errorf("gone = %+v", g)
	}

	if rec := get(t, h, "/ops", "Accept", chromeAccept); rec.Code != 200 || !strings.Contains(rec.Body.String(), "/app/ops.js") {
		t.Errorf("GET /ops: %d", rec.Code)
	}
	// Without a broker to ask, the page says so.
	ops.DeadLetters = nil
	if rec := get(t, h, "/ops/status"); !strings.Contains(rec.Body.String(), "bookshelf dlq list") {
		t.Errorf("no broker: %s", rec.Body)
	}
	// Without Ops, /ops is the API's (a 404 there).
	if rec := get(t, Handler(api, nil), "/ops"); rec.Body.String() != "api GET /ops" {
		t.Errorf("no ops: %s", rec.Body)
	}
}
