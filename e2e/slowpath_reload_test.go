//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// TestReloadUnderTraffic reloads the configuration five times, by SIGHUP
// and by "ipfront ctl reload" in turn, while 20 long-lived connections echo
// every 50 ms: weights change, a fourth server is added, one is removed,
// weights change twice more. Connections whose server stays must never
// fail; those on the removed server are re-selected on their next packet
// (to a server that knows nothing of them, so they are reset) and must be
// the only failures. Nothing may be lost: ipfront drops nothing and the
// client retransmits nothing. After every reload 300 new connections must
// follow the new weights, the removed server get none and the added one its
// share, and every reload must publish a higher generation.
func TestReloadUnderTraffic(t *testing.T) {
	const removed = "s2"
	initial := []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}
	steps := []struct {
		how, what string
		servers   []spServer
	}{
		{"sighup", "weights changed", []spServer{{"s1", 3}, {"s2", 1}, {"s3", 2}}},
		{"ctl", "s4 added", []spServer{{"s1", 3}, {"s2", 1}, {"s3", 2}, {"s4", 2}}},
		{"sighup", "s2 removed", []spServer{{"s1", 3}, {"s3", 2}, {"s4", 2}}},
		{"ctl", "weights changed", []spServer{{"s1", 1}, {"s3", 3}, {"s4", 2}}},
		{"sighup", "weights changed", []spServer{{"s1", 2}, {"s3", 1}, {"s4", 3}}},
	}
	e := startSP(t, 4, spConfig{Servers: initial, Balance: balanceOff})
	const interval = 50 * time.Millisecond
	hold := e.startHold(20, interval, 64)
	for _, s := range initial {
		if len(connsOn(hold.ready, s.Role)) == 0 {
			t.Fatalf("no long-lived connection on %s (%v): the test needs some on every server", s.Role, hold.ready.Servers)
		}
	}
	onRemoved := connsOn(hold.ready, removed)

	gen := e.status().Generation
	var removedAt, lastReload time.Time
	for i, st := range steps {
		e.writeConfig(spConfig{Servers: st.servers, Balance: balanceOff})
		at := time.Now()
		g := e.reload(st.how)
		t.Logf("reload %d (%s, %s): generation %d -> %d", i+1, st.how, st.what, gen, g)
		if g <= gen {
			t.Errorf("reload %d: generation %d, want more than %d", i+1, g, gen)
		}
		gen, lastReload = g, at
		if removedAt.IsZero() && !slices.ContainsFunc(st.servers, func(s spServer) bool { return s.Role == removed }) {
			removedAt = at
		}

		var except []int
		if !removedAt.IsZero() {
			except = onRemoved
		}
		e.waitEchoed(hold, time.Now(), except, fmt.Sprintf("after reload %d", i+1))

		r := e.tcpBatch(300)
		requireAllOK(t, fmt.Sprintf("after reload %d", i+1), r)
		weights := e.cfg.weights(e.lab.Servers())
		checkShares(t, r.Servers, e.lab.Servers(), weights, 8)
		for j, h := range e.lab.Servers() {
			if weights[j] == 0 && r.Servers[h.Role] != 0 {
				t.Errorf("after reload %d: %d new connections went to %s, which is not configured", i+1, r.Servers[h.Role], h.Role)
			}
		}
	}

	final := hold.stop(e)
	failed := failedConns(final)
	t.Logf("long-lived connections on %s: %v; failed: %v", removed, onRemoved, failed)
	if !slices.Equal(failed, onRemoved) {
		t.Errorf("failed long-lived connections = %v, want exactly those on the removed server %s: %v", failed, removed, onRemoved)
	}
	for _, c := range final.Connections {
		if slices.Contains(onRemoved, c.Conn) {
			if !c.FailedAt.IsZero() && (c.FailedAt.Before(removedAt) || c.Kind != lab.FailReset) {
				t.Errorf("connection %d on %s failed at %s (%s: %s), want a reset after the reload that removed it (%s)",
					c.Conn, removed, c.FailedAt.Format(time.StampMilli), c.Kind, c.Error, removedAt.Format(time.StampMilli))
			}
			continue
		}
		requireEchoedAfter(t, c, lastReload, "echoing through every reload")
		// One message per interval at most; half as many means stalls.
		elapsed := final.Stopped.Sub(c.Connected)
		if least := int64(elapsed / (2 * interval)); c.Messages < least {
			t.Errorf("connection %d (%s): %d messages echoed in %v, want at least %d", c.Conn, c.Server, c.Messages, elapsed, least)
		}
	}
	// Zero loss: ipfront dropped nothing, and the client never had to
	// retransmit (TCP would have hidden a lost segment from the echoes).
	e.requireNoDrops("after the reloads")
	if n := e.tcpRetransmits(e.lab.Client().NS); n != 0 {
		t.Errorf("the client retransmitted %d TCP segments: segments were lost", n)
	}
}

// TestInvalidReloadChangesNothing writes a configuration with an unknown
// key and a bad address (and different weights) and reloads it: "ipfront
// ctl reload" must exit non-zero printing each problem as file:line:column,
// ipfront must log the same, the generation must not move, a SIGHUP must be
// refused the same way, long-lived connections keep echoing and new ones
// follow the old weights.
func TestInvalidReloadChangesNothing(t *testing.T) {
	servers := []spServer{{"s1", 1}, {"s2", 2}, {"s3", 3}}
	e := startSP(t, 3, spConfig{Servers: servers, Balance: balanceOff})
	hold := e.startHold(20, 50*time.Millisecond, 64)
	before := e.status().Generation
	statesBefore := e.serverStates()

	broken := dataplaneTOML([]string{lab.LBIfname}, 65536) + fmt.Sprintf(`
[log]
format = "json"

[[target_set]]
name = %q
address = %q
protocols = ["tcp", "udp"]
ports = [%q]
delete_age = "30s"
no_such_key = 1

  [[target_set.server]]
  name = "s1"
  address = "198.51.100.11"
  weight = 3

  [[target_set.server]]
  name = "s2"
  address = "198.51.100.300"
  weight = 2

  [[target_set.server]]
  name = "s3"
  address = "198.51.100.13"
  weight = 1

  [target_set.balance]
  enabled = false
`, setName, e.vip, ports)
	e.writeFile(broken)
	// Where the problems are: the unknown key at its first column, the bad
	// address at its value's opening quote.
	keyPos := position(t, broken, "no_such_key", 0)
	addrPos := position(t, broken, `"198.51.100.300"`, 0)
	wantPos := []string{e.cfgPath + ":" + keyPos + ":", e.cfgPath + ":" + addrPos + ":"}

	mark := e.log.mark()
	r := e.ctl("reload")
	if r.err == nil {
		t.Errorf("ipfront ctl reload of an invalid file exited 0")
	}
	for _, want := range wantPos {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("ipfront ctl reload's message lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "no_such_key") || !strings.Contains(r.stderr, "198.51.100.300") {
		t.Errorf("ipfront ctl reload's message does not name the unknown key and the bad address:\n%s", r.stderr)
	}
	e.requireRefusalLogged(mark, wantPos)

	// The same file by -o json: the API's error body, every problem listed.
	mark = e.log.mark()
	rj := e.ctl("-o", "json", "reload")
	var body struct {
		Error  string   `json:"error"`
		Errors []string `json:"errors"`
	}
	if rj.err == nil {
		t.Errorf("ipfront ctl -o json reload of an invalid file exited 0")
	}
	if err := json.Unmarshal([]byte(rj.stdout), &body); err != nil || len(body.Errors) != 2 {
		t.Errorf("ipfront ctl -o json reload printed %q (%v), want the API's error with 2 problems", rj.stdout, err)
	} else {
		for i, want := range wantPos {
			if !strings.HasPrefix(body.Errors[i], want) {
				t.Errorf("error %d = %q, want it to start with %q", i, body.Errors[i], want)
			}
		}
	}
	e.requireRefusalLogged(mark, wantPos)

	// And by SIGHUP, which nobody answers but the log.
	mark = e.log.mark()
	if err := e.ipf.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	e.requireRefusalLogged(mark, wantPos)

	if after := e.status().Generation; after != before {
		t.Errorf("generation %d after invalid reloads, want %d (unchanged)", after, before)
	}
	for name, was := range statesBefore {
		if now := e.serverStates()[name]; now.Weight != was.Weight || now.Address != was.Address {
			t.Errorf("server %s after invalid reloads: %+v, want %+v", name, now, was)
		}
	}
	if body, code := e.get("/v1/sets"); code != http.StatusOK || !strings.Contains(string(body), `"servers": 3`) {
		t.Errorf("/v1/sets after invalid reloads: %d %s", code, body)
	}

	nr := e.tcpBatch(300)
	requireAllOK(t, "new connections after invalid reloads", nr)
	checkShares(t, nr.Servers, e.lab.Servers(), e.cfg.weights(e.lab.Servers()), 8)
	e.waitEchoed(hold, time.Now(), nil, "after the invalid reloads")
	final := hold.stop(e)
	if final.Failed != 0 {
		t.Errorf("%d long-lived connections failed: %v", final.Failed, failedConns(final))
	}
	e.requireNoDrops("after the invalid reloads")
	if n := e.tcpRetransmits(e.lab.Client().NS); n != 0 {
		t.Errorf("the client retransmitted %d TCP segments: segments were lost", n)
	}
}

// requireRefusalLogged waits for ipfront's log, after mark, to say the
// reload was refused, then checks it logged each problem (one line each,
// starting at its file:line:column).
func (e *spEnv) requireRefusalLogged(mark int, wantPos []string) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	_, next := e.waitLine(ctx, mark, "refusing the reload", func(l logLine) bool {
		return strings.HasPrefix(l.Msg(), "reload refused")
	})
	// The problems follow the refusal, one line each; wait for the last.
	last := wantPos[len(wantPos)-1]
	e.waitLine(ctx, next, "with "+last, func(l logLine) bool { return strings.HasPrefix(l.Msg(), last) })
	for _, want := range wantPos {
		lines := e.log.since(mark, func(l logLine) bool { return strings.HasPrefix(l.Msg(), want) })
		if len(lines) != 1 || lines[0].Level() != "error" {
			e.t.Errorf("ipfront logged %d lines at %q (%v), want one error", len(lines), want, lines)
		}
	}
	if got := e.log.since(mark, msgIs("reloaded")); len(got) != 0 {
		e.t.Errorf("ipfront logged %q after an invalid file: %v", "reloaded", got)
	}
}

// position returns "line:column" (1-based) of the n-th (0-based) occurrence
// of s in text.
func position(t *testing.T, text, s string, n int) string {
	t.Helper()
	off := -1
	for i := 0; i <= n; i++ {
		j := strings.Index(text[off+1:], s)
		if j < 0 {
			t.Fatalf("%q not in the configuration", s)
		}
		off += 1 + j
	}
	line := strings.Count(text[:off], "\n") + 1
	col := off - strings.LastIndexByte(text[:off], '\n')
	return fmt.Sprintf("%d:%d", line, col)
}
