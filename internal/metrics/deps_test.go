package metrics

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The registry is a leaf: the standard library only, so that any package
// may count into it without an import cycle or a dependency.
func TestImports(t *testing.T) {
	allowed := map[string]bool{}
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
			if !strings.HasPrefix(f.Doc.Text(), "Package metrics ") {
				t.Errorf("%s: the package doc must start \"Package metrics \"", name)
			}
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			first, _, _ := strings.Cut(path, "/")
			if strings.Contains(first, ".") && !allowed[path] {
				t.Errorf("%s imports %s: only the standard library is allowed", fset.Position(imp.Pos()), path)
			}
		}
	}
	if docs != 1 {
		t.Errorf("%d files carry a package doc comment, want 1", docs)
	}
}
