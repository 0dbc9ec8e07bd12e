//go:build linux

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// BGP end to end (issue 11): two ipfront instances on the servers' segment
// peer over BGP (IPv4 and IPv6 sessions) with BIRD 2 in a router namespace
// that the client reaches the VIPs through; the router forwards only by
// what it learned. Each instance's VIPs must appear in the router's kernel
// table as host routes via that instance's address, and go when the
// instance's servers fail its health checks, when it is drained
// (ipfront ctl drain-node), and on SIGTERM, which withdraws first and then
// keeps forwarding for drain_time: new connections started around the
// stop all succeed.

// bgpDrainTime is the instances' [bgp] drain_time.
const bgpDrainTime = 3 * time.Second

// bgpEnv is a routed lab with BIRD, servers and two ipfront instances.
type bgpEnv struct {
	t    *testing.T
	lab  *lab.RoutedLab
	bird *lab.BIRD
	ipf  []*lab.Proc // per load balancer
	vip4 netip.Prefix
	vip6 netip.Prefix
}

// bgpSetup builds a routed lab with lbs load balancers and two servers,
// starts the servers, BIRD on the router and ipfront on every load
// balancer with the [bgp] table bgpTOML returns for it.
func bgpSetup(t *testing.T, lbs int, bgpTOML func(lb lab.Host) string) *bgpEnv {
	t.Helper()
	requireEnv(t)
	if _, err := lab.BIRDPath(); err != nil {
		t.Skipf("%v (.ci/run installs bird2)", err)
	}
	l, err := lab.NewRouted(lab.UniquePrefix("e2ebgp"), lbs, 2)
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, l)
	e := &bgpEnv{t: t, lab: l, vip4: netip.PrefixFrom(lab.DefaultVIP4, 32), vip6: netip.PrefixFrom(lab.DefaultVIP6, 128)}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	logTo := testLogTo(t)
	startLabServers(t, ctx, l.Lab, logTo)
	e.bird, err = l.StartBIRD(t.TempDir(), logTo("bird"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.bird.Close(); err != nil {
			t.Errorf("bird: %v", err)
		}
	})
	for _, lb := range l.LBs() {
		e.ipf = append(e.ipf, e.startInstance(ctx, lb, bgpTOML(lb), logTo("ipfront-"+lb.Role)))
	}
	return e
}

// startInstance runs ipfront on lb and waits until its API says ready;
// it is stopped with SIGTERM at the end unless the test stopped it.
func (e *bgpEnv) startInstance(ctx context.Context, lb lab.Host, bgpTOML string, log io.Writer) *lab.Proc {
	t := e.t
	t.Helper()
	var b strings.Builder
	b.WriteString(dataplaneTOML([]string{lab.LBIfname}, 65536, `hash_seed = "e2e-bgp-same-seed-on-every-instance"`))
	b.WriteString(bgpTOML)
	for _, vip := range []netip.Addr{lab.DefaultVIP4, lab.DefaultVIP6} {
		fmt.Fprintf(&b, `
[[target_set]]
name = "web%d"
address = %q
protocols = ["tcp"]
ports = [%q]
delete_age = "30s"
%s`, vip.BitLen()/32, vip, ports, quickHealthTOML)
		for _, s := range e.lab.Servers() {
			fmt.Fprintf(&b, "  [[target_set.server]]\n  name = %q\n  address = %q\n", s.Role, s.Addr(vip.Is6()))
		}
	}
	cfg := writeTempConfig(t, "ipfront.toml", b.String())
	p, err := e.lab.StartProc(lb.NS, "ipfront-"+lb.Role, log, ipfrontBin, "run", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(10 * time.Second); err != nil {
			t.Errorf("ipfront on %s did not exit cleanly on SIGTERM: %v", lb.Role, err)
		}
	})
	if err := lab.WaitReady(ctx, lb.NS, apiURL+"/v1/status", p.Done()); err != nil {
		t.Fatalf("ipfront on %s not ready: %v", lb.Role, err)
	}
	return p
}

// waitHops waits until the router's routes to both VIPs go via exactly
// the given load balancers and returns how long that took.
func (e *bgpEnv) waitHops(what string, lbs ...lab.Host) time.Duration {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var took time.Duration
	for _, v6 := range []bool{false, true} {
		vip := e.vip4
		if v6 {
			vip = e.vip6
		}
		var want []netip.Addr
		for _, lb := range lbs {
			want = append(want, lb.Addr(v6))
		}
		d, err := e.bird.WaitNextHops(ctx, vip, want...)
		if err != nil {
			e.t.Fatalf("%s: %v", what, err)
		}
		took = max(took, d)
	}
	e.t.Logf("%s: router converged in %v", what, took.Round(time.Millisecond))
	return took
}

// ctl runs "ipfront ctl -o json args..." on lb and decodes the reply.
func (e *bgpEnv) ctl(lb lab.Host, v any, args ...string) {
	e.t.Helper()
	out, err := e.lab.Exec(lb.NS, append([]string{ipfrontBin, "ctl", "-o", "json"}, args...)...)
	if err != nil {
		e.t.Fatalf("ipfront ctl %s on %s: %v", strings.Join(args, " "), lb.Role, err)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		e.t.Fatalf("ipfront ctl %s on %s: %v: %s", strings.Join(args, " "), lb.Role, err, out)
	}
}

// tcp runs n echo connections from the client to the VIP of the family and
// returns the report.
func (e *bgpEnv) tcp(v6 bool, n int) lab.TCPReport {
	e.t.Helper()
	vip := e.vip4.Addr()
	if v6 {
		vip = e.vip6.Addr()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _ := e.lab.CommandContext(ctx, e.lab.Client().NS, iplabBin, "tcp", "--vip", vip.String(), "--port", port,
		"--conns", fmt.Sprint(n), "--parallel", "4", "--bytes", "2048", "--timeout", "5s", "-o", "json").Output()
	var r lab.TCPReport
	if err := json.Unmarshal(out, &r); err != nil {
		e.t.Fatalf("iplab tcp: report unreadable: %v: %s", err, out)
	}
	return r
}

func (e *bgpEnv) newAssociations(lb lab.Host) uint64 {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	body, err := lab.GetJSON(ctx, lb.NS, apiURL+"/v1/counters")
	if err != nil {
		e.t.Fatal(err)
	}
	var c v1.Counters
	if err := json.Unmarshal(body, &c); err != nil {
		e.t.Fatal(err)
	}
	return c.NewAssociations
}

// speakerTOML is the [bgp] table of an instance that peers with the router.
func speakerTOML(lb lab.Host) string {
	return fmt.Sprintf(`
[bgp]
asn = %d
router_id = %q
drain_time = %q
med = 10
communities = ["64512:100"]

  [[bgp.neighbor]]
  address = %q
  asn = %d
  hold_time = "3s"

  [[bgp.neighbor]]
  address = %q
  asn = %d
  hold_time = "3s"
`, lab.LBASN, lb.IPv4, bgpDrainTime, lab.NATRouterIPv4, lab.RouterASN, lab.NATRouterIPv6, lab.RouterASN)
}

func TestBGPAnnounceWithdrawDrain(t *testing.T) {
	e := bgpSetup(t, 2, speakerTOML)
	lbs := e.lab.LBs()
	lb1, lb2 := lbs[0], lbs[1]

	// Both VIPs, as host routes, via both instances (ECMP).
	e.waitHops("announced by both", lb1, lb2)
	var st v1.BGP
	e.ctl(lb1, &st, "bgp")
	if st.Mode != "speaker" || len(st.Announced) != 2 || len(st.Neighbors) != 2 {
		t.Errorf("ctl bgp on lb1 = %+v, want speaker mode announcing 2 VIPs to 2 neighbours", st)
	}
	for _, n := range st.Neighbors {
		if n.State != "established" || n.Advertised != 1 {
			t.Errorf("ctl bgp on lb1: neighbour %v state %q advertised %d, want established with 1 prefix", n.Address, n.State, n.Advertised)
		}
	}
	for _, v6 := range []bool{false, true} {
		if r := e.tcp(v6, 20); r.OK != 20 {
			t.Errorf("TCP through the router (IPv6 %v): %d of 20 ok, reasons %v", v6, r.OK, r.Reasons)
		}
	}

	// lb1's health checks fail (the servers drop them): lb1 withdraws
	// both VIPs, lb2 keeps them.
	for _, s := range e.lab.Servers() {
		rule := fmt.Sprintf("add table inet b1hc { chain in { type filter hook input priority 0; ip saddr %s tcp dport %s drop; ip6 saddr %s tcp dport %s drop; }; }",
			lb1.IPv4, port, lb1.IPv6, port)
		if out, err := e.lab.Exec(s.NS, "nft", rule); err != nil {
			t.Fatalf("nft on %s: %v: %s", s.Role, err, out)
		}
	}
	e.waitHops("lb1's servers down", lb2)
	e.ctl(lb1, &st, "bgp")
	if len(st.Announced) != 0 || len(st.Withdrawn) != 2 {
		t.Errorf("ctl bgp on lb1 with no healthy server: announced %v withdrawn %v, want none and both", st.Announced, st.Withdrawn)
	}
	for _, s := range e.lab.Servers() {
		if out, err := e.lab.Exec(s.NS, "nft", "delete table inet b1hc"); err != nil {
			t.Fatalf("nft on %s: %v: %s", s.Role, err, out)
		}
	}
	e.waitHops("lb1's servers back", lb1, lb2)

	// drain-node on lb2 withdraws its VIPs; undrain-node brings them back.
	e.ctl(lb2, &st, "drain-node")
	if !st.NodeDrained {
		t.Errorf("ctl drain-node on lb2 = %+v, want node_drained", st)
	}
	e.waitHops("lb2 drained", lb1)
	e.ctl(lb2, &st, "undrain-node")
	e.waitHops("lb2 undrained", lb1, lb2)

	// SIGTERM on lb1: it withdraws first, forwards for drain_time, then
	// exits 0; new connections all succeed throughout.
	before := e.newAssociations(lb1)
	if r := e.tcp(false, 40); r.OK != 40 {
		t.Fatalf("TCP before the stop: %d of 40 ok, reasons %v", r.OK, r.Reasons)
	}
	if e.newAssociations(lb1) == before {
		t.Fatalf("no connection went through lb1 before its stop (ECMP by ports): the stop would prove nothing")
	}
	stopped := make(chan error, 1)
	stopAt := time.Now()
	go func() { stopped <- e.ipf[0].Stop(bgpDrainTime + 10*time.Second) }()
	var total, ok int
	withdrawn := make(chan time.Duration, 1)
	go func() { withdrawn <- e.waitHops("lb1 stopping", lb2) }()
	var exited error
	for done := false; !done; {
		r := e.tcp(false, 10)
		total, ok = total+r.Conns, ok+r.OK
		if r.OK != r.Conns {
			t.Errorf("TCP during lb1's stop: %d of %d ok, reasons %v", r.OK, r.Conns, r.Reasons)
		}
		select {
		case exited = <-stopped:
			done = true
		default:
		}
	}
	took := <-withdrawn
	lasted := time.Since(stopAt)
	t.Logf("lb1 stop: routes withdrawn after %v, exited after %v; %d of %d new connections ok meanwhile",
		took.Round(time.Millisecond), lasted.Round(time.Millisecond), ok, total)
	if exited != nil {
		t.Errorf("ipfront on lb1 exit after SIGTERM: %v, want status 0", exited)
	}
	if took >= bgpDrainTime || lasted < bgpDrainTime {
		t.Errorf("lb1's routes withdrawn after %v, exit after %v: want withdrawn within drain_time %v, exit after it", took, lasted, bgpDrainTime)
	}
}

// lbBIRDConfig is BIRD on a load balancer exporting ipfront's kernel-mode
// routes (table 100) to the router: the configuration configs/bgp-kernel.toml
// documents.
func lbBIRDConfig(lb lab.Host) string {
	return fmt.Sprintf(`router id %s;
log stderr all;
protocol device { scan time 1; }
ipv4 table vips4;
ipv6 table vips6;
protocol kernel vips_k4 { kernel table 100; learn; scan time 1; ipv4 { table vips4; import all; export none; }; }
protocol kernel vips_k6 { kernel table 100; learn; scan time 1; ipv6 { table vips6; import all; export none; }; }
protocol bgp router4 {
  local as %d; neighbor %s as %d; connect delay time 1; connect retry time 1; hold time 3;
  ipv4 { table vips4; import none; export where net.len = 32; next hop self; };
}
protocol bgp router6 {
  local as %d; neighbor %s as %d; connect delay time 1; connect retry time 1; hold time 3;
  ipv6 { table vips6; import none; export where net.len = 128; next hop self; };
}
`, lb.IPv4, lab.LBASN, lab.NATRouterIPv4, lab.RouterASN, lab.LBASN, lab.NATRouterIPv6, lab.RouterASN)
}

// TestBGPKernelModeWithBIRD: in kernel mode ipfront keeps the VIPs as
// routes in table 100 and the host's own BIRD exports them: the router
// learns both VIPs via the instance, loses them on drain-node and gets
// them back, and loses them before the instance exits on SIGTERM.
func TestBGPKernelModeWithBIRD(t *testing.T) {
	e := bgpSetup(t, 1, func(lab.Host) string {
		return fmt.Sprintf("\n[bgp]\nasn = %d\nmode = \"kernel\"\nkernel_table = 100\ndrain_time = %q\n", lab.LBASN, bgpDrainTime)
	})
	lb := e.lab.LBs()[0]
	var mu sync.Mutex
	b, err := e.lab.StartBIRDOn(lb, t.TempDir(), lbBIRDConfig(lb), &lab.PrefixWriter{W: testLog{t}, Prefix: "bird-lb1 | ", Mu: &mu})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("bird on lb1: %v", err)
		}
	})
	e.waitHops("kernel mode: announced", lb)
	var st v1.BGP
	e.ctl(lb, &st, "bgp")
	if st.Mode != "kernel" || len(st.Announced) != 2 {
		t.Errorf("ctl bgp = %+v, want kernel mode announcing 2 VIPs", st)
	}
	if r := e.tcp(true, 10); r.OK != 10 {
		t.Errorf("TCP to the IPv6 VIP through the router: %d of 10 ok, reasons %v", r.OK, r.Reasons)
	}
	e.ctl(lb, &st, "drain-node")
	e.waitHops("kernel mode: drained")
	e.ctl(lb, &st, "undrain-node")
	e.waitHops("kernel mode: undrained", lb)

	stopped := make(chan error, 1)
	go func() { stopped <- e.ipf[0].Stop(bgpDrainTime + 10*time.Second) }()
	e.waitHops("kernel mode: stopping")
	select {
	case err := <-stopped:
		t.Fatalf("ipfront exited (%v) before the router lost its routes", err)
	default:
	}
	if err := <-stopped; err != nil {
		t.Errorf("ipfront exit after SIGTERM: %v, want status 0", err)
	}
}
