//go:build linux

package slowpath

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/internal/netnstest"
)

// TestNATRoutes resolves NAT egress from a real kernel: a namespace with a
// clients' interface (a0: an on-link client, a gateway to a routed client
// prefix) and a servers' interface (b0: a server on the subnet, one behind a
// gateway, one whose neighbour is unknown), neighbours set by hand.
func TestNATRoutes(t *testing.T) {
	lb, peer := netnstest.New(t, "nat-lb"), netnstest.New(t, "nat-peer")
	netnstest.Veth(t, lb, "a0", peer, "p0")
	netnstest.Veth(t, lb, "b0", peer, "q0")
	mac := func(last byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 0, last} }
	for _, c := range [][]string{
		{"addr", "add", "203.0.113.1/24", "dev", "a0"},
		{"addr", "add", "2001:db8:c1::1/64", "dev", "a0", "nodad"},
		{"addr", "add", "198.51.100.1/24", "dev", "b0"},
		{"addr", "add", "2001:db8:100::1/64", "dev", "b0", "nodad"},
		{"link", "set", "a0", "up"},
		{"link", "set", "b0", "up"},
		{"route", "add", "192.0.2.0/25", "via", "203.0.113.254", "dev", "a0"},
		{"route", "add", "192.0.2.200/32", "via", "198.51.100.254", "dev", "b0"},
		{"route", "add", "192.0.2.128/26", "nexthop", "via", "203.0.113.254", "dev", "a0", "nexthop", "via", "203.0.113.253", "dev", "a0"},
		{"neigh", "add", "203.0.113.254", "lladdr", mac(0xfe).String(), "dev", "a0", "nud", "permanent"},
		{"neigh", "add", "203.0.113.7", "lladdr", mac(7).String(), "dev", "a0", "nud", "permanent"},
		{"neigh", "add", "2001:db8:c1::7", "lladdr", mac(0x67).String(), "dev", "a0", "nud", "permanent"},
		{"neigh", "add", "198.51.100.11", "lladdr", mac(0x11).String(), "dev", "b0", "nud", "permanent"},
		{"neigh", "add", "198.51.100.254", "lladdr", mac(0xfb).String(), "dev", "b0", "nud", "permanent"},
		{"neigh", "add", "2001:db8:100::11", "lladdr", mac(0x61).String(), "dev", "b0", "nud", "permanent"},
	} {
		lb.Run(t, append([]string{"ip"}, c...)...)
	}
	peer.Run(t, "ip", "link", "set", "p0", "up")
	peer.Run(t, "ip", "link", "set", "q0", "up")
	a0, b0 := lb.Link(t, "a0"), lb.Link(t, "b0")

	r := NewNATRoutes()
	t.Cleanup(r.Close)
	servers := []netip.Addr{
		netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("192.0.2.200"),
		netip.MustParseAddr("198.51.100.12"), netip.MustParseAddr("2001:db8:100::11"),
	}
	var changed bool
	var missing int
	if err := lb.Do(func() error {
		changed, missing = r.Refresh([]int{a0.Index, b0.Index}, []string{"a0", "b0"}, servers)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !changed || missing != 1 {
		t.Errorf("Refresh() = %v, %d; want true, 1 (198.51.100.12 unresolved)", changed, missing)
	}
	for _, tc := range []struct {
		addr  string
		iface int
		mac   net.HardwareAddr
		ok    bool
	}{
		{"198.51.100.11", 1, mac(0x11), true},
		{"192.0.2.200", 1, mac(0xfb), true}, // its gateway's
		{"198.51.100.12", 0, nil, false},
		{"2001:db8:100::11", 1, mac(0x61), true},
	} {
		iface, m, ok := r.Hop(netip.MustParseAddr(tc.addr))
		if ok != tc.ok || ok && (iface != tc.iface || !equalMAC(m, tc.mac)) {
			t.Errorf("Hop(%s) = %d, %x, %v; want %d, %s, %v", tc.addr, iface, m, ok, tc.iface, tc.mac, tc.ok)
		}
	}
	rt := r.Routes().Load()
	if rt == nil {
		t.Fatal("no client routes published")
	}
	for _, tc := range []struct {
		addr       string
		mac        net.HardwareAddr
		routed, ok bool
	}{
		{"203.0.113.7", mac(7), true, true},         // on-link, known
		{"2001:db8:c1::7", mac(0x67), true, true},   // on-link IPv6
		{"192.0.2.5", mac(0xfe), true, true},        // through the gateway
		{"192.0.2.130", mac(0xfe), true, true},      // ECMP: the first next hop
		{"203.0.113.8", nil, true, false},           // on-link, not known yet
		{"198.51.100.77", nil, true, false},         // the servers' side, not known
		{"100.64.0.1", nil, false, false},           // no route (no default route here)
		{"2001:db8:ffff::1", nil, false, false},     // no route
		{"192.0.2.200", mac(0xfb), true, true},      // a host route is a route too
		{"203.0.113.254", mac(0xfe), true, true},    // the gateway itself, on-link
		{"2001:db8:100::11", mac(0x61), true, true}, // a neighbour on the servers' side
	} {
		a := fastpath.MappedPrefix(netip.PrefixFrom(netip.MustParseAddr(tc.addr), 32)).Addr().As16()
		if netip.MustParseAddr(tc.addr).Is6() {
			a = netip.MustParseAddr(tc.addr).As16()
		}
		hop, routed, ok := rt.Lookup(&a)
		if routed != tc.routed || ok != tc.ok || ok && !equalMAC(hop.MAC, tc.mac) {
			t.Errorf("Lookup(%s) = %x, routed %v, ok %v; want %s, %v, %v", tc.addr, hop.MAC, routed, ok, tc.mac, tc.routed, tc.ok)
		}
	}

	// Nothing changed: nothing to republish.
	if err := lb.Do(func() error {
		changed, _ = r.Refresh([]int{a0.Index, b0.Index}, []string{"a0", "b0"}, servers)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if changed {
		t.Error("second Refresh() reports a change")
	}

	// A new on-link client is routable without another Refresh: the
	// resolver watches the neighbour table.
	lb.Run(t, "ip", "neigh", "add", "203.0.113.8", "lladdr", mac(8).String(), "dev", "a0", "nud", "permanent")
	a := fastpath.MappedPrefix(netip.MustParsePrefix("203.0.113.8/32")).Addr().As16()
	netnstest.WaitFor(t, 10*time.Second, "the new neighbour routable", func() error {
		if _, _, ok := r.Routes().Load().Lookup(&a); !ok {
			return errors.New("203.0.113.8 not routable yet")
		}
		return nil
	})
}

func equalMAC(a [6]byte, b net.HardwareAddr) bool { return len(b) == 6 && [6]byte(b) == a }

// fakeNAT is a NATResolver with fixed hops.
type fakeNAT struct {
	hops map[netip.Addr]natHop
	cell *fastpath.RouteCell
}

func (f *fakeNAT) Refresh([]int, []string, []netip.Addr) (bool, int) { return false, 0 }
func (f *fakeNAT) Hop(a netip.Addr) (int, [6]byte, bool) {
	h, ok := f.hops[a]
	return h.iface, h.mac, ok
}
func (f *fakeNAT) Routes() *fastpath.RouteCell { return f.cell }
func (f *fakeNAT) Close()                      {}

// TestBuildNAT: a NAT set's servers leave by the interface and next hop the
// resolver found, reachable from every interface (the frame is handed over);
// one the resolver does not know is unresolved everywhere; the tables carry
// the resolver's route cell; a DSR set beside it is untouched.
func TestBuildNAT(t *testing.T) {
	spec := parseSpec(t, `
[dataplane]
interfaces = ["eth0", "eth1"]
[[target_set]]
name = "nat"
address = "192.0.2.10"
ports = ["80"]
forwarding = "nat"
  [[target_set.server]]
  address = "198.51.100.11"
  [[target_set.server]]
  address = "198.51.100.12"
[[target_set]]
name = "dsr"
address = "192.0.2.20"
ports = ["80"]
  [[target_set.server]]
  address = "198.51.100.13"
`)
	nat := &fakeNAT{hops: map[netip.Addr]natHop{netip.MustParseAddr("198.51.100.11"): {iface: 1, mac: [6]byte{2, 0, 0, 0, 0, 0x11}}},
		cell: new(fastpath.RouteCell)}
	dsrMAC := [6]byte{2, 0, 0, 0, 0, 0x13}
	macs := func(iface int, a netip.Addr) ([6]byte, bool) { return dsrMAC, iface == 0 }
	tb, _, err := Build(spec, NewIdentity(), Inputs{Interfaces: 2, MACs: macs, Generation: 1, NAT: nat})
	if err != nil {
		t.Fatal(err)
	}
	if tb.Routes != nat.cell {
		t.Error("tables do not carry the resolver's route cell")
	}
	ns := setByName(t, tb, "nat")
	if ns.Forwarding != fastpath.FwdNAT {
		t.Errorf("nat set Forwarding = %d, want FwdNAT", ns.Forwarding)
	}
	_, s11 := slotOf(t, ns, "198.51.100.11")
	if s11.Egress != 1 || !s11.HasMAC[0] || !s11.HasMAC[1] || s11.MAC[1] != nat.hops[s11.Addr].mac {
		t.Errorf("resolved NAT server: Egress %d, HasMAC %v, MAC[1] %x; want 1, both, %x", s11.Egress, s11.HasMAC[:2], s11.MAC[1], nat.hops[s11.Addr].mac)
	}
	if _, s12 := slotOf(t, ns, "198.51.100.12"); s12.HasMAC[0] || s12.HasMAC[1] {
		t.Errorf("unresolved NAT server: HasMAC %v, want none", s12.HasMAC[:2])
	}
	ds := setByName(t, tb, "dsr")
	if _, s13 := slotOf(t, ds, "198.51.100.13"); ds.Forwarding != fastpath.FwdDSR || !s13.HasMAC[0] || s13.HasMAC[1] || s13.Egress != 0 {
		t.Errorf("DSR set: Forwarding %d, HasMAC %v, Egress %d; want DSR, the neighbour table's, 0", ds.Forwarding, s13.HasMAC[:2], s13.Egress)
	}
	dsr, natAddrs := splitServers(spec)
	if len(dsr) != 1 || dsr[0] != netip.MustParseAddr("198.51.100.13") || len(natAddrs) != 2 {
		t.Errorf("splitServers = %v, %v; want the DSR server, then the two NAT servers", dsr, natAddrs)
	}
}
