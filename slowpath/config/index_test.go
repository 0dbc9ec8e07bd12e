package config

import (
	"testing"

	toml "github.com/pelletier/go-toml/v2"
)

func TestIndex(t *testing.T) {
	doc := `a = 1
[dataplane]
interfaces = ["eth0", "eth1"]

[[target_set]]
name = "x"
  [[target_set.server]]
  address = "10.0.0.1"
  [[target_set.server]]
  address = "10.0.0.2"
[[ target_set ]]
dotted.key = 5
server = [
  { address = "10.0.0.3" },
  {
    address = "10.0.0.4"
  },
]
`
	ix, err := buildIndex([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path      string
		atKey     bool
		line, col int
	}{
		{"a", true, 1, 1},
		{"a", false, 1, 5},
		{"dataplane", false, 2, 1},
		{"dataplane", true, 2, 2},
		{"dataplane.interfaces", false, 3, 14},
		{"dataplane.interfaces[1]", false, 3, 23},
		{"dataplane.queues", false, 2, 1}, // missing: its table
		{"target_set", false, 5, 1},
		{"target_set[0]", false, 5, 1},
		{"target_set[0]", true, 5, 3},
		{"target_set[0].name", false, 6, 8},
		{"target_set[0].server[0]", false, 7, 3},
		{"target_set[0].server[1].address", false, 10, 13},
		{"target_set[0].server[1].weight", false, 9, 3}, // missing: its table
		{"target_set[1]", false, 11, 1},
		{"target_set[1]", true, 11, 4},
		{"target_set[1].dotted", true, 12, 1},
		{"target_set[1].dotted.key", true, 12, 8},
		{"target_set[1].dotted.key", false, 12, 14},
		{"target_set[1].server", false, 13, 10},
		{"target_set[1].server[0]", false, 14, 3},
		{"target_set[1].server[0].address", false, 14, 15},
		{"target_set[1].server[1].address", false, 16, 15},
		{"target_set[2].name", false, 5, 1}, // no such element: the array
		{"nowhere.at.all", false, 1, 1},     // the document
		{"", false, 1, 1},
	}
	for _, tt := range tests {
		if got := ix.find(tt.path, tt.atKey); got != (pos{tt.line, tt.col}) {
			t.Errorf("find(%q, %v) = %d:%d, want %d:%d", tt.path, tt.atKey, got.line, got.col, tt.line, tt.col)
		}
	}
}

// TestIndexNestedArrays checks the position of arrays inside arrays, which
// go-toml leaves without a range, across lines, comments and inline tables.
func TestIndexNestedArrays(t *testing.T) {
	doc := `a = [ # c
  [1, [2]], # d
  [],
  [["x"], {y = [3, [4]]}],
]
[[t]]
[t.s]
[[t]]
[t.s]   # explicit after a dotted header below
[u.v.w]
[u.v]
`
	ix, err := buildIndex([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		path      string
		line, col int
	}{
		{"a", 1, 5},
		{"a[0]", 2, 3},
		{"a[0][1]", 2, 7},
		{"a[0][1][0]", 2, 8},
		{"a[1]", 3, 3},
		{"a[2]", 4, 3},
		{"a[2][0]", 4, 4},
		{"a[2][0][0]", 4, 5},
		{"a[2][1]", 4, 11},
		{"a[2][1].y", 4, 16},
		{"a[2][1].y[1]", 4, 20},
		{"a[2][1].y[1][0]", 4, 21},
		{"t[1].s", 9, 1},
		{"u.v.w", 10, 1},
		{"u.v", 11, 1}, // the explicit header, not the earlier mention
	} {
		if got := ix.find(tt.path, false); got != (pos{tt.line, tt.col}) {
			t.Errorf("find(%q) = %d:%d, want %d:%d", tt.path, got.line, got.col, tt.line, tt.col)
		}
	}
}

func TestParent(t *testing.T) {
	for path, want := range map[string]string{
		"a":                    "",
		"a.b":                  "a",
		"a[1]":                 "a",
		"a[1].b[2]":            "a[1].b",
		"target_set[0].server": "target_set[0]",
		"]":                    "",
		"":                     "",
	} {
		if got := parent(path); got != want {
			t.Errorf("parent(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestSuggest(t *testing.T) {
	keys := dataplaneSchema.keys
	for word, want := range map[string]string{
		"interface":   "interfaces",
		"ring_sise":   "ring_size",
		"ringsize":    "ring_size",
		"batch_szie":  "batch_size", // swap
		"BUSY_POLL":   "busy_poll",  // case
		"queue":       "queues",
		"xdp":         "",
		"framez_size": "frame_size",
		"nonsense":    "",
	} {
		if got := suggest(word, keys); got != want {
			t.Errorf("suggest(%q) = %q, want %q", word, got, want)
		}
	}
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "abc", 0}, {"abc", "acb", 1}, {"abc", "ab", 1}, {"kitten", "sitting", 3}, {"a", "abcdef", 3},
	} {
		if got := distance(tt.a, tt.b, 2); got != min(tt.want, 3) {
			t.Errorf("distance(%q, %q) = %d, want %d", tt.a, tt.b, got, min(tt.want, 3))
		}
	}
}

// FuzzIndex checks that the position index and go-toml's decoder agree:
// for every document go-toml decodes, each key path and array element of the
// result is in the index itself, not found through a fallback, and points at
// the value: an array at its '[', an element that is a table at the '[' of its
// header or the '{' of an inline table, a string at its quote, and the
// elements of an array each further on than the one before.
func FuzzIndex(f *testing.F) {
	for _, s := range []string{
		"a = 1\n[b.c]\nd = [1, [2, 3], {e = {f = 4}}]\n[[g]]\n[[g.h]]\ni.j = 5\n[[g]]\n",
		"x = { a.b = 1, c = [{ d = 2 }] }\n\"quoted.key\" = 1\n'lit' = 2\n",
		"[dataplane]\ninterfaces = [\"eth1\"]\n[[target_set]]\nserver = [{address = \"a\"}]\n",
		"a = [ # c\n  [1, [2]], # d\n  [],\n  [[\"x\"], {y = [3]}],\n]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var doc map[string]any
		if toml.Unmarshal(data, &doc) != nil {
			return
		}
		ix, err := buildIndex(data)
		if err != nil {
			t.Fatalf("go-toml decodes the document but buildIndex fails: %v", err)
		}
		// offset returns the byte offset of the value position of path.
		offset := func(path string) int {
			p := ix.spans[path].val
			if p.line < 1 || p.line > len(ix.lines) {
				t.Fatalf("path %q is at line %d of %d", path, p.line, len(ix.lines))
			}
			off := ix.lines[p.line-1] + p.col - 1
			if off < 0 || off >= len(data) {
				t.Fatalf("path %q is at %d:%d, outside the document", path, p.line, p.col)
			}
			return off
		}
		at := func(path string) byte { return data[offset(path)] }
		var walk func(path string, v any, inArray bool)
		walk = func(path string, v any, inArray bool) {
			if _, ok := ix.spans[path]; !ok && path != "" {
				t.Fatalf("path %q is not in the index %v", path, ix.spans)
			}
			switch v := v.(type) {
			case map[string]any:
				if inArray {
					if c := at(path); c != '[' && c != '{' {
						t.Fatalf("table %q is at %q, want '[' or '{'", path, c)
					}
				}
				for k, e := range v {
					walk(join(path, k), e, false)
				}
			case []any:
				if c := at(path); c != '[' {
					t.Fatalf("array %q is at %q, want '['", path, c)
				}
				prev := offset(path)
				for i, e := range v {
					ep := elem(path, i)
					walk(ep, e, true)
					// The first [[table]] header is also the array's.
					sameAsArray := i == 0 && isTable(v)
					if off := offset(ep); off < prev || off == prev && !sameAsArray {
						t.Fatalf("%s is at offset %d, not after %d", ep, off, prev)
					} else {
						prev = off
					}
				}
			case string:
				if c := at(path); c != '"' && c != '\'' {
					t.Fatalf("string %q is at %q, want a quote", path, c)
				}
			}
		}
		walk("", doc, false)
	})
}
