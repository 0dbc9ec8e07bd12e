//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// on_server_failure with real UDP flows. A flow here is a client source
// port: each round sends one datagram from each flow's port and notes which
// server answered it. UDP has no teardown, so the same port in a later
// round is the same flow to ipfront, with the same association.
//
// The victim fails only its health check: the check probes TCP port
// failureHealthPort, and the victim's echo server is restarted without that
// port, while it still answers the data port. So packets that ipfront keeps
// sending to the victim still get answers, and the answers say where they
// went.

// failureHealthPort is the port the health checks of these tests probe:
// one of the set's ports, served over TCP by every server until the test
// closes it on the victim.
const failureHealthPort = 7010

// failureFlows is the number of UDP flows of a round.
const failureFlows = 12

func TestServerFailureReselect(t *testing.T) { testServerFailure(t, "reselect") }

func TestServerFailureKeep(t *testing.T) { testServerFailure(t, "keep") }

// testServerFailure runs UDP flows through three servers, fails the health
// check of the server holding most of them and sends from every flow again.
// With "reselect" each of the victim's flows must move to another server on
// its next datagram and stay there (also once the victim is back), the
// others keep their server, and ipfront counts one re-selection per moved
// flow. With "keep" every flow stays where it was, the victim's flows still
// reaching the victim, and nothing is re-selected. Either way the victim
// gets no new flow while it is down.
func testServerFailure(t *testing.T, mode string) {
	servers := []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}
	e := startSP(t, 3, spConfig{Servers: servers, Balance: balanceOff,
		SetKeys: fmt.Sprintf("on_server_failure = %q", mode),
		Health: fmt.Sprintf(`
			type = "tcp"
			port = %d
			interval = "200ms"
			timeout = "100ms"
			rise = 2
			fall = 2`, failureHealthPort)})

	flows := e.sports(failureFlows)
	before := e.udpRound(flows, failureFlows)
	victim := mostCommon(before)
	onVictim := indicesOf(before, victim)
	if len(onVictim) == len(before) {
		t.Fatalf("flows by server %v: the test needs flows on more than one server", before)
	}
	t.Logf("flows by server %v; victim %s holds flows %v", before, victim, onVictim)
	if again := e.udpRound(flows, failureFlows); !slices.Equal(again, before) {
		t.Fatalf("a second round from the same ports answered by %v, first %v: associations must hold", again, before)
	}

	reselectedBefore := e.reselected()
	mark := e.log.mark()
	e.failHealthCheck(victim)
	if l := e.log.since(mark, func(l logLine) bool {
		return strings.HasPrefix(l.Msg(), "server down") && l.Str("server") == victim
	}); len(l) != 1 {
		t.Errorf("ipfront logged %d \"server down\" lines for %s, want 1: %v", len(l), victim, l)
	}

	after := e.udpRound(flows, failureFlows)
	for i := range after {
		moved := after[i] != before[i]
		switch {
		case mode == "keep" && moved:
			t.Errorf("keep: flow %d (port %d) answered by %s after %s failed its health check, want it still on %s", i, flows+i, after[i], victim, before[i])
		case mode == "reselect" && before[i] == victim && after[i] == victim:
			t.Errorf("reselect: flow %d (port %d) still answered by %s after it failed its health check, want it moved on this packet", i, flows+i, victim)
		case mode == "reselect" && before[i] != victim && moved:
			t.Errorf("reselect: flow %d (port %d) on the healthy %s moved to %s", i, flows+i, before[i], after[i])
		}
	}
	t.Logf("%s: after %s failed, flows by server %v", mode, victim, after)
	if again := e.udpRound(flows, failureFlows); !slices.Equal(again, after) {
		t.Errorf("%s: the next round answered by %v, the one before by %v: want every flow to stay where it is now", mode, again, after)
	}
	want := uint64(0)
	if mode == "reselect" {
		want = uint64(len(onVictim))
	}
	if got := e.reselected() - reselectedBefore; got != want {
		t.Errorf("%s: ipfront_associations_reselected_total grew by %d, want %d (the victim's flows: %v)", mode, got, want, onVictim)
	}

	// New flows avoid the victim in both modes: it is down.
	fresh := e.udpRound(e.sports(failureFlows), failureFlows)
	if n := len(indicesOf(fresh, victim)); n != 0 {
		t.Errorf("%s: %d of %d new flows went to %s while it is down: %v", mode, n, failureFlows, victim, fresh)
	}

	// Back up: associations are not moved back.
	e.restoreHealthCheck(victim)
	if final := e.udpRound(flows, failureFlows); !slices.Equal(final, after) {
		t.Errorf("%s: after %s came back the flows were answered by %v, before by %v: want no flow moved", mode, victim, final, after)
	}
	e.requireNoDrops("UDP flows through a server failure")
}

// udpRound sends one datagram from each of the n source ports first.. and
// returns, by flow, the name of the server that answered; a flow without an
// answer fails the test.
func (e *spEnv) udpRound(first, n int) []string {
	e.t.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = e.udpOnce(first + i)
	}
	return out
}

// udpOnce sends one datagram to the VIP from source port sport with "iplab
// udp" and returns the server that answered.
func (e *spEnv) udpOnce(sport int) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	cmd := e.lab.CommandContext(ctx, e.lab.Client().NS, iplabBin, "udp", "--vip", e.vip.String(), "--port", port,
		"--flows", "1", "--packets", "1", "--timeout", "2s", "--sport", strconv.Itoa(sport), "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var r lab.UDPReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		e.t.Fatalf("iplab udp from port %d: %v, report unreadable: %v\n%s%s", sport, runErr, err, stdout.Bytes(), stderr.Bytes())
	}
	if r.Replies != 1 || len(r.Servers) != 1 || r.Failed() {
		e.t.Fatalf("iplab udp from port %d: %d replies, servers %v, lost %d, errors %v; want one reply", sport, r.Replies, r.Servers, r.Lost, r.Errors)
	}
	for name := range r.Servers {
		return name
	}
	panic("unreachable")
}

// failHealthCheck makes server role fail its health check while it keeps
// serving the data ports: its echo server is restarted without TCP port
// failureHealthPort. It returns once the API reports the server down, which
// it does only after the tables that reflect it are published.
func (e *spEnv) failHealthCheck(role string) {
	e.t.Helper()
	e.stopServer(role)
	e.startServerPorts(role, fmt.Sprintf("7000-%d", failureHealthPort-1), ports)
	e.waitFor(15*time.Second, role+" down", func() (bool, string) {
		st := e.serverStates()[role]
		return !st.Healthy && st.EffectiveWeight == 0, fmt.Sprintf("%+v", st)
	})
}

// restoreHealthCheck restarts server role's echo server on every port and
// returns once the API reports it up.
func (e *spEnv) restoreHealthCheck(role string) {
	e.t.Helper()
	e.stopServer(role)
	e.startServer(role)
	e.waitFor(15*time.Second, role+" up", func() (bool, string) {
		st := e.serverStates()[role]
		return st.Healthy && st.EffectiveWeight == 1, fmt.Sprintf("%+v", st)
	})
}

// startServerPorts is startServer with the TCP and UDP ports given.
func (e *spEnv) startServerPorts(role, tcp, udp string) {
	e.t.Helper()
	h := e.host(role)
	w := &lab.PrefixWriter{W: testLog{e.t}, Prefix: role + " | ", Mu: &e.outMu}
	p, err := e.lab.StartProc(h.NS, role, w, iplabBin, "serve", "--name", role, "--tcp", tcp, "--udp", udp)
	if err != nil {
		e.t.Fatal(err)
	}
	e.srvMu.Lock()
	e.servers[role] = p
	e.srvMu.Unlock()
	if err := lab.WaitGreeting(e.ctx, e.lab.Client().NS, netip.AddrPortFrom(h.IPv4, 7000), role, p.Done()); err != nil {
		e.t.Fatalf("server %s: %v", role, err)
	}
}

// reselected returns ipfront_associations_reselected_total.
func (e *spEnv) reselected() uint64 {
	e.t.Helper()
	return uint64(metricValue(e.t, e.metrics(), "ipfront_associations_reselected_total", map[string]string{}))
}

// mostCommon returns the most frequent of names, the first seen on a tie.
func mostCommon(names []string) string {
	best, count := "", map[string]int{}
	for _, n := range names {
		count[n]++
		if count[n] > count[best] {
			best = n
		}
	}
	return best
}

// indicesOf returns the indices of names equal to name.
func indicesOf(names []string, name string) []int {
	var out []int
	for i, n := range names {
		if n == name {
			out = append(out, i)
		}
	}
	return out
}
