package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestParseList(t *testing.T) {
	const list = `# a comment

id: first
file: pkg/a.go
find: 	if x > 1 {
replace: 	if x >= 1 {
test: ./pkg/ -run 'TestA|TestB'
test: ./e2e/
why: boundary

id: second
file: pkg/b.go
re: return (\w+), nil
replace: return $1, errFake
test: ./pkg/

id: third
file: pkg/c.go
find: delete(m, k)
replace:
test: ./pkg/
`
	got, err := ParseList(strings.NewReader(list))
	if err != nil {
		t.Fatalf("ParseList: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("ParseList: %d entries, want 3: %+v", len(got), got)
	}
	a := got[0]
	if a.ID != "first" || a.File != "pkg/a.go" || a.Find != "\tif x > 1 {" || a.Replace != "\tif x >= 1 {" || a.Why != "boundary" || a.ListPos != 3 {
		t.Errorf("entry 1 = %+v", a)
	}
	if want := [][]string{{"./pkg/", "-run", "TestA|TestB"}, {"./e2e/"}}; !reflect.DeepEqual(a.Tests, want) {
		t.Errorf("entry 1 tests = %q, want %q", a.Tests, want)
	}
	if got[1].Re == nil || got[1].Re.String() != `return (\w+), nil` {
		t.Errorf("entry 2 re = %v", got[1].Re)
	}
	if got[2].Replace != "" || !got[2].hasReplace {
		t.Errorf("entry 3 replace = %q (given: %v), want an empty replacement", got[2].Replace, got[2].hasReplace)
	}
}

func TestParseListErrors(t *testing.T) {
	for _, tc := range []struct {
		name, list, want string
	}{
		{"unknown key", "id: a\nfile: f.go\nfind: x\nreplace: y\ntest: ./\nwho: me\n", `unknown key "who"`},
		{"no replace", "id: a\nfile: f.go\nfind: x\ntest: ./\n", "no replace"},
		{"no test", "id: a\nfile: f.go\nfind: x\nreplace: y\n", "no test"},
		{"find and re", "id: a\nfile: f.go\nfind: x\nre: x\nreplace: y\ntest: ./\n", "exactly one of find and re"},
		{"no-op", "id: a\nfile: f.go\nfind: x\nreplace: x\ntest: ./\n", "not a mutation"},
		{"duplicate id", "id: a\nfile: f.go\nfind: x\nreplace: y\ntest: ./\n\nid: a\nfile: f.go\nfind: z\nreplace: y\ntest: ./\n", `id "a" already used at line 1`},
		{"bad id", "id: A b\nfile: f.go\nfind: x\nreplace: y\ntest: ./\n", "id \"A b\""},
		{"outside", "id: a\nfile: ../f.go\nfind: x\nreplace: y\ntest: ./\n", "inside the repository"},
		{"quote", "id: a\nfile: f.go\nfind: x\nreplace: y\ntest: ./ -run 'X\n", "unterminated quote"},
		{"bad re", "id: a\nfile: f.go\nre: (\nreplace: y\ntest: ./\n", "missing closing )"},
		{"not key value", "id: a\nthis is not\n", `want "key: value"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseList(strings.NewReader(tc.list))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParseList(%q) error = %v, want one containing %q", tc.list, err, tc.want)
			}
		})
	}
}

func TestApply(t *testing.T) {
	src := []byte("package p\n\nfunc f(x int) bool {\n\tif x > 1 {\n\t\treturn true\n\t}\n\treturn false\n}\n")
	m := Mutation{ID: "m", File: "p.go", Find: "x > 1", Replace: "x >= 1"}
	out, line, err := m.Apply(src)
	if err != nil || line != 4 {
		t.Fatalf("Apply = line %d, %v; want line 4", line, err)
	}
	if want := strings.Replace(string(src), "x > 1", "x >= 1", 1); string(out) != want {
		t.Errorf("Apply = %q, want %q", out, want)
	}

	re := Mutation{ID: "r", File: "p.go", Re: mustRE(t, `return (true|false)\n`), Replace: "return !$1\n"}
	if _, _, err := re.Apply(src); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("Apply(regexp matching two lines) error = %v, want ErrAmbiguous", err)
	}
	re.Re = mustRE(t, `return (true)`)
	out, line, err = re.Apply(src)
	if err != nil || line != 5 || !bytes.Contains(out, []byte("\t\treturn !true\n")) {
		t.Errorf("Apply(regexp) = line %d, %v:\n%s", line, err, out)
	}

	stale := Mutation{ID: "s", File: "p.go", Find: "x > 2", Replace: "x"}
	if _, _, err := stale.Apply(src); !errors.Is(err, ErrStale) {
		t.Errorf("Apply(text not in the file) error = %v, want ErrStale", err)
	}
	twice := Mutation{ID: "t", File: "p.go", Find: "return", Replace: "return"}
	if _, _, err := twice.Apply(src); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("Apply(text on two lines) error = %v, want ErrAmbiguous", err)
	}
	sameLine := Mutation{ID: "u", File: "p.go", Find: "x", Replace: "y"}
	if _, _, err := sameLine.Apply([]byte("a := x + x\n")); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("Apply(text twice on one line) error = %v, want ErrAmbiguous", err)
	}
	noop := Mutation{ID: "v", File: "p.go", Re: mustRE(t, `x > 1`), Replace: "x > 1"}
	if _, _, err := noop.Apply(src); err == nil || !strings.Contains(err.Error(), "changes nothing") {
		t.Errorf("Apply(replacement equal to the original) error = %v, want \"changes nothing\"", err)
	}
}

func TestSplitArgs(t *testing.T) {
	for in, want := range map[string][]string{
		"./fastpath/":                       {"./fastpath/"},
		"  ./a/  ./b/ ":                     {"./a/", "./b/"},
		`./e2e/ -run 'LeastLoad|PeerAware'`: {"./e2e/", "-run", "LeastLoad|PeerAware"},
		`-run "A B" x`:                      {"-run", "A B", "x"},
		`-run ''`:                           {"-run", ""},
	} {
		got, err := splitArgs(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestFailedTests(t *testing.T) {
	out := `--- FAIL: TestA (0.00s)
    a_test.go:3: F(1) = 2, want 3
--- FAIL: TestB (0.01s)
    --- FAIL: TestB/sub (0.00s)
FAIL
FAIL	example.com/p	0.02s
`
	if got, want := failedTests(out), []string{"TestA", "TestB/sub"}; !reflect.DeepEqual(got, want) {
		t.Errorf("failedTests = %q, want %q", got, want)
	}
	if got := failedTests("panic: test timed out after 1s\nFAIL\texample.com/p\t1.0s\n"); len(got) == 0 || got[0] != "timeout" {
		t.Errorf("failedTests(timeout) = %q, want timeout first", got)
	}
	if got, want := failedTests("panic: boom\nFAIL\texample.com/p\t0.1s\n"), []string{"FAIL\texample.com/p\t0.1s"}; !reflect.DeepEqual(got, want) {
		t.Errorf("failedTests(panic) = %q, want %q", got, want)
	}
}

func TestReplaceSection(t *testing.T) {
	doc := []byte("# T\n\nbefore\n" + beginMarker + "\nold\nresult\n" + endMarker + "\nafter\n")
	out, err := replaceSection(doc, "new result\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := "# T\n\nbefore\n" + beginMarker + "\nnew result\n" + endMarker + "\nafter\n"; string(out) != want {
		t.Errorf("replaceSection = %q, want %q", out, want)
	}
	if _, err := replaceSection([]byte("no markers\n"), "x"); err == nil {
		t.Error("replaceSection without markers: no error")
	}
}

// TestMutateModule runs the whole check on a small module with one mutation
// its test catches, one it misses and one that does not build: the verdicts,
// the exit status, the markdown section and an untouched work tree.
func TestMutateModule(t *testing.T) {
	for _, tool := range []string{"git", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	repo := t.TempDir()
	files := map[string]string{
		"go.mod":      "module example.com/m\n\ngo 1.22\n",
		"p/p.go":      "package p\n\n// Max returns the larger of a and b.\nfunc Max(a, b int) int {\n\tif a > b {\n\t\treturn a\n\t}\n\treturn b\n}\n\n// Unused is not tested.\nfunc Unused() int { return 1 }\n",
		"p/p_test.go": "package p\n\nimport \"testing\"\n\nfunc TestMax(t *testing.T) {\n\tif got := Max(2, 1); got != 2 {\n\t\tt.Errorf(\"Max(2, 1) = %d, want 2\", got)\n\t}\n}\n",
		"list.txt": "id: max-flipped\nfile: p/p.go\nfind: if a > b {\nreplace: if a < b {\ntest: ./p/\n\n" +
			"id: unused-changed\nfile: p/p.go\nfind: return 1 }\nreplace: return 2 }\ntest: ./p/\nwhy: nothing tests it\n\n" +
			"id: broken\nfile: p/p.go\nfind: return b\nreplace: return c\ntest: ./p/\n",
		"TESTING.md": "# Testing\n\n" + beginMarker + "\n" + endMarker + "\n",
	}
	for name, text := range files {
		path := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "m"}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	var stdout, stderr bytes.Buffer
	code, err := mutate(context.Background(), options{repo: repo, list: "list.txt", write: "TESTING.md", timeout: defaultTestTimeout}, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if err != nil || code != 1 {
		t.Fatalf("mutate = %d, %v; want 1 (one survivor), no error", code, err)
	}
	for _, want := range []string{"3 mutations: 1 caught, 1 survived, 1 invalid", "max-flipped", "TestMax"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	md, err := os.ReadFile(filepath.Join(repo, "TESTING.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| survived | `unused-changed` | p/p.go:12 | nothing tests it |", "| caught | `max-flipped` | p/p.go:5 | TestMax (go test ./p/) |", "| invalid | `broken` |"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("TESTING.md lacks %q:\n%s", want, md)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(repo, "p/p.go")); string(b) != files["p/p.go"] {
		t.Errorf("the work tree's p/p.go changed:\n%s", b)
	}

	// A stale entry stops the run before any test.
	stale := files["list.txt"] + "\nid: gone\nfile: p/p.go\nfind: no such line\nreplace: x\ntest: ./p/\n"
	if err := os.WriteFile(filepath.Join(repo, "list.txt"), []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	stderr.Reset()
	code, err = mutate(context.Background(), options{repo: repo, list: "list.txt", timeout: defaultTestTimeout}, &stdout, &stderr)
	if code != 1 || err == nil || !strings.Contains(stderr.String(), "STALE gone") || strings.Contains(stderr.String(), "baseline") {
		t.Errorf("mutate with a stale entry = %d, %v, stderr %q; want 1, an error, the entry named, no test run", code, err, stderr.String())
	}
}

func mustRE(t *testing.T, s string) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	return re
}
