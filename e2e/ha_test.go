//go:build linux

package e2e

// Association replication between two ipfront instances (issue 11, [ha]):
// a second load balancer joins the lab's segment, both run with [ha]
// between them, connections go through the first, which is then killed;
// the client's route moves to the second, which must carry every connection
// on the server the first had chosen.

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// The second load balancer's addresses on the lab segment, and the sync
// port.
var (
	lb2IPv4 = netip.MustParseAddr("198.51.100.5")
	lb2IPv6 = netip.MustParseAddr("2001:db8:100::5")
)

const haPort = 9190

// haTable is the [ha] table of an instance at self whose mate is at mate.
func haTable(self, mate netip.Addr, keyFile string) string {
	return fmt.Sprintf("\n[ha]\nlisten = %q\nmates = [%q]\nkey_file = %q\n",
		netip.AddrPortFrom(self, haPort), netip.AddrPortFrom(mate, haPort), keyFile)
}

// addLB2 adds a second load balancer namespace on e's segment with the
// same interface name as the first (so one configuration fits both) and
// returns its host. Removed at cleanup, also on failure.
func (e *spEnv) addLB2() lab.Host {
	e.t.Helper()
	h := lab.Host{Role: "lb2", NS: e.lab.Prefix() + "-lb2", Ifname: lab.LBIfname, IPv4: lb2IPv4, IPv6: lb2IPv6}
	if out, err := runIP("netns", "add", h.NS); err != nil {
		e.t.Fatalf("ip netns add %s: %v: %s", h.NS, err, out)
	}
	e.t.Cleanup(func() {
		if out, err := runIP("netns", "del", h.NS); err != nil {
			e.t.Errorf("ip netns del %s: %v: %s", h.NS, err, out)
		}
	})
	if err := lab.Sysctl(h.NS, [][2]string{{"net.ipv6.conf.all.accept_dad", "0"}, {"net.ipv6.conf.default.accept_dad", "0"},
		{"net.ipv4.ip_forward", "0"}, {"net.ipv6.conf.all.forwarding", "0"}}); err != nil {
		e.t.Fatal(err)
	}
	sw := e.lab.Switch()
	for _, args := range [][]string{
		{"-n", sw, "link", "add", "p-lb2", "type", "veth", "peer", "name", h.Ifname, "address", "02:1b:00:00:00:05", "netns", h.NS},
		{"-n", sw, "link", "set", "p-lb2", "master", lab.BridgeName, "up"},
		{"-n", h.NS, "link", "set", "lo", "up"},
		{"-n", h.NS, "addr", "add", h.IPv4.String() + "/24", "dev", h.Ifname},
		{"-n", h.NS, "addr", "add", h.IPv6.String() + "/64", "dev", h.Ifname, "nodad"},
		{"-n", h.NS, "link", "set", h.Ifname, "up"},
	} {
		if out, err := runIP(args...); err != nil {
			e.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return h
}

// haStatus reads /v1/status of the ipfront in namespace ns.
func (e *spEnv) haStatus(ns string) (apiStatus, error) {
	var s apiStatus
	b, err := lab.GetJSON(e.ctx, ns, apiURL+"/v1/status")
	if err == nil {
		err = json.Unmarshal(b, &s)
	}
	return s, err
}

// TestHAFailover: 50 long-lived connections made through instance A with
// least_load (its choices follow the servers' load, which instance B's hash
// does not know: only replication can keep them), A killed with SIGKILL
// and the client's route moved to B: every connection keeps echoing on its
// server, none is reset, and new connections succeed through B.
func TestHAFailover(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "ha.key")
	if err := os.WriteFile(keyFile, []byte("e2e-ha-shared-secret-0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := spConfig{Servers: []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}, Balance: balanceOff,
		SetKeys: `method = "least_load"`, Tables: haTable(lab.LBIPv4, lb2IPv4, keyFile)}
	e := startSP(t, 3, cfg) // A: its mate is not there yet, so it joins alone
	lb2 := e.addLB2()

	cfgB := filepath.Join(t.TempDir(), "ipfront-b.toml")
	text, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	textB := strings.Replace(string(text), haTable(lab.LBIPv4, lb2IPv4, keyFile), haTable(lb2IPv4, lab.LBIPv4, keyFile), 1)
	if err := os.WriteFile(cfgB, []byte(textB), 0o644); err != nil {
		t.Fatal(err)
	}
	logB := &lab.PrefixWriter{W: testLog{t}, Prefix: "ipfront-b | ", Mu: &e.outMu}
	b, err := e.lab.StartProc(lb2.NS, "ipfront-b", logB, ipfrontBin, "run", "--config", cfgB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Stop(10 * time.Second); err != nil {
			t.Errorf("ipfront B did not exit cleanly on SIGTERM: %v", err)
		}
	})
	if err := lab.WaitReady(e.ctx, lb2.NS, apiURL+"/v1/status", b.Done()); err != nil {
		t.Fatalf("ipfront B not ready: %v", err)
	}

	const conns = 50
	hold := e.startHold(conns, 100*time.Millisecond, 64)
	// Every connection's association reaches B before A dies.
	e.waitFor(10*time.Second, "B holds A's associations", func() (bool, string) {
		s, err := e.haStatus(lb2.NS)
		n := 0
		for _, w := range s.Workers {
			n += w.Associations
		}
		return err == nil && n >= conns, fmt.Sprintf("%d associations on B (%v)", n, err)
	})

	var rep v1.HA
	if body, err := lab.GetJSON(e.ctx, lb2.NS, apiURL+"/v1/ha"); err != nil || json.Unmarshal(body, &rep) != nil {
		t.Fatalf("GET /v1/ha on B: %v: %s", err, body)
	}
	if len(rep.Mates) != 1 || !rep.Joined || !rep.Mates[0].Pulled || rep.Mates[0].Imported < conns ||
		rep.Mates[0].Rejected["forged"]+rep.Mates[0].Rejected["replayed"] != 0 {
		t.Errorf("B's /v1/ha = %+v, want joined, pulled from A, >= %d records imported, nothing rejected", rep, conns)
	}
	if err := e.ipf.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-e.ipf.Done()
	killed := time.Now()
	if err := e.lab.RouteVIPsVia(lb2); err != nil {
		t.Fatal(err)
	}
	e.waitEchoed(hold, killed, nil, "after A was killed and the route moved to B")
	t.Logf("every connection echoed through B %v after the kill", time.Since(killed).Round(time.Millisecond))
	requireAllOK(t, "new connections through B", e.tcpBatch(20))
	final := hold.stop(e)
	if bad := failedConns(final); len(bad) != 0 {
		t.Errorf("connections %v failed across the failover, want none", bad)
	}
	t.Logf("connections by server (least_load on A): %v", final.Servers)
	e.ipf = b // A is gone; startSP's cleanup stops B (a second Stop is harmless)
}

// runIP runs ip(8) with args and returns its combined output.
func runIP(args ...string) (string, error) {
	out, err := exec.Command("ip", args...).CombinedOutput()
	return string(out), err
}
