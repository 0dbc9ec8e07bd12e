//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"syscall"
	"testing"

	"github.com/ipfront/ipfront/internal/lab"
)

// streamReports runs "iplab args... -o json" (hold or load) in the client
// namespace and decodes its ready and final reports into ready and final;
// it returns the exit code.
func streamReports(t *testing.T, l *lab.Lab, ready, final any, args ...string) int {
	t.Helper()
	stdout, stderr, code := runJSON(t, l, args...)
	dec := json.NewDecoder(bytes.NewReader(stdout.Bytes()))
	for _, r := range []any{ready, final} {
		if err := dec.Decode(r); err != nil {
			t.Fatalf("iplab %v: exit %d, reports unreadable: %v\n%s\n%s", args, code, err, stdout.Bytes(), stderr.Bytes())
		}
	}
	if err := dec.Decode(new(json.RawMessage)); !errors.Is(err, io.EOF) {
		t.Errorf("iplab %v: more than two reports: %v\n%s", args, err, stdout.Bytes())
	}
	return code
}

func TestHoldDirect(t *testing.T) {
	l := directLab(t)
	var ready, final lab.HoldReport
	code := streamReports(t, l, &ready, &final, "hold", "--vip", l.VIP(true).String(), "--port", "7001", "--conns", "5",
		"--interval", "20ms", "--bytes", "100", "--duration", "600ms", "--sport", "21100")
	if code != 0 || ready.Phase != lab.PhaseReady || ready.Connected != 5 || ready.Failed != 0 ||
		!reflect.DeepEqual(ready.Servers, map[string]int{"s2": 5}) {
		t.Errorf("hold ready report (exit %d): %+v; want 5 connections to s2", code, ready)
	}
	if final.Phase != lab.PhaseFinal || final.Connected != 5 || final.Failed != 0 || final.Stopped.Before(final.Started) {
		t.Errorf("hold final report: %+v; want 5 connections, none failed", final)
	}
	for i, c := range final.Connections {
		if c.Conn != i || c.SourcePort != 21100+i || c.Server != "s2" || c.Messages < 10 || c.BytesVerified != 100*c.Messages ||
			c.LastEcho.Before(c.Connected) || !c.FailedAt.IsZero() {
			t.Errorf("hold connection %d: %+v; want port %d, s2, at least 10 messages of 100 bytes, no failure", i, c, 21100+i)
		}
	}
}

func TestHoldReportsFailures(t *testing.T) {
	l := directLab(t)
	var ready, final lab.HoldReport
	code := streamReports(t, l, &ready, &final, "hold", "--vip", l.VIP(false).String(), "--port", "7999", "--conns", "3",
		"--duration", "100ms")
	if code != 1 || ready.Connected != 0 || ready.Failed != 3 || final.Failed != 3 {
		t.Errorf("hold to a closed port: exit %d, ready %+v, final %+v; want exit 1 and 3 failures", code, ready, final)
	}
	for _, c := range final.Connections {
		if c.Stage != "dial" || c.Kind != lab.FailRefused || c.FailedAt.IsZero() {
			t.Errorf("hold connection %d: %+v; want a refused dial", c.Conn, c)
		}
	}
}

func TestLoadDirect(t *testing.T) {
	l := directLab(t)
	for _, c := range []struct {
		rate          string
		bytesPerSec   float64 // 0: unlimited
		minMB         float64 // unlimited only
		duration, vip string
	}{
		{"0", 0, 1, "600ms", l.VIP(false).String()},
		{"2000000", 2e6, 0, "600ms", l.VIP(true).String()},
	} {
		var ready, final lab.LoadReport
		code := streamReports(t, l, &ready, &final, "load", "--vip", c.vip, "--port", "7000", "--rate", c.rate, "--duration", c.duration)
		if code != 0 || ready.Phase != lab.PhaseReady || ready.Server != "s2" || ready.Kind != "" {
			t.Errorf("load --rate %s ready report (exit %d): %+v; want s2, no failure", c.rate, code, ready)
		}
		// A limited load sends its rate over the time it actually ran (the
		// report's duration: a loaded host may start it late), within a
		// 64 KiB write and a quarter for scheduling noise.
		mb := float64(final.BytesSent) / 1e6
		minMB, maxMB := c.minMB, 1e9
		if c.bytesPerSec > 0 {
			at := c.bytesPerSec * final.DurationMS / 1000 / 1e6
			minMB, maxMB = 0.75*at, 1.25*at+0.0655
		}
		if final.Phase != lab.PhaseFinal || final.Kind != "" || final.BytesVerified != final.BytesSent || mb < minMB || mb > maxMB {
			t.Errorf("load --rate %s final report: %+v; want %.2f..%.2f MB sent, all verified, no failure", c.rate, final, minMB, maxMB)
		}
	}
}

func TestFailKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{errMismatch, lab.FailMismatch},
		{os.ErrDeadlineExceeded, lab.FailTimeout},
		{io.EOF, lab.FailEOF},
		{io.ErrUnexpectedEOF, lab.FailEOF},
		{&os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}, lab.FailReset},
		{&os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}, lab.FailRefused},
		{errors.New("something else"), lab.FailOther},
	} {
		if got := failKind(c.err); got != c.want {
			t.Errorf("failKind(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
