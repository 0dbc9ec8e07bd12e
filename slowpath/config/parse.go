package config

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// Load reads and parses the configuration file at path. Any problem,
// including an unreadable file, is returned as Errors.
func Load(path string) (*Spec, error) {
	return load(path, nil)
}

// LoadOn is Load followed by the checks of the Spec against the machine h
// describes (host.go): ipfront check and ipfront run use it, so that a file
// the data plane cannot start with on this machine is refused, with
// positions, before anything is mapped or attached.
func LoadOn(path string, h Host) (*Spec, error) {
	return load(path, &h)
}

func load(path string, h *Host) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
			msg = "cannot read config: " + pe.Err.Error()
		}
		return nil, Errors{{File: path, Msg: msg, Err: err}}
	}
	return parse(path, data, h)
}

// Parse parses a configuration document; name is the file name used in
// error messages and Spec.Path. It returns a valid Spec with defaults
// applied, or Errors listing every problem found, each with its position.
// A TOML syntax error is reported alone: the rest of the document cannot be
// read reliably after it.
func Parse(name string, data []byte) (*Spec, error) {
	return parse(name, data, nil)
}

// parse is Parse, with the checks against the machine h when h is set;
// those run only on a valid Spec.
func parse(name string, data []byte, h *Host) (*Spec, error) {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return nil, Errors{syntaxError(name, err)}
	}
	idx, err := buildIndex(data)
	if err != nil {
		// go-toml accepted the document, so its own parser should too.
		return nil, Errors{indexError(name, data, err)}
	}
	r := newReporter(name, idx)
	s := decodeSpec(r, doc)
	s.Path = name
	s.validate(r)
	if h != nil && len(r.errs) == 0 {
		s.checkHost(r, *h)
	}
	s.Warnings = r.warnings()
	if err := r.result(); err != nil {
		return nil, err
	}
	return s, nil
}

// syntaxError converts an error from go-toml's decoder.
func syntaxError(name string, err error) *Error {
	e := &Error{File: name, Msg: err.Error(), Err: err}
	if de := (*toml.DecodeError)(nil); errors.As(err, &de) {
		e.Line, e.Column = de.Position()
		e.Msg = "invalid TOML: " + strings.TrimPrefix(de.Error(), "toml: ")
		if strings.Contains(e.Msg, "already defined") || strings.Contains(e.Msg, "already exists") {
			e.Hint = "each key and table may be defined once; merge or remove the duplicate"
		}
	}
	return e
}

// indexError converts an error from go-toml's unstable parser.
func indexError(name string, data []byte, err error) *Error {
	e := &Error{File: name, Msg: "invalid TOML: " + err.Error(), Err: err}
	if pe := (*unstable.ParserError)(nil); errors.As(err, &pe) {
		off := cap(data) - cap(pe.Highlight)
		if off >= 0 && off <= len(data) {
			p := (&index{lines: lineStarts(data)}).offset(off)
			e.Line, e.Column = p.line, p.col
		}
	}
	return e
}
