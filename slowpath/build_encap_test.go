package slowpath

import (
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath"
)

// TestBuildEncap: IPIP and GUE sets reach their servers by the resolver's
// routes, as NAT does (interface and next hop, from every interface), carry
// their outer source prefixes, GUE port and MTU into the tables, and their
// servers are resolved by routes, not as on-link DSR neighbours.
func TestBuildEncap(t *testing.T) {
	spec := parseSpec(t, `
[dataplane]
interfaces = ["eth0", "eth1"]
[[target_set]]
name = "ipip"
address = "192.0.2.10"
ports = ["80"]
forwarding = "ipip"
encap_source = ["198.51.100.0/24", "2001:db8:e::/64"]
  [[target_set.server]]
  address = "203.0.113.21"
  [[target_set.server]]
  address = "2001:db8:21::21"
[[target_set]]
name = "gue"
address = "2001:db8::10"
ports = ["443"]
forwarding = "gue"
gue_port = 5555
encap_mtu = 9000
encap_source = ["2001:db8:e::7/128"]
  [[target_set.server]]
  address = "2001:db8:21::22"
`)
	mac := func(b byte) [6]byte { return [6]byte{2, 0, 0, 0, 0, b} }
	nat := &fakeNAT{hops: map[netip.Addr]natHop{
		netip.MustParseAddr("203.0.113.21"):    {iface: 1, mac: mac(1)},
		netip.MustParseAddr("2001:db8:21::21"): {iface: 0, mac: mac(2)},
		netip.MustParseAddr("2001:db8:21::22"): {iface: 1, mac: mac(3)},
	}, cell: new(fastpath.RouteCell)}
	macs := func(int, netip.Addr) ([6]byte, bool) { return mac(0xee), true } // the neighbour table must not be asked
	tb, _, err := Build(spec, NewIdentity(), Inputs{Interfaces: 2, MACs: macs, Generation: 1, NAT: nat})
	if err != nil {
		t.Fatal(err)
	}
	ip := setByName(t, tb, "ipip")
	if ip.Forwarding != fastpath.FwdIPIP {
		t.Errorf("ipip set Forwarding = %d, want FwdIPIP", ip.Forwarding)
	}
	for _, a := range []string{"203.0.113.21", "2001:db8:21::21"} {
		_, s := slotOf(t, ip, a)
		h := nat.hops[s.Addr]
		if int(s.Egress) != h.iface || !s.HasMAC[0] || !s.HasMAC[1] || s.MAC[h.iface] != h.mac {
			t.Errorf("server %s: Egress %d, HasMAC %v, MAC %x; want %d, both, %x", a, s.Egress, s.HasMAC[:2], s.MAC[s.Egress], h.iface, h.mac)
		}
	}
	if src := ip.Encap.Src4.Pick(0x1234); netip.AddrFrom16(src).Unmap() != netip.MustParseAddr("198.51.100.52") {
		t.Errorf("ipip Src4.Pick(0x1234) = %v, want 198.51.100.52 (host bits of the hash)", netip.AddrFrom16(src).Unmap())
	}
	if !ip.Encap.Src6.IsValid() || ip.Encap.Port != 0 || ip.Encap.MTU != 1500 {
		t.Errorf("ipip Encap: Src6 valid %v, Port %d, MTU %d; want true, 0, 1500", ip.Encap.Src6.IsValid(), ip.Encap.Port, ip.Encap.MTU)
	}
	g := setByName(t, tb, "gue")
	if g.Forwarding != fastpath.FwdGUE || g.Encap.Port != 5555 || g.Encap.MTU != 9000 || g.Encap.Src4.IsValid() {
		t.Errorf("gue set: Forwarding %d, Port %d, MTU %d, Src4 valid %v; want FwdGUE, 5555, 9000, false",
			g.Forwarding, g.Encap.Port, g.Encap.MTU, g.Encap.Src4.IsValid())
	}
	if src := g.Encap.Src6.Pick(0xffff); netip.AddrFrom16(src) != netip.MustParseAddr("2001:db8:e::7") {
		t.Errorf("gue Src6.Pick = %v, want the one address of a /128", netip.AddrFrom16(src))
	}
	if tb.Routes != nil {
		t.Error("tables without a NAT set carry client routes")
	}
	dsr, routed := splitServers(spec)
	if len(dsr) != 0 || len(routed) != 3 {
		t.Errorf("splitServers = %v, %v; want no DSR server, the three encapsulated ones routed", dsr, routed)
	}
}
