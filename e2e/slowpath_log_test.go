//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
)

// ---------------------------------------------------------------------------
// ipfront's log

// procLog collects a program's output lines (ipfront's JSON log), copies
// them to the test log and lets a test wait for a line.
type procLog struct {
	t      *testing.T
	prefix string
	mu     *sync.Mutex // shared with the other programs' writers

	lmu    sync.Mutex
	buf    []byte
	lines  []logLine
	notify chan struct{} // closed and replaced at every new line
}

// logLine is one line of ipfront's JSON log, decoded; Fields is nil for a
// line that is not a JSON object.
type logLine struct {
	Text   string
	Fields map[string]any
}

// Str returns a field's value as text ("" if absent).
func (l logLine) Str(key string) string {
	switch v := l.Fields[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// Msg and Level are the message and level fields.
func (l logLine) Msg() string   { return l.Str("message") }
func (l logLine) Level() string { return l.Str("level") }

func (p *procLog) Write(b []byte) (int, error) {
	p.lmu.Lock()
	p.buf = append(p.buf, b...)
	var added []string
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		text := string(p.buf[:i])
		p.buf = p.buf[i+1:]
		ll := logLine{Text: text}
		_ = json.Unmarshal([]byte(text), &ll.Fields)
		p.lines = append(p.lines, ll)
		added = append(added, text)
	}
	if len(added) > 0 {
		close(p.notify)
		p.notify = make(chan struct{})
	}
	p.lmu.Unlock()
	p.mu.Lock()
	for _, text := range added {
		p.t.Log(p.prefix + text)
	}
	p.mu.Unlock()
	return len(b), nil
}

// mark returns the number of lines so far: waits from a mark see only the
// lines logged after it.
func (p *procLog) mark() int {
	p.lmu.Lock()
	defer p.lmu.Unlock()
	return len(p.lines)
}

// since returns the lines logged after mark that satisfy match.
func (p *procLog) since(mark int, match func(logLine) bool) []logLine {
	p.lmu.Lock()
	defer p.lmu.Unlock()
	var out []logLine
	for _, l := range p.lines[mark:] {
		if match(l) {
			out = append(out, l)
		}
	}
	return out
}

// waitLine waits for a line after mark that satisfies match and returns it
// with the mark after it. It fails the test when ctx ends or ipfront exits
// first.
func (e *spEnv) waitLine(ctx context.Context, mark int, what string, match func(logLine) bool) (logLine, int) {
	e.t.Helper()
	p := e.log
	for {
		p.lmu.Lock()
		for i := mark; i < len(p.lines); i++ {
			if match(p.lines[i]) {
				l := p.lines[i]
				p.lmu.Unlock()
				return l, i + 1
			}
		}
		mark = len(p.lines)
		notify := p.notify
		p.lmu.Unlock()
		select {
		case <-notify:
		case <-ctx.Done():
			e.t.Fatalf("no ipfront log line %s: %v", what, ctx.Err())
		case <-e.ipf.Done():
			e.t.Fatalf("ipfront exited (%v) while waiting for log line %s", e.ipf.Err(), what)
		}
	}
}

// msgIs matches log lines with this message.
func msgIs(msg string) func(logLine) bool {
	return func(l logLine) bool { return l.Msg() == msg }
}
