package shelf

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// parsePackage parses the package's own (non-test) files with comments.
func parsePackage(t *testing.T) (*token.FileSet, map[string]*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	files := map[string]*ast.File{}
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(".", name), nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = f
	}
	if len(files) == 0 {
		t.Fatal("no Go files found")
	}
	return fset, files
}

// The domain is the centre: it imports the standard library only, never an
// adapter nor a module from outside. A standard library path has no dot in
// its first element.
func TestStandardLibraryOnly(t *testing.T) {
	fset, files := parsePackage(t)
	for _, f := range files {
		for _, imp := range f.Imports {
			path, err := strconv.Unquote(imp.Path.Value)
			if err != nil {
				t.Fatal(err)
			}
			if !standard(path) {
				t.Errorf("%s imports %q: package shelf may import only the standard library", fset.Position(imp.Pos()), path)
			}
			if path == "C" || path == "unsafe" {
				t.Errorf("%s imports %q", fset.Position(imp.Pos()), path)
			}
		}
	}
}

// standard reports whether path names a package of the standard library.
func standard(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func TestStandard(t *testing.T) {
	for path, want := range map[string]bool{
		"time":                             true,
		"encoding/json":                    true,
		"testing/synctest":                 true,
		"github.com/twmb/franz-go/pkg/kgo": false,
		"github.com/bookshelf/bookshelf/internal/kafka": false,
		"golang.org/x/sync/errgroup":                    false,
		"gopkg.in/yaml.v3":                              false,
	} {
		if got := standard(path); got != want {
			t.Errorf("standard(%q) = %v", path, got)
		}
	}
}

// The package has one doc comment, in the form go doc expects.
func TestPackageDoc(t *testing.T) {
	_, files := parsePackage(t)
	var with []string
	for name, f := range files {
		if f.Name.Name != "shelf" {
			t.Errorf("%s is package %s", name, f.Name.Name)
		}
		if f.Doc == nil {
			continue
		}
		with = append(with, name)
		if text := f.Doc.Text(); !strings.HasPrefix(text, "Package shelf ") {
			t.Errorf("%s: package doc starts %q, want \"Package shelf ...\"", name, text[:min(len(text), 30)])
		}
	}
	if len(with) != 1 {
		t.Errorf("package doc comments in %v, want exactly one", with)
	}
}

// Every exported name says what it is for: other packages are written
// against them.
func TestExportedNamesDocumented(t *testing.T) {
	fset, files := parsePackage(t)
	for _, f := range files {
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Name.IsExported() && d.Doc == nil && exportedReceiver(d) {
					t.Errorf("%s: %s has no doc comment", fset.Position(d.Pos()), d.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					var names []*ast.Ident
					var doc *ast.CommentGroup
					switch s := spec.(type) {
					case *ast.TypeSpec:
						names, doc = []*ast.Ident{s.Name}, s.Doc
					case *ast.ValueSpec:
						names, doc = s.Names, s.Doc
					}
					for _, n := range names {
						// A grouped declaration may be documented as a group.
						if n.IsExported() && doc == nil && d.Doc == nil {
							t.Errorf("%s: %s has no doc comment", fset.Position(n.Pos()), n.Name)
						}
					}
				}
			}
		}
	}
}

// exportedReceiver reports whether a method's receiver type is exported
// (or d is a plain function): methods of unexported types are not in the
// documentation.
func exportedReceiver(d *ast.FuncDecl) bool {
	if d.Recv == nil || len(d.Recv.List) == 0 {
		return true
	}
	typ := d.Recv.List[0].Type
	for {
		switch x := typ.(type) {
		case *ast.StarExpr:
			typ = x.X
		case *ast.IndexExpr:
			typ = x.X
		case *ast.IndexListExpr:
			typ = x.X
		case *ast.Ident:
			return x.IsExported()
		default:
			return true
		}
	}
}
