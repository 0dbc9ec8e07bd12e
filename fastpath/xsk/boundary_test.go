package xsk_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestAsavieOnlyInTests enforces the boundary: github.com/asavie/xdp is
// imported only by this package's tests (reference implementation and
// benchmark baseline), never by production code anywhere in the module.
func TestAsavieOnlyInTests(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Skipf("module root not at %s: %v", root, err)
	}
	self := filepath.Join(root, "fastpath", "xsk")
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "vendor" || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if p != "github.com/asavie/xdp" && !strings.HasPrefix(p, "github.com/asavie/xdp/") {
				continue
			}
			if filepath.Dir(path) != self || !strings.HasSuffix(path, "_test.go") {
				rel, _ := filepath.Rel(root, path)
				t.Errorf("%s imports %s: only fastpath/xsk tests may", rel, p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
