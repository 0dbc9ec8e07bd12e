package slowpath

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/ipfront/ipfront/fastpath"
)

const signallingSet = `
[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "dra"
address = "192.0.2.10"
secondary_address = "192.0.2.11"
protocols = ["tcp", "sctp"]
ports = ["3868"]
diameter = true
mode = "initiator_responder"
  [[target_set.server]]
  address = "198.51.100.11"
  owned_ports = ["40000-40099"]
  [[target_set.server]]
  address = "198.51.100.12"
  owned_ports = ["40100-40199"]
`

// TestBuildSignalling: the secondary address, diameter and the owned ranges
// of an initiating set reach the fast path's set; the secondary address is
// steered like the VIP; the tag index is on unless the test hook says.
func TestBuildSignalling(t *testing.T) {
	tb, _, err := Build(parseSpec(t, signallingSet), NewIdentity(), Inputs{Interfaces: 1, MACs: noMACs, Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	ts := setByName(t, tb, "dra")
	if !ts.HasSecondary || ts.SecondaryVIP != netip.MustParseAddr("192.0.2.11").As16() || !ts.Diameter || ts.NoTagIndex {
		t.Errorf("Build(dra) = secondary %v (%v), diameter %v, no tag index %v; want 192.0.2.11, true, false",
			netip.AddrFrom16(ts.SecondaryVIP).Unmap(), ts.HasSecondary, ts.Diameter, ts.NoTagIndex)
	}
	s11, _ := slotOf(t, ts, "198.51.100.11")
	s12, _ := slotOf(t, ts, "198.51.100.12")
	want := []fastpath.OwnedRange{{First: 40000, Last: 40099, Slot: uint8(s11)}, {First: 40100, Last: 40199, Slot: uint8(s12)}}
	if !slices.Equal(ts.Owned, want) {
		t.Errorf("Build(dra).Owned = %v, want %v", ts.Owned, want)
	}
	vips := tb.VIPs()
	for _, a := range []string{"192.0.2.10", "192.0.2.11"} {
		if !slices.Contains(vips, netip.MustParseAddr(a)) {
			t.Errorf("VIPs() = %v, want %s among them", vips, a)
		}
	}
}
