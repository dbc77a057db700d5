package httpapi

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The HTTP edge depends on the domain and the metrics registry only: what
// it needs of Kafka or the registry is an interface declared here, and
// cmd/bookshelf wires the adapters in.
func TestImports(t *testing.T) {
	allowed := map[string]bool{
		"github.com/bookshelf/bookshelf/internal/shelf":   true,
		"github.com/bookshelf/bookshelf/internal/metrics": true,
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	docs := 0
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		if f.Doc != nil {
			docs++
			if !strings.HasPrefix(f.Doc.Text(), "Package httpapi ") {
				t.Errorf("%s: the package doc must start \"Package httpapi \"", name)
			}
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if strings.Contains(first, ".") && !allowed[path] {
				t.Errorf("%s imports %s: only the standard library, shelf and metrics are allowed", fset.Position(imp.Pos()), path)
			}
		}
	}
	if docs != 1 {
		t.Errorf("%d files carry a package doc comment, want 1", docs)
	}
}
