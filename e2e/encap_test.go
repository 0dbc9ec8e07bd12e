//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/internal/lab"
)

// IPIP and GUE end to end: ipfront encapsulates a set's traffic to servers
// on a subnet it has no interface on, the servers strip the outer headers
// with `ipfront decap` (the lab kernel has no ipip or fou) and answer the
// client directly (DSR), with real kernel sockets on both ends.
//
// The topology is the one-armed NAT lab, reshaped:
//
//	client -- router -- segment 198.51.100.0/24 (bridge) -- ipfront, s1, s2
//
// Each server's tunnel address (198.51.100.20N/32, 2001:db8:21::N/128, on
// its loopback, with the VIPs) is routed by the router to the server's
// segment address, and ipfront's namespace routes them via the router: the
// servers are "on another subnet", reached through a gateway whose MAC
// ipfront resolves from the kernel's routes. The servers' default route is
// the router, so their replies reach the client without ipfront (whose
// namespace does not forward anyway). The servers advertise a TCP MSS of
// 1400 (`advmss`), the documented way to keep the client's segments within
// the 1500-byte path once the outer headers are added.

// encapTunnel returns server i's (1-based) tunnel address of a family.
func encapTunnel(i int, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0x21, 15: byte(i)})
	}
	return netip.AddrFrom4([4]byte{198, 51, 100, byte(200 + i)})
}

// encapSetup builds the lab with two servers, starts "iplab serve" on each,
// attaches `ipfront decap` in mode, writes a configuration with one set of
// the mode on the VIP of the family (servers by their tunnel addresses of
// the same family), starts ipfront and waits until it is ready.
func encapSetup(t *testing.T, mode string, v6 bool) (*lab.NATLab, netip.Addr) {
	t.Helper()
	requireEnv(t)
	l, err := lab.NewNAT(lab.UniquePrefix("e2eenc"), 2, lab.NATOneArmed)
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, l)
	vip := l.VIP(v6)
	router := l.Router()
	var r strings.Builder
	lb := "link set lo up\n"
	for i, s := range l.Servers() {
		n := i + 1
		t4, t6 := encapTunnel(n, false), encapTunnel(n, true)
		fmt.Fprintf(&r, "route add %s/32 via %s\nroute add %s/128 via %s\n", t4, s.IPv4, t6, s.IPv6)
		cmds := fmt.Sprintf("addr add %s/32 dev lo\naddr add %s/128 dev lo\n", t4, t6)
		for _, v := range l.VIPs() {
			cmds += fmt.Sprintf("addr add %s/%d dev lo\n", v, v.BitLen())
		}
		// Replies go straight to the client through the router, with an
		// MSS that leaves room for the outer headers.
		cmds += fmt.Sprintf("route replace default via %s advmss 1400\nroute replace default via %s advmss 1380\n", lab.NATRouterIPv4, lab.NATRouterIPv6)
		batch(t, l, s.NS, cmds)
		if err := lab.Sysctl(s.NS, lab.DSRServerSysctls()); err != nil {
			t.Fatal(err)
		}
		args := []string{"decap", "attach", "--dev", s.Ifname, "--mode", mode}
		if out, err := l.Exec(s.NS, append([]string{ipfrontBin}, args...)...); err != nil {
			t.Fatalf("ipfront %s in %s: %v: %s", strings.Join(args, " "), s.Role, err, out)
		}
	}
	batch(t, l, router.NS, r.String())
	if err := lab.Sysctl(router.NS, [][2]string{{"net.ipv4.conf.all.send_redirects", "0"}}); err != nil {
		t.Fatal(err)
	}
	lb += fmt.Sprintf("route add %s via %s\nroute add %s via %s\n",
		netip.PrefixFrom(encapTunnel(0, false), 29), lab.NATRouterIPv4, netip.PrefixFrom(encapTunnel(0, true), 64), lab.NATRouterIPv6)
	batch(t, l, l.LB().NS, lb)

	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	logTo := testLogTo(t)
	startEchoServers(t, ctx, l.Lab, logTo, func(i int, _ lab.Host) netip.Addr { return encapTunnel(i+1, v6) })
	var b strings.Builder
	b.WriteString(dataplaneTOML(l.LBInterfaces()[:1], 65536))
	fmt.Fprintf(&b, `
[[target_set]]
name = "enc"
address = %q
protocols = ["tcp", "udp"]
ports = [%q]
forwarding = %q
encap_source = ["198.51.100.32/28", "2001:db8:e::/64"]
`, vip, ports, mode)
	for i, s := range l.Servers() {
		fmt.Fprintf(&b, "\n  [[target_set.server]]\n  name = %q\n  address = %q\n", s.Role, encapTunnel(i+1, v6))
	}
	startIpfront(t, ctx, l.Lab, writeTempConfig(t, "ipfront.toml", b.String()), logTo("ipfront"))
	return l, vip
}

// batch runs ip -batch cmds in ns.
func batch(t *testing.T, l *lab.NATLab, ns, cmds string) {
	t.Helper()
	cmd := l.Command(ns, "ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(cmds)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip -batch in %s: %v: %s\n%s", ns, err, out, cmds)
	}
}

var decapCounts = regexp.MustCompile(`decapsulated (\d+), passed (\d+), failed (\d+)`)

func TestEncapIPIPv4(t *testing.T) { testEncap(t, "ipip", false) }

func TestEncapGUEv6(t *testing.T) { testEncap(t, "gue", true) }

// testEncap sends 100 TCP connections of 64 KiB each (many full-size
// segments) and 20 UDP flows through the VIP: every byte echoed, both
// servers used, every server's decapsulation program busy, and ipfront
// dropped nothing.
func testEncap(t *testing.T, mode string, v6 bool) {
	l, vip := encapSetup(t, mode, v6)
	e := &env{lab: l.Lab, vip: vip}
	const conns = 100
	var r lab.TCPReport
	e.client(t, &r, "tcp", "--vip", vip.String(), "--port", port, "--conns", strconv.Itoa(conns),
		"--parallel", "8", "--bytes", "65536", "--timeout", "5s", "--sport", tcpSourcePort)
	if r.Conns != conns || r.OK != conns || r.Failed != 0 {
		t.Errorf("connections: %d ok, %d failed of %d, want all %d ok; reasons %v, first failures %+v",
			r.OK, r.Failed, r.Conns, conns, r.Reasons, r.Failures)
	}
	if want := int64(conns * 65536); r.BytesVerified != want {
		t.Errorf("bytes verified = %d, want %d", r.BytesVerified, want)
	}
	if len(r.Servers) != 2 {
		t.Errorf("connections by server %v, want both servers", r.Servers)
	}
	const flows, packets = 20, 10
	var u lab.UDPReport
	e.client(t, &u, "udp", "--vip", vip.String(), "--port", port,
		"--flows", strconv.Itoa(flows), "--packets", strconv.Itoa(packets), "--timeout", "1s")
	if u.Sent != flows*packets || u.Replies != flows*packets || u.Lost != 0 {
		t.Errorf("UDP: sent %d, replies %d, lost %d; want %d, %d, 0; errors %v", u.Sent, u.Replies, u.Lost, flows*packets, flows*packets, u.Errors)
	}
	for _, s := range l.Servers() {
		out, err := l.Exec(s.NS, ipfrontBin, "decap", "status", "--dev", s.Ifname)
		m := decapCounts.FindStringSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("ipfront decap status in %s: %v: %s", s.Role, err, out)
		}
		if n, _ := strconv.Atoi(m[1]); n == 0 || m[3] != "0" {
			t.Errorf("%s: %s; want frames decapsulated, none failed", s.Role, strings.TrimSpace(out))
		}
	}
	c := (&natEnv{lab: l, vip: vip}).natCounters(t)
	if c["dropped"] != float64(0) {
		t.Errorf("ipfront dropped %v frames (%v), want none", c["dropped"], c["drops"])
	}
}
