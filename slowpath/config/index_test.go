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
// result is in the index itself, not found through a fallback.
func FuzzIndex(f *testing.F) {
	for _, s := range []string{
		"a = 1\n[b.c]\nd = [1, [2, 3], {e = {f = 4}}]\n[[g]]\n[[g.h]]\ni.j = 5\n[[g]]\n",
		"x = { a.b = 1, c = [{ d = 2 }] }\n\"quoted.key\" = 1\n'lit' = 2\n",
		"[dataplane]\ninterfaces = [\"eth1\"]\n[[target_set]]\nserver = [{address = \"a\"}]\n",
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
		var walk func(path string, v any)
		walk = func(path string, v any) {
			if _, ok := ix.spans[path]; !ok && path != "" {
				t.Fatalf("path %q is not in the index %v", path, ix.spans)
			}
			switch v := v.(type) {
			case map[string]any:
				for k, e := range v {
					walk(join(path, k), e)
				}
			case []any:
				for i, e := range v {
					walk(elem(path, i), e)
				}
			}
		}
		walk("", doc)
	})
}
