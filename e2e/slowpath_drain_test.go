//go:build linux

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestDrainKeepsExistingConnections drains a server with "ipfront ctl
// drain": its long-lived connections keep echoing, no new connection goes
// to it; "ipfront ctl enable" (by address) gives it new connections again.
func TestDrainKeepsExistingConnections(t *testing.T) {
	const drained = "s1"
	servers := []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}
	e := startSP(t, 3, spConfig{Servers: servers, Balance: balanceOff})
	addr := e.host(drained).IPv4.String()
	hold := e.startHold(20, 50*time.Millisecond, 64)
	onDrained := connsOn(hold.ready, drained)
	if len(onDrained) == 0 {
		t.Fatalf("long-lived connections by server %v: the test needs some on %s", hold.ready.Servers, drained)
	}

	mark := e.log.mark()
	out := e.ctlOK("drain", setName, drained)
	if want := fmt.Sprintf("drained %s/%s (%s): effective weight 0, state drained\n", setName, drained, addr); out.stdout != want {
		t.Errorf("ipfront ctl drain printed %q, want %q", out.stdout, want)
	}
	if s := e.serverStates()[drained]; !s.Drained || s.EffectiveWeight != 0 || s.Weight != 1 || !s.Healthy {
		t.Errorf("/v1/servers %s after drain = %+v, want drained, healthy, weight 1, effective weight 0", drained, s)
	}
	if l := e.log.since(mark, msgIs("server admin state")); len(l) != 1 || l[0].Str("drained") != "true" || l[0].Str("server") != drained {
		t.Errorf("ipfront logged %v, want one \"server admin state\" line with drained=true for %s", l, drained)
	}
	tb := findTable(t, e.ctlOK("servers").stdout, "SET", "SERVER", "ADDRESS", "WEIGHT", "EFF", "STATE", "ASSOC", "PPS", "BPS", "PKTS", "BYTES", "SHARE")
	if row := tb.row(t, "SERVER", drained); row["STATE"] != "drained" || row["EFF"] != "0" || row["WEIGHT"] != "1" {
		t.Errorf("ipfront ctl servers: %s row %v, want STATE drained, EFF 0, WEIGHT 1", drained, row)
	}
	ms := e.metrics()
	labels := map[string]string{"set": setName, "server": drained, "address": addr}
	if v := metricValue(t, ms, "ipfront_server_drained", labels); v != 1 {
		t.Errorf("ipfront_server_drained%v = %v, want 1", labels, v)
	}
	if v := metricValue(t, ms, "ipfront_server_weight", labels); v != 0 {
		t.Errorf("ipfront_server_weight%v = %v, want 0", labels, v)
	}

	r := e.tcpBatch(100)
	requireAllOK(t, "new connections while "+drained+" is drained", r)
	if r.Servers[drained] != 0 {
		t.Errorf("%d new connections went to the drained server %s: %v", r.Servers[drained], drained, r.Servers)
	}
	// Its existing connections go on, and ipfront still holds them for it.
	e.waitEchoed(hold, time.Now(), nil, "while "+drained+" is drained")
	var assocs apiAssocs
	e.api("/v1/associations?server="+drained+"&limit=1000", &assocs)
	var ports []int
	for _, a := range assocs.Associations {
		ports = append(ports, a.Port)
	}
	for _, i := range onDrained {
		if p := hold.ready.Connections[i].SourcePort; !slices.Contains(ports, p) {
			t.Errorf("no association of port %d for drained %s: %v", p, drained, ports)
		}
	}

	// An unknown server is refused and changes nothing.
	if bad := e.ctl("drain", setName, "s9"); bad.err == nil || !strings.Contains(bad.stderr, "no such server") {
		t.Errorf("ipfront ctl drain %s s9: exit %v, stderr %q; want a failure naming no such server", setName, bad.err, bad.stderr)
	}

	out = e.ctlOK("enable", setName, addr)
	if want := fmt.Sprintf("enabled %s/%s (%s): effective weight 1, state up\n", setName, drained, addr); out.stdout != want {
		t.Errorf("ipfront ctl enable printed %q, want %q", out.stdout, want)
	}
	if s := e.serverStates()[drained]; s.Drained || s.EffectiveWeight != 1 {
		t.Errorf("/v1/servers %s after enable = %+v, want not drained, effective weight 1", drained, s)
	}
	r = e.tcpBatch(300)
	requireAllOK(t, "new connections after enable", r)
	checkShares(t, r.Servers, e.lab.Servers(), e.cfg.weights(e.lab.Servers()), 8)

	e.waitEchoed(hold, time.Now(), nil, "after enable")
	if final := hold.stop(e); final.Failed != 0 {
		t.Errorf("%d long-lived connections failed: %v", final.Failed, failedConns(final))
	}
}
