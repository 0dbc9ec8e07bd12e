package slowpath

import (
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/slowpath/config"
)

func parseSpec(t *testing.T, text string) *config.Spec {
	t.Helper()
	spec, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return spec
}

const twoSets = `
[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "web"
address = "192.0.2.10"
ports = ["80"]
  [[target_set.server]]
  address = "198.51.100.11"
  [[target_set.server]]
  address = "198.51.100.12"
  weight = 3
[[target_set]]
name = "diameter"
address = "2001:db8::10"
protocols = ["tcp", "sctp"]
ports = ["3868"]
  [[target_set.server]]
  address = "2001:db8::11"
`

func noMACs(int, netip.Addr) ([6]byte, bool) { return [6]byte{}, false }

func slotOf(t *testing.T, ts *fastpath.TargetSet, addr string) (int, fastpath.Server) {
	t.Helper()
	for i, s := range ts.Servers {
		if s.Present && s.Addr == netip.MustParseAddr(addr) {
			return i, s
		}
	}
	t.Fatalf("server %s not in set %q", addr, ts.Name)
	return -1, fastpath.Server{}
}

func setByName(t *testing.T, tb *fastpath.Tables, name string) *fastpath.TargetSet {
	t.Helper()
	for _, ts := range tb.Sets() {
		if ts.Name == name {
			return ts
		}
	}
	t.Fatalf("no set %q", name)
	return nil
}

func TestBuildTranslatesSpec(t *testing.T) {
	id := NewIdentity()
	mac := [6]byte{2, 0, 0, 0, 0, 0x11}
	macs := func(iface int, a netip.Addr) ([6]byte, bool) {
		return mac, iface == 0 && a == netip.MustParseAddr("198.51.100.11")
	}
	tb, err := Build(parseSpec(t, twoSets), id, Inputs{Interfaces: 1, MACs: macs, Generation: 7})
	if err != nil {
		t.Fatal(err)
	}
	if tb.Generation != 7 {
		t.Fatalf("Generation = %d, want 7", tb.Generation)
	}
	web := setByName(t, tb, "web")
	if web.VIP != netip.MustParseAddr("192.0.2.10").As16() || web.Protos != fastpath.ProtoBitTCP ||
		len(web.Ports) != 1 || web.Ports[0] != (fastpath.PortRange{First: 80, Last: 80}) || web.DeleteAge != 600 {
		t.Fatalf("web = VIP %v protos %b ports %v age %d", web.VIP, web.Protos, web.Ports, web.DeleteAge)
	}
	_, s11 := slotOf(t, web, "198.51.100.11")
	if !s11.HasMAC[0] || s11.MAC[0] != mac {
		t.Fatalf("server .11 MAC = %v %v, want resolved %v", s11.MAC[0], s11.HasMAC[0], mac)
	}
	if _, s12 := slotOf(t, web, "198.51.100.12"); s12.HasMAC[0] || s12.Weight != 3 {
		t.Fatalf("server .12 = %+v, want unresolved, weight 3", s12)
	}
	counts := web.Maglev.Counts()
	i11, _ := slotOf(t, web, "198.51.100.11")
	i12, _ := slotOf(t, web, "198.51.100.12")
	if got := float64(counts[i12]) / float64(counts[i11]+counts[i12]); got < 0.74 || got > 0.76 {
		t.Fatalf("weight-3 server owns %.3f of the Maglev table, want 0.75", got)
	}
	dia := setByName(t, tb, "diameter")
	if dia.Protos != fastpath.ProtoBitTCP|fastpath.ProtoBitSCTP {
		t.Fatalf("diameter protos = %b", dia.Protos)
	}
	if got := len(tb.VIPs()); got != 2 {
		t.Fatalf("VIPs() has %d addresses, want 2", got)
	}
}

func TestBuildKeepsIdentityAcrossReloads(t *testing.T) {
	id := NewIdentity()
	first, err := Build(parseSpec(t, twoSets), id, Inputs{Interfaces: 1, MACs: noMACs, Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	web1 := setByName(t, first, "web")
	dia1 := setByName(t, first, "diameter")
	slot12, s12 := slotOf(t, web1, "198.51.100.12")
	slot11, s11 := slotOf(t, web1, "198.51.100.11")

	// Reload: "web" moves after "diameter" in the file, .11 is removed, .13
	// is added, .12 changes weight.
	reloaded := `
[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "diameter"
address = "2001:db8::10"
protocols = ["tcp", "sctp"]
ports = ["3868"]
  [[target_set.server]]
  address = "2001:db8::11"
[[target_set]]
name = "web"
address = "192.0.2.10"
ports = ["80"]
  [[target_set.server]]
  address = "198.51.100.13"
  [[target_set.server]]
  address = "198.51.100.12"
  weight = 5
`
	second, err := Build(parseSpec(t, reloaded), id, Inputs{Interfaces: 1, MACs: noMACs, Generation: 2})
	if err != nil {
		t.Fatal(err)
	}
	web2 := setByName(t, second, "web")
	if web2.ID != web1.ID || setByName(t, second, "diameter").ID != dia1.ID {
		t.Fatalf("set ids changed on reorder: web %d->%d", web1.ID, web2.ID)
	}
	if slot, s := slotOf(t, web2, "198.51.100.12"); slot != slot12 || s.Gen != s12.Gen || s.Weight != 5 {
		t.Fatalf("surviving server moved: slot %d->%d gen %d->%d", slot12, slot, s12.Gen, s.Gen)
	}
	// The new server reuses the freed slot under a new generation, so
	// associations made for .11 cannot follow the slot to .13.
	slot13, s13 := slotOf(t, web2, "198.51.100.13")
	if slot13 != slot11 || s13.Gen == s11.Gen {
		t.Fatalf("new server: slot %d gen %d; removed one had slot %d gen %d", slot13, s13.Gen, slot11, s11.Gen)
	}
	if web2.Maglev.Counts()[slot12] == 0 || web2.Maglev.Counts()[slot13] == 0 {
		t.Fatal("Maglev table lost a server")
	}
}
