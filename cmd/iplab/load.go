//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

type loadOptions struct {
	target
	rate     int64 // bytes per second; 0: as fast as the connection goes
	chunk    int
	timeout  time.Duration
	duration time.Duration
	sport    int
	seed     uint64
}

func loadCmd(args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs, "connect to")
	var o loadOptions
	fs.Int64Var(&o.rate, "rate", 0, "bytes per second to send (0: as fast as the connection goes)")
	fs.IntVar(&o.chunk, "chunk", 16<<10, "bytes per write")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "limit for the dial with its greeting, for any write or read to make progress, and for the final echo")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0: at SIGTERM or SIGINT)")
	fs.IntVar(&o.sport, "sport", 0, "bind to this source port (0: kernel's choice)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the byte stream")
	var err error
	if o.target, err = cf.parse(fs, args); err != nil {
		return err
	}
	switch {
	case o.rate < 0, o.chunk < 1, o.timeout <= 0, o.duration < 0:
		return errors.New("--rate >= 0, --chunk > 0, --timeout > 0 and --duration >= 0 please")
	case o.sport < 0 || o.sport > 65535:
		return fmt.Errorf("--sport %d: want 0..65535", o.sport)
	case cf.out != "text" && cf.out != "json":
		return fmt.Errorf("-o %q: want text or json", cf.out)
	}
	ctx, stop := runContext(o.duration)
	defer stop()
	ld := &load{o: o}
	r := ld.run(ctx, func(r *lab.LoadReport) error { return emit(cf.out, r, func() { printLoad(os.Stdout, r) }) })
	if err := emit(cf.out, r, func() { printLoad(os.Stdout, r) }); err != nil {
		return err
	}
	if r.Kind != "" {
		return errFailed
	}
	return nil
}

// load is one heavy connection: a writer sends a pseudo-random stream, a
// reader checks the echo against the same stream.
type load struct {
	o        loadOptions
	sent     atomic.Int64
	verified atomic.Int64
	// halfClosed is set by run just before it sends our FIN: only after
	// that is the server's FIN the end of an orderly run.
	halfClosed atomic.Bool

	mu     sync.Mutex
	report lab.LoadReport
}

// fail records the first failure.
func (l *load) fail(stage string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.report.Kind != "" {
		return
	}
	l.report.FailedAt, l.report.Stage, l.report.Kind, l.report.Error = time.Now(), stage, failKind(err), err.Error()
}

func (l *load) snapshot(phase string, since time.Time) *lab.LoadReport {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.report
	r.Phase, r.BytesSent, r.BytesVerified = phase, l.sent.Load(), l.verified.Load()
	if !since.IsZero() {
		r.DurationMS = float64(time.Since(since).Microseconds()) / 1000
	}
	return &r
}

// run connects, calls ready with the ready report, and streams until ctx
// ends or the connection fails; it returns the final report.
func (l *load) run(ctx context.Context, ready func(*lab.LoadReport) error) *lab.LoadReport {
	o := l.o
	l.report = lab.LoadReport{VIP: o.vip.String(), Port: o.port, RateLimit: o.rate, Started: time.Now()}
	dctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	c, err := dialVIP(dctx, o.vip, o.port, o.sport)
	if err != nil {
		l.fail("dial", err)
		_ = ready(l.snapshot(lab.PhaseReady, time.Time{}))
		return l.snapshot(lab.PhaseFinal, time.Time{})
	}
	defer c.Close()
	tc := c.(*net.TCPConn)
	l.report.SourcePort = c.LocalAddr().(*net.TCPAddr).Port
	c.SetReadDeadline(time.Now().Add(o.timeout))
	br := bufio.NewReader(c)
	name, err := readGreeting(br)
	if err != nil {
		l.fail("greeting", err)
		_ = ready(l.snapshot(lab.PhaseReady, time.Time{}))
		return l.snapshot(lab.PhaseFinal, time.Time{})
	}
	l.report.Server = name
	start := time.Now()
	if err := ready(l.snapshot(lab.PhaseReady, start)); err != nil {
		l.fail("report", err)
	}

	// The reader runs until the echo ends (the server's FIN after our
	// CloseWrite) or fails; the writer until ctx ends or it fails.
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		l.readEcho(c, br)
	}()
	l.write(ctx, c, readDone)
	l.halfClosed.Store(true)
	if err := tc.CloseWrite(); err != nil {
		l.fail("close", err)
	}
	<-readDone
	return l.snapshot(lab.PhaseFinal, start)
}

// write sends the stream in chunks, paced to o.rate, until ctx ends, the
// reader stops or a write fails.
func (l *load) write(ctx context.Context, c net.Conn, readDone <-chan struct{}) {
	o := l.o
	src := newStream(o.seed)
	buf := make([]byte, o.chunk)
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-readDone:
			return
		default:
		}
		if o.rate > 0 {
			// Sleep until the stream is due for this much.
			due := start.Add(time.Duration(float64(l.sent.Load()) / float64(o.rate) * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-readDone:
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
		src.Read(buf)
		c.SetWriteDeadline(time.Now().Add(o.timeout))
		n, err := c.Write(buf)
		l.sent.Add(int64(n))
		if err != nil {
			l.fail("write", err)
			return
		}
	}
}

// readEcho checks the echo against the stream until EOF (which is a
// failure unless every byte sent came back) or an error.
func (l *load) readEcho(c net.Conn, br *bufio.Reader) {
	want := newStream(l.o.seed)
	buf, exp := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		c.SetReadDeadline(time.Now().Add(l.o.timeout))
		n, err := br.Read(buf)
		if n > 0 {
			want.Read(exp[:n])
			if !bytes.Equal(buf[:n], exp[:n]) {
				l.fail("echo", errMismatch)
				return
			}
			l.verified.Add(int64(n))
		}
		if errors.Is(err, io.EOF) && l.halfClosed.Load() && l.verified.Load() == l.sent.Load() {
			return
		}
		if err != nil {
			l.fail("echo", err)
			return
		}
	}
}

// stream is the pseudo-random byte stream the writer sends and the reader
// expects.
type stream struct{ r *rand.ChaCha8 }

func newStream(seed uint64) *stream {
	return &stream{newChaCha(seed, 0, 0, 'l')}
}

func (s *stream) Read(b []byte) { _, _ = s.r.Read(b) }

func printLoad(w io.Writer, r *lab.LoadReport) {
	state := "ok"
	if r.Kind != "" {
		state = fmt.Sprintf("failed at %s: %s (%s: %s)", r.FailedAt.Format(time.TimeOnly+".000"), r.Kind, r.Stage, r.Error)
	}
	mbps := 0.0
	if r.DurationMS > 0 {
		mbps = float64(r.BytesVerified) * 8 / r.DurationMS / 1000
	}
	fmt.Fprintf(w, "load %s (%s) from port %d to %s: %d bytes sent, %d verified, %.0f ms, %.1f Mbit/s: %s\n",
		r.Phase, netip.AddrPortFrom(netip.MustParseAddr(r.VIP), uint16(r.Port)), r.SourcePort, orDash(r.Server),
		r.BytesSent, r.BytesVerified, r.DurationMS, mbps, state)
}
