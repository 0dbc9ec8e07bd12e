//go:build linux

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// ---------------------------------------------------------------------------
// Long-running clients

// streamClient is a running "iplab hold" or "iplab load" with -o json: it
// reports once ready and once stopped (see lab.HoldReport).
type streamClient[R any] struct {
	name    string
	cmd     *stdCmd
	reports chan R
	ready   R
}

// stdCmd is a started program with its exit.
type stdCmd struct {
	pid  int
	done chan struct{}
	err  error
	sig  func(os.Signal) error
}

// startStream starts "iplab <sub> --vip VIP -o json args..." in the
// client's namespace and returns once its ready report arrived.
func startStream[R any](e *spEnv, sub string, args ...string) *streamClient[R] {
	e.t.Helper()
	full := append([]string{iplabBin, sub, "--vip", e.vip.String(), "--port", port, "-o", "json"}, args...)
	cmd := e.lab.CommandContext(e.ctx, e.lab.Client().NS, full...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = &lab.PrefixWriter{W: testLog{e.t}, Prefix: "iplab " + sub + " | ", Mu: &e.outMu}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	c := &streamClient[R]{name: "iplab " + sub, reports: make(chan R, 2),
		cmd: &stdCmd{pid: cmd.Process.Pid, done: make(chan struct{}), sig: cmd.Process.Signal}}
	go func() {
		defer close(c.reports)
		dec := json.NewDecoder(bufio.NewReader(stdout))
		for {
			var r R
			if err := dec.Decode(&r); err != nil {
				if !errors.Is(err, io.EOF) {
					e.t.Logf("%s: report unreadable: %v", c.name, err)
				}
				break
			}
			c.reports <- r
		}
		c.cmd.err = cmd.Wait()
		close(c.cmd.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-c.cmd.done:
		default:
			_ = cmd.Process.Kill()
			<-c.cmd.done
		}
	})
	select {
	case r, ok := <-c.reports:
		if !ok {
			<-c.cmd.done
			e.t.Fatalf("%s exited (%v) without a ready report", c.name, c.cmd.err)
		}
		c.ready = r
	case <-e.ctx.Done():
		e.t.Fatalf("%s: no ready report: %v", c.name, e.ctx.Err())
	}
	return c
}

// stop sends SIGTERM and returns the final report.
func (c *streamClient[R]) stop(e *spEnv) R {
	e.t.Helper()
	if err := c.cmd.sig(syscall.SIGTERM); err != nil {
		e.t.Fatalf("%s: %v", c.name, err)
	}
	var final R
	select {
	case r, ok := <-c.reports:
		if !ok {
			e.t.Fatalf("%s exited (%v) without a final report", c.name, c.cmd.err)
		}
		final = r
	case <-e.ctx.Done():
		e.t.Fatalf("%s: no final report: %v", c.name, e.ctx.Err())
	}
	<-c.cmd.done
	b, _ := json.Marshal(final)
	e.t.Logf("%s final report (exit %v): %s", c.name, c.cmd.err, b)
	return final
}

// startHold starts "iplab hold" with n connections from fixed source ports
// echoing bytes every interval, and returns once every connection has
// echoed.
func (e *spEnv) startHold(n int, interval time.Duration, bytes int) *streamClient[lab.HoldReport] {
	e.t.Helper()
	return e.startHoldFrom(e.sports(n), n, interval, bytes)
}

// startHoldFrom is startHold from source ports sport..sport+n-1, which the
// caller chose outside those sports hands out (20000 up).
func (e *spEnv) startHoldFrom(sport, n int, interval time.Duration, bytes int) *streamClient[lab.HoldReport] {
	e.t.Helper()
	h := startStream[lab.HoldReport](e, "hold", "--conns", strconv.Itoa(n), "--interval", interval.String(),
		"--bytes", strconv.Itoa(bytes), "--timeout", "3s", "--sport", strconv.Itoa(sport))
	if h.ready.Connected != n || h.ready.Failed != 0 {
		e.t.Fatalf("iplab hold: %d of %d connections greeted, %d failed: %+v", h.ready.Connected, n, h.ready.Failed, h.ready.Connections)
	}
	e.t.Logf("iplab hold: %d connections up, by server %v", n, h.ready.Servers)
	e.waitEchoed(h, time.Now(), nil, "iplab hold starting")
	return h
}

// connsOn returns the indices of the hold connections greeted by server.
func connsOn(r lab.HoldReport, server string) []int {
	var out []int
	for _, c := range r.Connections {
		if c.Server == server {
			out = append(out, c.Conn)
		}
	}
	return out
}

// failedConns returns the indices of the failed hold connections.
func failedConns(r lab.HoldReport) []int {
	var out []int
	for _, c := range r.Connections {
		if !c.FailedAt.IsZero() {
			out = append(out, c.Conn)
		}
	}
	return out
}

// requireEchoedAfter fails the test unless hold connection c verified an
// echo after t0 and did not fail.
func requireEchoedAfter(t *testing.T, c lab.HoldConn, t0 time.Time, what string) {
	t.Helper()
	if !c.FailedAt.IsZero() {
		t.Errorf("hold connection %d (port %d, %s): failed at %s (%s: %s: %s), want it %s",
			c.Conn, c.SourcePort, c.Server, c.FailedAt.Format(time.StampMilli), c.Stage, c.Kind, c.Error, what)
		return
	}
	if !c.LastEcho.After(t0) {
		t.Errorf("hold connection %d (port %d, %s): last echo at %s, not after %s: want it %s",
			c.Conn, c.SourcePort, c.Server, c.LastEcho.Format(time.StampMilli), t0.Format(time.StampMilli), what)
	}
}

// reload makes the running ipfront re-read its configuration file, by
// SIGHUP (how "sighup") or "ipfront ctl reload" (how "ctl"), waits for its
// "reloaded" log line and for the new servers to be resolved, and returns
// the generation it published, which must exceed the one before.
func (e *spEnv) reload(how string) uint64 {
	e.t.Helper()
	before := e.status().Generation
	mark := e.log.mark()
	var ctlGen uint64
	switch how {
	case "sighup":
		if err := e.ipf.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			e.t.Fatal(err)
		}
	case "ctl":
		r := e.ctlOK("reload")
		if _, err := fmt.Sscanf(r.stdout, "reloaded: tables generation %d", &ctlGen); err != nil {
			e.t.Fatalf("ipfront ctl reload printed %q, want \"reloaded: tables generation N\"", r.stdout)
		}
	default:
		e.t.Fatalf("reload how %q", how)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	line, _ := e.waitLine(ctx, mark, `"reloaded"`, msgIs("reloaded"))
	gen, err := strconv.ParseUint(line.Str("generation"), 10, 64)
	if err != nil {
		e.t.Fatalf("reloaded log line without a generation: %s", line.Text)
	}
	if how == "ctl" && ctlGen != gen {
		e.t.Errorf("ipfront ctl reload said generation %d, the log %d", ctlGen, gen)
	}
	if gen <= before {
		e.t.Errorf("reload (%s) published generation %d, want more than %d (before)", how, gen, before)
	}
	if now := e.status().Generation; now < gen {
		e.t.Errorf("/v1/status generation %d after a reload that published %d", now, gen)
	}
	e.waitResolved()
	return gen
}

// snapshot asks a running "iplab hold" for a report (SIGUSR1) and returns it.
func (c *streamClient[R]) snapshot(e *spEnv) R {
	e.t.Helper()
	if err := c.cmd.sig(syscall.SIGUSR1); err != nil {
		e.t.Fatalf("%s: %v", c.name, err)
	}
	select {
	case r, ok := <-c.reports:
		if !ok {
			e.t.Fatalf("%s exited (%v) instead of reporting", c.name, c.cmd.err)
		}
		return r
	case <-e.ctx.Done():
		e.t.Fatalf("%s: no snapshot report: %v", c.name, e.ctx.Err())
	}
	panic("unreachable")
}

// waitEchoed waits until every connection of a running "iplab hold",
// except those listed, has verified an echo after t0. It fails the test at
// once if one of them failed, and after a few seconds if one is silent.
func (e *spEnv) waitEchoed(h *streamClient[lab.HoldReport], t0 time.Time, except []int, what string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := h.snapshot(e)
		var waiting []int
		for _, c := range r.Connections {
			if slices.Contains(except, c.Conn) {
				continue
			}
			if !c.FailedAt.IsZero() {
				e.t.Fatalf("%s: long-lived connection %d (port %d, %s) failed at %s: %s (%s: %s)", what, c.Conn, c.SourcePort,
					c.Server, c.FailedAt.Format(time.StampMilli), c.Kind, c.Stage, c.Error)
			}
			if !c.LastEcho.After(t0) {
				waiting = append(waiting, c.Conn)
			}
		}
		if len(waiting) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: long-lived connections %v verified no echo since %s", what, waiting, t0.Format(time.StampMilli))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tcpRetransmits returns the TCP segments retransmitted so far in namespace
// ns (RetransSegs of /proc/net/snmp): on the quiet lab, any retransmission
// means a segment was lost.
func (e *spEnv) tcpRetransmits(ns string) uint64 {
	e.t.Helper()
	out, err := e.lab.Exec(ns, "cat", "/proc/net/snmp")
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RetransSegs" && i < len(f) {
				v, err := strconv.ParseUint(f[i], 10, 64)
				if err != nil {
					e.t.Fatalf("RetransSegs %q: %v", f[i], err)
				}
				return v
			}
		}
	}
	e.t.Fatalf("no RetransSegs in /proc/net/snmp of %s:\n%s", ns, out)
	return 0
}

// requireNoDrops fails the test if ipfront dropped anything.
func (e *spEnv) requireNoDrops(what string) {
	e.t.Helper()
	var c apiCounters
	e.api("/v1/counters", &c)
	if c.Dropped != 0 {
		var reasons []string
		for r, n := range c.Drops {
			if n > 0 {
				reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
			}
		}
		e.t.Errorf("%s: ipfront dropped %d frames: %s", what, c.Dropped, strings.Join(reasons, " "))
	}
}
