package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Mutation is one entry of the list: a change to one line of one file and
// the tests that should notice it.
type Mutation struct {
	ID   string
	File string // relative to the repository root, slash-separated
	// Find is text that must occur exactly once in the file, on one line;
	// Re is the alternative, a regexp that must match exactly one line
	// (once). Exactly one of them is set.
	Find    string
	Re      *regexp.Regexp
	Replace string     // what the matched text becomes; $1 etc. expand with Re
	Tests   [][]string // go test arguments, run in order until one fails
	Why     string     // what the mutation simulates, for the report
	ListPos int        // line of the entry's first key in the list file

	hasReplace bool // the entry has a replace key (its value may be empty)
}

// Errors of locating a mutation's original text.
var (
	// ErrStale is returned when the original text is no longer in the
	// file: the code changed and the list entry must be refreshed.
	ErrStale = errors.New("original text not found (stale list entry)")
	// ErrAmbiguous is returned when the original text matches more than
	// once: the entry must quote more of its line.
	ErrAmbiguous = errors.New("original text matches more than once")
)

// ParseList reads a mutation list. Entries are blocks of "key: value"
// lines separated by blank lines; '#' starts a comment line. Keys: id,
// file, find or re, replace, test (one or more), why. A value is the rest
// of the line after "key: ", taken verbatim (no quoting), so a Go line can
// be pasted as it is; "replace:" with nothing after it replaces with
// nothing.
func ParseList(r io.Reader) ([]Mutation, error) {
	var (
		out  []Mutation
		cur  *Mutation
		errs []error
		seen = map[string]int{}
		n    int
	)
	finish := func() {
		if cur == nil {
			return
		}
		if err := cur.validate(); err != nil {
			errs = append(errs, fmt.Errorf("list line %d: %w", cur.ListPos, err))
		} else if prev, dup := seen[cur.ID]; dup {
			errs = append(errs, fmt.Errorf("list line %d: id %q already used at line %d", cur.ListPos, cur.ID, prev))
		} else {
			seen[cur.ID] = cur.ListPos
			out = append(out, *cur)
		}
		cur = nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case strings.TrimSpace(line) == "":
			finish()
			continue
		case strings.HasPrefix(strings.TrimSpace(line), "#"):
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok || strings.ContainsAny(key, " \t") {
			errs = append(errs, fmt.Errorf("list line %d: %q: want \"key: value\"", n, line))
			continue
		}
		// One blank after the colon separates key and value; the value
		// keeps any further blanks (indentation in a Go line).
		val = strings.TrimPrefix(val, " ")
		if cur == nil {
			cur = &Mutation{ListPos: n}
		}
		var err error
		switch key {
		case "id":
			cur.ID = strings.TrimSpace(val)
		case "file":
			cur.File = strings.TrimSpace(val)
		case "find":
			cur.Find = val
		case "re":
			cur.Re, err = regexp.Compile(val)
		case "replace":
			cur.Replace, cur.hasReplace = val, true
		case "test":
			var args []string
			if args, err = splitArgs(val); err == nil {
				cur.Tests = append(cur.Tests, args)
			}
		case "why":
			cur.Why = strings.TrimSpace(val)
		default:
			err = fmt.Errorf("unknown key %q", key)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("list line %d: %w", n, err))
		}
	}
	finish()
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)

func (m *Mutation) validate() error {
	switch {
	case !idRE.MatchString(m.ID):
		return fmt.Errorf("id %q: want lower-case letters, digits and '-'", m.ID)
	case m.File == "" || strings.HasPrefix(m.File, "/") || strings.Contains(m.File, ".."):
		return fmt.Errorf("%s: file %q: want a path inside the repository", m.ID, m.File)
	case (m.Find == "") == (m.Re == nil):
		return fmt.Errorf("%s: want exactly one of find and re", m.ID)
	case !m.hasReplace:
		return fmt.Errorf("%s: no replace (write \"replace:\" alone to delete the text)", m.ID)
	case m.Re == nil && m.Find == m.Replace:
		return fmt.Errorf("%s: replace equals find: not a mutation", m.ID)
	case len(m.Tests) == 0:
		return fmt.Errorf("%s: no test", m.ID)
	}
	return nil
}

// Apply returns src with m applied and the 1-based line it changed. It
// fails with ErrStale when the original is not found and ErrAmbiguous when
// it is found more than once.
func (m *Mutation) Apply(src []byte) ([]byte, int, error) {
	lines := bytes.SplitAfter(src, []byte("\n"))
	hit := -1
	for i, l := range lines {
		var k int
		if m.Re != nil {
			k = len(m.Re.FindAllIndex(l, 2))
		} else {
			k = bytes.Count(l, []byte(m.Find))
		}
		if k == 0 {
			continue
		}
		if k > 1 || hit >= 0 {
			return nil, 0, fmt.Errorf("%s: %s: %w", m.ID, m.File, ErrAmbiguous)
		}
		hit = i
	}
	if hit < 0 {
		return nil, 0, fmt.Errorf("%s: %s: %w: %s", m.ID, m.File, ErrStale, m.original())
	}
	l := lines[hit]
	var mutated []byte
	if m.Re != nil {
		loc := m.Re.FindSubmatchIndex(l)
		mutated = append(mutated, l[:loc[0]]...)
		mutated = m.Re.Expand(mutated, []byte(m.Replace), l, loc)
		mutated = append(mutated, l[loc[1]:]...)
	} else {
		mutated = bytes.Replace(l, []byte(m.Find), []byte(m.Replace), 1)
	}
	if bytes.Equal(mutated, l) {
		return nil, 0, fmt.Errorf("%s: %s:%d: the replacement changes nothing", m.ID, m.File, hit+1)
	}
	var out []byte
	for i, x := range lines {
		if i == hit {
			x = mutated
		}
		out = append(out, x...)
	}
	return out, hit + 1, nil
}

// original describes what m looks for.
func (m *Mutation) original() string {
	if m.Re != nil {
		return "re " + m.Re.String()
	}
	return fmt.Sprintf("find %q", m.Find)
}

// splitArgs splits a test line into arguments at blanks; single or double
// quotes group (without escapes), as a shell would for these simple cases.
func splitArgs(s string) ([]string, error) {
	var (
		args  []string
		cur   strings.Builder
		quote rune
		have  bool
	)
	for _, c := range s {
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(c)
		case c == '\'' || c == '"':
			quote, have = c, true
		case c == ' ' || c == '\t':
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(c)
			have = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("test %q: unterminated quote", s)
	}
	if have {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, errors.New("empty test")
	}
	return args, nil
}
