package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// reporter collects Errors, placing each at the key path it is about.
//
// A value gets at most one error: once a path has one, later checks of the
// same path stay quiet, and a value of the wrong type silences every check
// below it. This keeps a bad value from cascading into follow-on errors.
type reporter struct {
	file   string
	idx    *index // nil: errors carry no position (Spec.Validate)
	errs   Errors
	warns  Errors          // Warning set: reported, but the configuration stands
	done   map[string]bool // paths that have an error or must not get one
	broken map[string]bool // paths whose value had the wrong type
}

func newReporter(file string, idx *index) *reporter {
	return &reporter{
		file:   file,
		idx:    idx,
		done:   make(map[string]bool),
		broken: make(map[string]bool),
	}
}

// errorf reports a problem with the value at path (or, if path is not in
// the file, at its table).
func (r *reporter) errorf(path, hint, format string, args ...any) {
	r.report(path, false, hint, fmt.Sprintf(format, args...))
}

// keyErrorf reports a problem with the key at path.
func (r *reporter) keyErrorf(path, hint, format string, args ...any) {
	r.report(path, true, hint, fmt.Sprintf(format, args...))
}

func (r *reporter) report(path string, atKey bool, hint, msg string) {
	if r.muted(path) {
		return
	}
	r.done[path] = true
	r.errs = append(r.errs, r.place(path, atKey, hint, msg))
}

// place makes the Error msg about path, with its position when known.
func (r *reporter) place(path string, atKey bool, hint, msg string) *Error {
	e := &Error{File: r.file, Msg: msg, Hint: hint}
	if path != "" {
		e.Msg = path + ": " + msg
	}
	if r.idx != nil {
		p := r.idx.find(path, atKey)
		e.Line, e.Column = p.line, p.col
	}
	return e
}

// warnf records a warning about the value at path: something that works as
// written but probably not as meant. Warnings never make a configuration
// invalid, and a path with an error gets none.
func (r *reporter) warnf(path, hint, format string, args ...any) {
	if r.muted(path) {
		return
	}
	e := r.place(path, false, hint, fmt.Sprintf(format, args...))
	e.Warning = true
	r.warns = append(r.warns, e)
}

// wrongType reports that the value at path is not of the wanted kind and
// silences every check of that value and below it.
func (r *reporter) wrongType(path, want string, got any, hint string) {
	r.errorf(path, hint, "expected %s, got %s", want, describe(got))
	r.broken[path] = true
}

// mute keeps later errors about path from being reported, for values that
// are wrong only because of an error already reported elsewhere.
func (r *reporter) mute(path string) { r.done[path] = true }

// muted reports whether errors about path are silenced.
func (r *reporter) muted(path string) bool {
	if r.done[path] {
		return true
	}
	for p := path; p != ""; {
		p = parent(p)
		if r.broken[p] {
			return true
		}
	}
	return false
}

// line returns " (line N)" for where path is written, or "" without
// positions; it lets a message point at a second place in the file.
func (r *reporter) line(path string) string {
	if r.idx == nil {
		return ""
	}
	return " (line " + strconv.Itoa(r.idx.find(path, false).line) + ")"
}

// result returns the errors sorted by position, or nil.
func (r *reporter) result() error {
	if len(r.errs) == 0 {
		return nil
	}
	sortByPosition(r.errs)
	return r.errs
}

// warnings returns the warnings sorted by position, or nil.
func (r *reporter) warnings() Errors {
	sortByPosition(r.warns)
	return r.warns
}

func sortByPosition(errs Errors) {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i], errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// describe names a decoded TOML value for a type error.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return "string " + quote(v)
	case int64:
		return "integer " + strconv.FormatInt(v, 10)
	case float64:
		return "float " + strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return "boolean " + strconv.FormatBool(v)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return "a date or time"
}

// quote quotes a user-supplied string for a message, shortening long ones.
func quote(s string) string {
	if c := clip(s); len(c) < len(s) {
		return strconv.Quote(c) + "..."
	}
	return strconv.Quote(s)
}

// clip shortens a user-supplied string to at most 64 bytes.
func clip(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		return s[:maxLen]
	}
	return s
}

// quoteList formats values as `"a", "b" or "c"`.
func quoteList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = strconv.Quote(v)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}
