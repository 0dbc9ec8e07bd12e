//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a program the harness runs in a namespace: its output goes to a
// log file under the output directory (and is kept in memory, so the
// harness can wait for a line), it is killed if the harness dies
// (Pdeathsig), and topo.close kills it if it still runs.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string

	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

// start runs args in namespace ns.
func (t *topo) start(ns, name, logDir string, args ...string) (*proc, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	p := &proc{name: name, log: filepath.Join(logDir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	w := &teeWriter{p: p, f: f}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	t.mu.Lock()
	t.procs = append(t.procs, p)
	t.mu.Unlock()
	go func() {
		err := p.cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

type teeWriter struct {
	p *proc
	f *os.File
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	if w.p.out.Len() < 1<<20 {
		w.p.out.Write(b)
	}
	w.p.mu.Unlock()
	return w.f.Write(b)
}

// pid is the program's process id (ip netns exec execs it).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// output returns what the program printed so far.
func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitOutput waits until the program has printed s, exited, or timeout.
func (p *proc) waitOutput(ctx context.Context, s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(p.output(), s) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before printing %q: %v; log %s:\n%s", p.name, s, p.err, p.log, tail(p.output(), 2000))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not print %q within %v; log %s", p.name, s, timeout, p.log)
		}
	}
}

// stop sends SIGTERM, waits up to grace, then kills. It returns the
// program's exit error (nil for status 0 after the SIGTERM).
func (p *proc) stop(grace time.Duration) error {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
			p.kill()
			return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", p.name, grace)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return fmt.Errorf("%s: %w; log %s", p.name, p.err, p.log)
	}
	return nil
}

func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	_ = p.cmd.Process.Kill()
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
