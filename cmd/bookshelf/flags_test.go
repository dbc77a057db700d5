package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// Every flag falls back to its BOOKSHELF_* variable; a flag given on the
// command line wins, and a variable that does not parse is an error naming
// it.
func TestFlagsFallBackToTheEnvironment(t *testing.T) {
	type values struct {
		topic   string
		port    int
		session time.Duration
	}
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		want    values
		wantErr string
	}{
		{name: "defaults", want: values{"bookshelf", 8081, 6 * time.Second}},
		{name: "environment",
			env:  map[string]string{"BOOKSHELF_TOPIC": "shelf", "BOOKSHELF_PORT": "9000", "BOOKSHELF_SESSION_TIMEOUT": "10s"},
			want: values{"shelf", 9000, 10 * time.Second}},
		{name: "flags win",
			env:  map[string]string{"BOOKSHELF_TOPIC": "shelf", "BOOKSHELF_PORT": "9000"},
			args: []string{"--topic", "mine", "--port", "9001", "--session-timeout", "8s"},
			want: values{"mine", 9001, 8 * time.Second}},
		{name: "bad integer", env: map[string]string{"BOOKSHELF_PORT": "eighty"},
			wantErr: `$BOOKSHELF_PORT="eighty": not an integer`},
		{name: "bad duration", env: map[string]string{"BOOKSHELF_SESSION_TIMEOUT": "6"},
			wantErr: `$BOOKSHELF_SESSION_TIMEOUT="6": not a duration`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out bytes.Buffer
			f := newFlags("books", "test", &out)
			var v values
			f.str(&v.topic, "topic", "bookshelf", "topic")
			f.int(&v.port, "port", 8081, "port")
			f.duration(&v.session, "session-timeout", 6*time.Second, "session")
			err := f.parse(tc.args)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("parse: %v, want an error containing %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if v != tc.want {
				t.Errorf("got %+v, want %+v", v, tc.want)
			}
		})
	}
}

func TestFlagsHelpNamesTheVariables(t *testing.T) {
	var out bytes.Buffer
	f := newFlags("books", "The aggregate.", &out)
	var port int
	var session time.Duration
	f.int(&port, "port", 8081, "HTTP port")
	f.duration(&session, "session-timeout", 6*time.Second, "session")
	if err := f.parse([]string{"--help"}); err != errHelpShown {
		t.Fatalf("--help: %v, want it shown", err)
	}
	for _, want := range []string{"usage: bookshelf books", "$BOOKSHELF_PORT", "$BOOKSHELF_SESSION_TIMEOUT", "The aggregate."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("help lacks %q:\n%s", want, out.String())
		}
	}
}

// The original README started its view with "--tags books last": several
// words after one flag, as Python's argparse took them. Every service
// takes that, the quoted form, and the comma form alike.
func TestFlagsTakeTheOriginalsTags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		tags    string
		port    int
		wantErr string
	}{
		{args: []string{"--topic", "bookshelf", "--port", "8087", "--name", "lastreadbooks", "--id", "lastread1", "--tags", "books", "last"},
			tags: "books last", port: 8087},
		{args: []string{"--tags", "books", "last", "--port", "8088"}, tags: "books last", port: 8088},
		{args: []string{"--tags", "books last"}, tags: "books last", port: 1},
		{args: []string{"-tags=books", "last"}, tags: "books last", port: 1},
		{args: []string{"--tags", "books,last"}, tags: "books,last", port: 1},
		{args: []string{"--tags", "books"}, tags: "books", port: 1},
		{args: []string{"--tags"}, wantErr: "flag needs an argument"},
		{args: []string{"--port", "8087", "last"}, wantErr: `unexpected argument "last"`},
	} {
		var out bytes.Buffer
		f := newFlags("lastread", "test", &out)
		var tags, topic, name, id string
		var port int
		f.words(&tags, "tags", "", "tags")
		f.str(&topic, "topic", "", "topic")
		f.str(&name, "name", "", "name")
		f.str(&id, "id", "", "id")
		f.int(&port, "port", 1, "port")
		err := f.parse(tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error()+out.String(), tc.wantErr) {
				t.Errorf("parse %q: %v, want an error saying %s", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || tags != tc.tags || port != tc.port {
			t.Errorf("parse %q: tags %q, port %d, %v; want %q and %d", tc.args, tags, port, err, tc.tags, tc.port)
		}
		if got := tagList(tags); len(got) != len(strings.Fields(strings.ReplaceAll(tc.tags, ",", " "))) {
			t.Errorf("parse %q: tag list %q", tc.args, got)
		}
	}
}
