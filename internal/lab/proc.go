//go:build linux

package lab

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Proc is a long-running program in a lab namespace (a server, ipfront),
// reaped by its own goroutine so that nobody has to remember to Wait.
type Proc struct {
	Name string // for messages
	Cmd  *exec.Cmd

	done chan struct{} // closed when the program has exited and been reaped
	err  error         // Wait's result; read after done
}

// StartProc starts args in namespace ns with stdout and stderr going to out
// (nil: discarded). Close kills it if it still runs.
func (l *Lab) StartProc(ns, name string, out io.Writer, args ...string) (*Proc, error) {
	cmd := l.Command(ns, args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the program has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err returns how the program exited (nil for status 0); call it after
// Done is closed.
func (p *Proc) Err() error { return p.err }

// Stop sends SIGTERM and waits up to grace for the program to exit, then
// kills it. It returns nil only if the program exited with status 0 on its
// own or after the SIGTERM.
func (p *Proc) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return p.exitErr()
	default:
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return p.exitErr()
	case <-t.C:
		_ = p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s: still running %v after SIGTERM, killed", p.Name, grace)
	}
}

func (p *Proc) exitErr() error {
	if p.err != nil {
		return fmt.Errorf("%s: %w", p.Name, p.err)
	}
	return nil
}

// StartServers runs "iplab serve" (iplab is the binary's path) on every
// server with the given TCP and UDP port specs, and returns once each has
// greeted a connection from the client to its own address on its first TCP
// port (iplab serve binds every port before serving any, so then all are
// ready). out gives each server's output writer (nil: discarded).
func (l *Lab) StartServers(ctx context.Context, iplab, tcp, udp string, out func(role string) io.Writer) ([]*Proc, error) {
	firstPort, _, _ := strings.Cut(strings.Split(tcp, ",")[0], "-")
	var port uint16
	if _, err := fmt.Sscan(firstPort, &port); err != nil || port == 0 {
		return nil, fmt.Errorf("servers need a TCP port to be probed on, have %q", tcp)
	}
	var procs []*Proc
	for _, s := range l.servers {
		var w io.Writer
		if out != nil {
			w = out(s.Role)
		}
		p, err := l.StartProc(s.NS, s.Role, w, iplab, "serve", "--name", s.Role, "--tcp", tcp, "--udp", udp)
		if err != nil {
			stopAll(procs)
			return nil, err
		}
		procs = append(procs, p)
	}
	for i, s := range l.servers {
		if err := WaitGreeting(ctx, l.client.NS, netip.AddrPortFrom(s.IPv4, port), s.Role, procs[i].Done()); err != nil {
			stopAll(procs)
			return nil, fmt.Errorf("server %s: %w", s.Role, err)
		}
	}
	return procs, nil
}

func stopAll(procs []*Proc) {
	for _, p := range procs {
		_ = p.Stop(time.Second)
	}
}

// errExited is returned by the Wait functions when the program they wait
// for exits first.
var errExited = errors.New("exited before it was ready")

// WaitGreeting connects from namespace ns to addr until the iplab server
// there greets with name, ctx ends or exited (may be nil) is closed.
func WaitGreeting(ctx context.Context, ns string, addr netip.AddrPort, name string, exited <-chan struct{}) error {
	want := Greeting + name + "\n"
	return poll(ctx, exited, func() error {
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		c, err := DialContext(dctx, ns, "tcp", addr.String())
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return fmt.Errorf("read greeting: %w", err)
		}
		if line != want {
			return fmt.Errorf("greeting %q, want %q", line, want)
		}
		return nil
	})
}

// WaitReady polls url (ipfront's /v1/status) from namespace ns until it
// answers 200 with {"ready": true}, ctx ends or exited (may be nil) is
// closed.
func WaitReady(ctx context.Context, ns, url string, exited <-chan struct{}) error {
	client := HTTPClient(ns, time.Second)
	return poll(ctx, exited, func() error {
		body, code, err := get(ctx, client, url)
		if err != nil {
			return err
		}
		var st struct {
			Ready *bool `json:"ready"`
		}
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("status %d, body not JSON: %w", code, err)
		}
		if code != http.StatusOK || st.Ready == nil || !*st.Ready {
			return fmt.Errorf("status %d: %s", code, bytes.TrimSpace(body))
		}
		return nil
	})
}

// GetJSON fetches url from namespace ns and returns the body, which must be
// a JSON value served with status 200.
func GetJSON(ctx context.Context, ns, url string) ([]byte, error) {
	body, code, err := get(ctx, HTTPClient(ns, 5*time.Second), url)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return body, fmt.Errorf("GET %s: status %d: %s", url, code, bytes.TrimSpace(body))
	}
	if !json.Valid(body) {
		return body, fmt.Errorf("GET %s: body is not JSON", url)
	}
	return body, nil
}

func get(ctx context.Context, c *http.Client, url string) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return body, resp.StatusCode, err
}

// poll calls try until it succeeds, backing off from 5 ms to 100 ms; it
// returns try's last error when ctx ends, or errExited when exited closes.
func poll(ctx context.Context, exited <-chan struct{}, try func() error) error {
	delay := 5 * time.Millisecond
	for {
		err := try()
		if err == nil {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), err)
		case <-exited:
			t.Stop()
			return errExited
		case <-t.C:
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// PrefixWriter writes each line written to it to w with prefix in front,
// whole lines at a time, so the output of several programs can share w.
// Writers sharing w must share mu.
type PrefixWriter struct {
	W      io.Writer
	Prefix string
	Mu     *sync.Mutex

	buf []byte
}

// Write implements io.Writer.
func (p *PrefixWriter) Write(b []byte) (int, error) {
	p.Mu.Lock()
	defer p.Mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		if _, err := fmt.Fprintf(p.W, "%s%s\n", p.Prefix, p.buf[:i]); err != nil {
			return 0, err
		}
		p.buf = p.buf[i+1:]
	}
	return len(b), nil
}
