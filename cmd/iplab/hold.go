//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

type holdOptions struct {
	target
	conns    int
	interval time.Duration
	bytes    int
	timeout  time.Duration
	duration time.Duration // 0: until SIGTERM or SIGINT
	sport    int
	seed     uint64
}

func holdCmd(args []string) error {
	fs := flag.NewFlagSet("hold", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs, "connect to")
	var o holdOptions
	fs.IntVar(&o.conns, "conns", 20, "long-lived connections to open")
	fs.DurationVar(&o.interval, "interval", 50*time.Millisecond, "time between one connection's messages")
	fs.IntVar(&o.bytes, "bytes", 64, "bytes per message")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Second, "limit for a dial with its greeting, and for each echo")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0: at SIGTERM or SIGINT)")
	fs.IntVar(&o.sport, "sport", 0, "bind connection i to source port sport+i (0: kernel's choice)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the messages")
	var err error
	if o.target, err = cf.parse(fs, args); err != nil {
		return err
	}
	switch {
	case o.conns < 1, o.bytes < 1, o.interval <= 0, o.timeout <= 0, o.duration < 0:
		return errors.New("--conns and --bytes must be positive, --interval and --timeout > 0, --duration >= 0")
	case o.sport < 0 || o.sport > 0 && o.sport+o.conns-1 > 65535:
		return fmt.Errorf("--sport %d: ports sport..sport+conns-1 must fit in 1..65535", o.sport)
	case cf.out != "text" && cf.out != "json":
		return fmt.Errorf("-o %q: want text or json", cf.out)
	}
	ctx, stop := runContext(o.duration)
	defer stop()
	h := newHold(o)
	h.connect()
	// SIGUSR1 asks for a snapshot report while the connections run.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	var outMu sync.Mutex
	report := func(phase string) error {
		outMu.Lock()
		defer outMu.Unlock()
		r := h.report(phase)
		return emit(cf.out, r, func() { printHold(os.Stdout, r) })
	}
	if err := report(lab.PhaseReady); err != nil {
		return err
	}
	snapDone := make(chan struct{})
	go func() {
		defer close(snapDone)
		for {
			select {
			case <-ctx.Done():
				return
			case <-usr1:
				_ = report(lab.PhaseSnapshot)
			}
		}
	}()
	h.run(ctx)
	<-snapDone
	signal.Stop(usr1)
	if err := report(lab.PhaseFinal); err != nil {
		return err
	}
	r := h.report(lab.PhaseFinal)
	if r.Failed > 0 {
		return errFailed
	}
	return nil
}

// emit prints one report: as one line of JSON, so that a reader sees it
// while the program goes on, or as text.
func emit(format string, r any, text func()) error {
	if format == "json" {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	text()
	return nil
}

// hold runs the connections of "iplab hold". Each connection's state is
// written by its own goroutine and read by report under mu.
type hold struct {
	o       holdOptions
	started time.Time

	mu      sync.Mutex
	conns   []holdConn
	stopped time.Time
}

type holdConn struct {
	c  net.Conn
	br *bufio.Reader
	lab.HoldConn
}

func newHold(o holdOptions) *hold {
	h := &hold{o: o, started: time.Now(), conns: make([]holdConn, o.conns)}
	for i := range h.conns {
		h.conns[i].Conn = i
	}
	return h
}

// connect dials every connection at once and reads the greetings.
func (h *hold) connect() {
	var wg sync.WaitGroup
	for i := range h.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.dial(i)
		}()
	}
	wg.Wait()
}

func (h *hold) dial(i int) {
	ctx, cancel := context.WithTimeout(context.Background(), h.o.timeout)
	defer cancel()
	c, err := dialVIP(ctx, h.o.vip, h.o.port, sourcePort(h.o.sport, i))
	if err != nil {
		h.fail(i, "dial", err)
		return
	}
	port := c.LocalAddr().(*net.TCPAddr).Port
	c.SetDeadline(time.Now().Add(h.o.timeout))
	br := bufio.NewReader(c)
	name, err := readGreeting(br)
	h.mu.Lock()
	hc := &h.conns[i]
	hc.SourcePort = port
	if err == nil {
		hc.c, hc.br, hc.Server, hc.Connected = c, br, name, time.Now()
	}
	h.mu.Unlock()
	if err != nil {
		c.Close()
		h.fail(i, "greeting", err)
	}
}

// fail records connection i's failure (only the first).
func (h *hold) fail(i int, stage string, err error) {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	hc := &h.conns[i]
	if !hc.FailedAt.IsZero() {
		return
	}
	hc.FailedAt, hc.Stage, hc.Kind, hc.Error = now, stage, failKind(err), err.Error()
}

// run echoes on every greeted connection until ctx ends, then closes them.
func (h *hold) run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range h.conns {
		h.mu.Lock()
		c := h.conns[i].c
		h.mu.Unlock()
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.echoLoop(ctx, i)
		}()
	}
	<-ctx.Done()
	h.mu.Lock()
	h.stopped = time.Now()
	h.mu.Unlock()
	wg.Wait()
}

// echoLoop sends connection i's messages, one per interval, each waiting
// for its whole echo; it stops at the first failure or when ctx ends (an
// exchange under way completes first), then closes the connection.
func (h *hold) echoLoop(ctx context.Context, i int) {
	h.mu.Lock()
	c, br := h.conns[i].c, h.conns[i].br
	h.mu.Unlock()
	defer c.Close()
	// Spread the connections' messages over the interval.
	first := time.Duration(i) * h.o.interval / time.Duration(h.o.conns)
	t := time.NewTimer(first)
	defer t.Stop()
	msg, echo := make([]byte, h.o.bytes), make([]byte, h.o.bytes)
	for seq := uint64(0); ; seq++ {
		select {
		case <-ctx.Done():
			h.closeConn(i, c)
			return
		case <-t.C:
		}
		fillMessage(msg, h.o.seed, i, seq)
		c.SetDeadline(time.Now().Add(h.o.timeout))
		if _, err := c.Write(msg); err != nil {
			h.fail(i, "write", err)
			return
		}
		if _, err := io.ReadFull(br, echo); err != nil {
			h.fail(i, "echo", err)
			return
		}
		if string(echo) != string(msg) {
			h.fail(i, "echo", errMismatch)
			return
		}
		now := time.Now()
		h.mu.Lock()
		hc := &h.conns[i]
		hc.Messages++
		hc.BytesVerified += int64(len(msg))
		hc.LastEcho = now
		h.mu.Unlock()
		t.Reset(h.o.interval)
	}
}

// closeConn closes c the orderly way: FIN, then wait (bounded) for the
// server's FIN, so a reset at this point counts as a failure.
func (h *hold) closeConn(i int, c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	if err := tc.CloseWrite(); err != nil {
		h.fail(i, "close", err)
		return
	}
	c.SetDeadline(time.Now().Add(h.o.timeout))
	if _, err := io.Copy(io.Discard, c); err != nil {
		h.fail(i, "close", err)
	}
}

var errMismatch = errors.New("mismatch: echo differs from the message")

// fillMessage fills b with connection conn's message number seq.
func fillMessage(b []byte, seed uint64, conn int, seq uint64) {
	_, _ = newChaCha(seed, uint64(conn), seq, 'h').Read(b)
}

// failKind sorts a connection's error into the lab.Fail* kinds.
func failKind(err error) string {
	var errno syscall.Errno
	switch {
	case errors.Is(err, errMismatch):
		return lab.FailMismatch
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return lab.FailTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return lab.FailEOF
	case errors.As(err, &errno):
		switch errno {
		case syscall.ECONNRESET, syscall.EPIPE:
			return lab.FailReset
		case syscall.ECONNREFUSED:
			return lab.FailRefused
		case syscall.ETIMEDOUT:
			return lab.FailTimeout
		}
	}
	return lab.FailOther
}

func (h *hold) report(phase string) *lab.HoldReport {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := &lab.HoldReport{
		Phase: phase, VIP: h.o.vip.String(), Port: h.o.port, Conns: h.o.conns,
		IntervalMS: float64(h.o.interval.Microseconds()) / 1000, Bytes: h.o.bytes,
		Servers: map[string]int{}, Started: h.started, Stopped: h.stopped,
		Connections: make([]lab.HoldConn, len(h.conns)),
	}
	for i := range h.conns {
		hc := h.conns[i].HoldConn
		r.Connections[i] = hc
		if hc.Server != "" {
			r.Connected++
			r.Servers[hc.Server]++
		}
		if !hc.FailedAt.IsZero() {
			r.Failed++
		}
	}
	return r
}

func printHold(w io.Writer, r *lab.HoldReport) {
	fmt.Fprintf(w, "hold %s (%s): %d connections, %d greeted, %d failed\n", r.Phase,
		netip.AddrPortFrom(netip.MustParseAddr(r.VIP), uint16(r.Port)), r.Conns, r.Connected, r.Failed)
	for _, name := range sortedKeys(r.Servers) {
		fmt.Fprintf(w, "  %-8s %4d connections\n", name, r.Servers[name])
	}
	for _, c := range r.Connections {
		state := "ok"
		if !c.FailedAt.IsZero() {
			state = fmt.Sprintf("failed at %s: %s (%s: %s)", c.FailedAt.Format(time.TimeOnly+".000"), c.Kind, c.Stage, c.Error)
		}
		fmt.Fprintf(w, "  conn %3d  port %5d  %-8s %6d messages  %s\n", c.Conn, c.SourcePort, orDash(c.Server), c.Messages, state)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
