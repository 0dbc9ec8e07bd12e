//go:build linux

package e2e

import (
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// The least-load methods with real connections: unequal load is made first,
// then new connections must follow the load (least_load) or the peer
// group's spread (peer_aware_least_load), which the hash would not do.

// leastLoadBalance disables the balance alarm, which would otherwise steer
// new associations away from the loaded server by itself (through the
// weights) and hide what the selection method does; the scores still use
// the window, short here so that it soon holds little but the test's load.
const leastLoadBalance = `
	enabled = false
	window = "2s"`

// heavyRate is the byte rate of the one heavy connection ("iplab load"):
// about 2800 full-sized segments a second, against tens of packets a second
// from all the light connections together.
const heavyRate = "4000000"

// TestLeastLoadSpreadsByLoad runs one scenario under method = "least_load"
// and, as the control, under method = "hash": 30 light long-lived
// connections, then one heavy connection on some server, then 30 new
// connections from fixed source ports. Under least_load the heavy server
// must get at most 3 of them (the light ones about 15 each); under hash the
// same source ports give it its weight's share, so the least-load result is
// the scores' doing, not the hash's.
func TestLeastLoadSpreadsByLoad(t *testing.T) {
	for _, tc := range []struct {
		method string
		check  func(t *testing.T, heavy string, r lab.TCPReport)
	}{
		{"least_load", func(t *testing.T, heavy string, r lab.TCPReport) {
			if n := r.Servers[heavy]; n > 3 {
				t.Errorf("least_load: %d of 30 new connections went to %s, which carries nearly every packet; want at most 3: %v", n, heavy, r.Servers)
			}
			for _, s := range []string{"s1", "s2", "s3"} {
				if s != heavy && r.Servers[s] < 10 {
					t.Errorf("least_load: %d of 30 new connections went to the lightly loaded %s, want at least 10: %v", r.Servers[s], s, r.Servers)
				}
			}
		}},
		{"hash", func(t *testing.T, heavy string, r lab.TCPReport) {
			// The control: if this fails, the scenario no longer tells the
			// methods apart (the balance alarm steering, say).
			if n := r.Servers[heavy]; n < 5 {
				t.Errorf("hash (control): %d of 30 new connections went to the loaded %s, want about a third (at least 5): %v", n, heavy, r.Servers)
			}
		}},
	} {
		t.Run(tc.method, func(t *testing.T) {
			servers := []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}
			e := startSP(t, 3, spConfig{Servers: servers, Balance: leastLoadBalance,
				SetKeys: fmt.Sprintf("method = %q", tc.method)})
			if got := e.setMethod(); got != tc.method {
				t.Fatalf("/v1/sets method = %q, want %q", got, tc.method)
			}
			// The light connections keep many associations alive, which is
			// what makes one new association a small addition to a
			// server's score (the penalty is the fair share over the
			// association count).
			hold := e.startHold(30, 500*time.Millisecond, 64)
			load := startStream[lab.LoadReport](e, "load", "--rate", heavyRate, "--sport", strconv.Itoa(e.sports(1)))
			heavy := load.ready.Server
			if heavy == "" {
				t.Fatalf("iplab load: no server: %+v", load.ready)
			}
			t.Logf("light connections by server %v; heavy connection on %s", hold.ready.Servers, heavy)
			e.waitLoadSampled(heavy)

			r := e.tcpBatch(30)
			requireAllOK(t, "new connections under load", r)
			t.Logf("%s: 30 new connections by server %v, heavy %s", tc.method, r.Servers, heavy)
			tc.check(t, heavy, r)

			if lr := load.stop(e); lr.Kind != "" || lr.BytesVerified != lr.BytesSent {
				t.Errorf("iplab load: %d of %d bytes verified, failure %q (%s)", lr.BytesVerified, lr.BytesSent, lr.Kind, lr.Error)
			}
			if final := hold.stop(e); final.Failed != 0 {
				t.Errorf("%d light connections failed: %v", final.Failed, failedConns(final))
			}
		})
	}
}

// TestPeerAwareLeastLoad puts 20 long-lived connections of one peer group
// (the client's prefix) on s1 (s2 and s3 drained meanwhile) and one heavy
// connection of the same peer on s2 (s1 and s3 drained meanwhile), then
// enables every server and opens 30 new connections from the peer. The
// peer's connections must spread so that no server holds most of them: s1
// gets none of the new ones, and s2 gets about half although it carries
// nearly every packet (least_load alone would give it none, the hash about
// a third to each, s1 included).
func TestPeerAwareLeastLoad(t *testing.T) {
	servers := []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}
	e := startSP(t, 3, spConfig{Servers: servers, Balance: leastLoadBalance,
		SetKeys: `method = "peer_aware_least_load"`,
		Tables: fmt.Sprintf(`
  [[target_set.peer_group]]
  name = "peers"
  prefixes = [%q]
`, peerPrefix)})
	if got := e.setMethod(); got != "peer_aware_least_load" {
		t.Fatalf("/v1/sets method = %q, want peer_aware_least_load", got)
	}
	client := e.lab.Client().IPv4.String()

	e.ctlOK("drain", setName, "s2")
	e.ctlOK("drain", setName, "s3")
	hold := e.startHold(20, 500*time.Millisecond, 64)
	if n := hold.ready.Servers["s1"]; n != 20 {
		t.Fatalf("long-lived connections by server %v with s2 and s3 drained, want all 20 on s1", hold.ready.Servers)
	}
	e.ctlOK("drain", setName, "s1")
	e.ctlOK("enable", setName, "s2")
	load := startStream[lab.LoadReport](e, "load", "--rate", heavyRate, "--sport", strconv.Itoa(e.sports(1)))
	if load.ready.Server != "s2" {
		t.Fatalf("iplab load: server %q with only s2 enabled, want s2: %+v", load.ready.Server, load.ready)
	}
	e.ctlOK("enable", setName, "s1")
	e.ctlOK("enable", setName, "s3")
	e.waitLoadSampled("s2")
	before := e.assocsByServer(client)
	if before["s1"] != 20 || before["s2"] != 1 || before["s3"] != 0 {
		t.Fatalf("associations of %s by server %v, want s1 20, s2 1, s3 0", client, before)
	}

	r := e.tcpBatch(30)
	requireAllOK(t, "new connections of the peer", r)
	t.Logf("30 new connections of the peer by server %v", r.Servers)
	if n := r.Servers["s1"]; n != 0 {
		t.Errorf("%d new connections went to s1, which holds 20 of the peer's 21; want 0: %v", n, r.Servers)
	}
	if n := r.Servers["s2"]; n < 10 {
		t.Errorf("%d new connections went to s2 (1 of the peer's connections, nearly every packet); want at least 10 (peer count before load): %v", n, r.Servers)
	}
	if n := r.Servers["s3"]; n < 10 {
		t.Errorf("%d new connections went to s3 (none of the peer's connections); want at least 10: %v", n, r.Servers)
	}
	after := e.assocsByServer(client)
	total := 0
	for _, n := range after {
		total += n
	}
	if total != 51 {
		t.Errorf("associations of %s: %d (%v), want 51 (20 long-lived, 1 heavy, 30 new)", client, total, after)
	}
	for s, n := range after {
		if 2*n > total {
			t.Errorf("%s holds %d of the peer's %d associations (%v), want no server with most of them", s, n, total, after)
		}
	}

	if lr := load.stop(e); lr.Kind != "" || lr.BytesVerified != lr.BytesSent {
		t.Errorf("iplab load: %d of %d bytes verified, failure %q (%s)", lr.BytesVerified, lr.BytesSent, lr.Kind, lr.Error)
	}
	if final := hold.stop(e); final.Failed != 0 {
		t.Errorf("%d long-lived connections failed: %v", final.Failed, failedConns(final))
	}
}

// peerPrefix is the peer group of TestPeerAwareLeastLoad: it holds the lab
// client's address.
const peerPrefix = "198.51.100.0/28"

// setMethod returns the method /v1/sets reports for the test's set.
func (e *spEnv) setMethod() string {
	e.t.Helper()
	var s apiSets
	e.api("/v1/sets", &s)
	for _, set := range s.Sets {
		if set.Name == setName {
			return set.Method
		}
	}
	e.t.Fatalf("/v1/sets has no set %s: %+v", setName, s)
	return ""
}

// waitLoadSampled waits until the daemon has measured at least one full
// sampling period with heavy carrying most of the traffic, so that the
// least-load snapshot the workers read shows it.
//
// The daemon samples its load every second on a ticker of its own; the API
// computes /v1/servers rates on another, also every second. Two
// consecutive rate intervals of the API in which heavy dominates span two
// seconds of load, and the daemon's one tick inside the second interval
// measured the second before it, all of it under load. The wait is for
// those two readings, not for a time.
func (e *spEnv) waitLoadSampled(heavy string) {
	e.t.Helper()
	type reading struct {
		interval, pps float64
	}
	var prev reading
	dominated := 0
	e.waitFor(20*time.Second, "two rate readings dominated by "+heavy, func() (bool, string) {
		var r apiServers
		e.api("/v1/servers", &r)
		var cur reading
		others := 0.0
		for _, s := range r.Servers {
			if s.Name == heavy {
				cur = reading{r.Interval, s.PPS}
			} else {
				others = max(others, s.PPS)
			}
		}
		if cur == prev {
			return false, fmt.Sprintf("same reading %+v", cur)
		}
		prev = cur
		if cur.pps >= 500 && cur.pps >= 5*others {
			dominated++
		} else {
			dominated = 0
		}
		return dominated >= 2, fmt.Sprintf("%s at %.0f pps, others at most %.0f, %d readings dominated in a row", heavy, cur.pps, others, dominated)
	})
}

// assocsByServer counts the set's associations of client address client by
// server name.
func (e *spEnv) assocsByServer(client string) map[string]int {
	e.t.Helper()
	var a apiAssocs
	e.api("/v1/associations?set="+setName+"&limit=1000", &a)
	if a.NextCursor != "" {
		e.t.Fatalf("/v1/associations: more than 1000 associations")
	}
	out := map[string]int{}
	for _, as := range a.Associations {
		if as.Client == client {
			out[as.Server]++
		}
	}
	return out
}
