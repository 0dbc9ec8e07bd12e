package config

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// pos is a 1-based line and column (in bytes) in the document.
type pos struct{ line, col int }

// span is where one key path is written.
type span struct {
	key pos // the key, or the name in a table header
	val pos // the value, the '[' of a table header or the '{' of an inline table
}

// index maps key paths such as "target_set[1].server[0].address" to where
// they are written. Elements of arrays and arrays of tables get "[i]".
type index struct {
	data   []byte
	lines  []int // offset of the start of each line
	spans  map[string]span
	arrays map[string]int // array of tables path -> elements seen so far
}

// buildIndex walks a document that go-toml has already decoded without
// error, so its structure is known to be valid TOML.
func buildIndex(data []byte) (*index, error) {
	ix := &index{
		data:   data,
		lines:  lineStarts(data),
		spans:  make(map[string]span),
		arrays: make(map[string]int),
	}
	var p unstable.Parser
	p.Reset(data)
	table := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			table = ix.header(e)
		case unstable.KeyValue:
			ix.keyValue(table, e)
		}
	}
	return ix, p.Error()
}

// find returns where path is written: its key when atKey is set, else its
// value. A path that is not in the document (a missing key) resolves to its
// closest written ancestor, such as the header of its table, and finally to
// the start of the document.
func (ix *index) find(path string, atKey bool) pos {
	for p := path; ; p = parent(p) {
		if s, ok := ix.spans[p]; ok {
			if atKey && p == path {
				return s.key
			}
			return s.val
		}
		if p == "" {
			return pos{1, 1}
		}
	}
}

// lineStarts returns the offset of the start of each line of data.
func lineStarts(data []byte) []int {
	lines := []int{0}
	for i, c := range data {
		if c == '\n' {
			lines = append(lines, i+1)
		}
	}
	return lines
}

// offset converts a byte offset into a position.
func (ix *index) offset(off int) pos {
	i := sort.Search(len(ix.lines), func(i int) bool { return ix.lines[i] > off }) - 1
	return pos{line: i + 1, col: off - ix.lines[i] + 1}
}

// add records the first place path is written; later mentions (a dotted key
// extending an implicit table) keep it.
func (ix *index) add(path string, key, val pos) {
	if _, ok := ix.spans[path]; !ok {
		ix.spans[path] = span{key: key, val: val}
	}
}

// header indexes a [table] or [[array.table]] header and returns the path
// of the table it opens.
func (ix *index) header(e *unstable.Node) string {
	var parts []*unstable.Node
	for it := e.Key(); it.Next(); {
		parts = append(parts, it.Node())
	}
	// The header starts at its first '[', before the key and any blanks.
	start := int(parts[0].Raw.Offset)
	for start > 0 && (ix.data[start-1] == ' ' || ix.data[start-1] == '\t') {
		start--
	}
	for start > 0 && ix.data[start-1] == '[' {
		start--
	}
	hdr := ix.offset(start)

	path := ""
	for i, k := range parts {
		path = join(path, string(k.Data))
		kp := ix.offset(int(k.Raw.Offset))
		if i < len(parts)-1 {
			// An intermediate array of tables means its last element.
			if n, ok := ix.arrays[path]; ok {
				path = elem(path, n-1)
			}
			ix.add(path, kp, kp)
			continue
		}
		if e.Kind == unstable.ArrayTable {
			n := ix.arrays[path]
			ix.arrays[path] = n + 1
			ix.add(path, kp, hdr)
			path = elem(path, n)
		}
		// TOML allows one explicit header per table: it wins over an
		// implicit mention by an earlier dotted header.
		ix.spans[path] = span{key: kp, val: hdr}
	}
	return path
}

// keyValue indexes "a.b = value" inside the table at path table and returns
// the offset just past the value.
func (ix *index) keyValue(table string, kv *unstable.Node) int {
	path := table
	var last *unstable.Node
	for it := kv.Key(); it.Next(); {
		if last != nil {
			kp := ix.offset(int(last.Raw.Offset))
			ix.add(path, kp, kp) // implicit table of a dotted key
		}
		last = it.Node()
		path = join(path, string(last.Data))
	}
	v := kv.Value()
	start := int(v.Raw.Offset)
	if v.Kind == unstable.Array {
		// Arrays carry no range: the value starts after "key =".
		start = int(last.Raw.Offset + last.Raw.Length)
		for start < len(ix.data) && strings.IndexByte(" \t=", ix.data[start]) >= 0 {
			start++
		}
	}
	ix.add(path, ix.offset(int(last.Raw.Offset)), ix.offset(start))
	return ix.value(path, v, start)
}

// value indexes the elements of an array or the keys of an inline table
// whose value v starts at byte offset start, and returns the offset just
// past v. go-toml gives arrays no range, so an element that is itself an
// array is found by walking the document from the end of the element before
// it: every other value knows where it starts, and an array ends at the
// first ']' after its last element.
func (ix *index) value(path string, v *unstable.Node, start int) int {
	switch v.Kind {
	case unstable.Array:
		off, i := start+1, 0 // just past '['
		for it := v.Children(); it.Next(); {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			cs := ix.skipFill(off)
			if c.Kind != unstable.Array {
				cs = int(c.Raw.Offset)
			}
			ep := elem(path, i)
			cp := ix.offset(cs)
			ix.add(ep, cp, cp)
			off = ix.value(ep, c, cs)
			i++
		}
		return ix.skipFill(off) + 1 // past ']'
	case unstable.InlineTable:
		off := start + 1 // just past '{'
		for it := v.Children(); it.Next(); {
			if c := it.Node(); c.Kind == unstable.KeyValue {
				off = ix.keyValue(path, c)
			}
		}
		return ix.skipFill(off) + 1 // past '}'
	}
	return int(v.Raw.Offset + v.Raw.Length)
}

// skipFill returns the offset of the first byte at or after off that is not
// a blank, a newline, a comment or a comma: what separates the values of an
// array or an inline table in a valid document.
func (ix *index) skipFill(off int) int {
	for off < len(ix.data) {
		switch ix.data[off] {
		case ' ', '\t', '\r', '\n', ',':
			off++
		case '#':
			for off < len(ix.data) && ix.data[off] != '\n' {
				off++
			}
		default:
			return off
		}
	}
	return off
}

// join appends key to path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// elem returns the path of element i of the array at path.
func elem(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// parent strips the last key or index from path; the parent of a top-level
// key is "". The result is always shorter than path.
func parent(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}
