package config

import (
	"strconv"
	"strings"
)

// Error is one problem in a configuration file.
type Error struct {
	File   string
	Line   int // 1-based; 0 when the problem has no position (Spec.Validate, unreadable file)
	Column int // 1-based byte offset in the line
	Msg    string
	Hint   string // how to fix it; may be empty
	// Warning marks a problem that does not make the configuration
	// invalid (Spec.Warnings).
	Warning bool
	Err     error // underlying error, if any (such as the one from reading the file)
}

// Error formats e as "file:line:column: msg (hint: hint)". The position is
// left out when Line is 0 and the hint when it is empty.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Column))
		b.WriteByte(':')
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	if e.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(e.Msg)
	if e.Hint != "" {
		b.WriteString(" (hint: ")
		b.WriteString(e.Hint)
		b.WriteByte(')')
	}
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in one configuration, sorted by position.
// Load, Parse and Spec.Validate return it (as a value) when the configuration
// is not valid; get it back with errors.As.
type Errors []*Error

// Error returns one line per problem.
func (l Errors) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, for errors.Is and errors.As.
func (l Errors) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}
