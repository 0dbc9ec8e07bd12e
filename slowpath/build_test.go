package slowpath

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
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
	tb, _, err := Build(parseSpec(t, twoSets), id, Inputs{Interfaces: 1, MACs: macs, Generation: 7})
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
	all := func(int, netip.Addr) ([6]byte, bool) { return mac, true }
	tbAll, _, err := Build(parseSpec(t, twoSets), NewIdentity(), Inputs{Interfaces: 1, MACs: all, Generation: 7})
	if err != nil {
		t.Fatal(err)
	}
	webAll := setByName(t, tbAll, "web")
	counts := webAll.Maglev.Counts()
	i11, _ := slotOf(t, webAll, "198.51.100.11")
	i12, _ := slotOf(t, webAll, "198.51.100.12")
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
	first, id1, err := Build(parseSpec(t, twoSets), id, Inputs{Interfaces: 1, MACs: noMACs, Generation: 1})
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
	second, _, err := Build(parseSpec(t, reloaded), id1, Inputs{Interfaces: 1, MACs: noMACs, Generation: 2})
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

// gens returns the generation of every present server of every set, by
// set name and address.
func gens(tb *fastpath.Tables) map[string]uint32 {
	out := map[string]uint32{}
	for _, ts := range tb.Sets() {
		for _, s := range ts.Servers {
			if s.Present {
				out[ts.Name+"/"+s.Addr.String()] = s.Gen
			}
		}
	}
	return out
}

// Issue 7 (a): a build that fails after renumbering a set's slots leaves
// the numbering as it was, so the next successful build gives every server
// back its slot and generation and no old association follows a slot to
// another server.
func TestBuildFailureChangesNoNumbering(t *testing.T) {
	id := NewIdentity()
	first, id1, err := Build(parseSpec(t, twoSets), id, Inputs{Interfaces: 1, MACs: noMACs, Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	// "web" loses .11 and gains .13 (a renumbering), then "diameter" fails
	// to build: its Maglev table size is not prime.
	broken := parseSpec(t, `
[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "web"
address = "192.0.2.10"
ports = ["80"]
  [[target_set.server]]
  address = "198.51.100.13"
  [[target_set.server]]
  address = "198.51.100.12"
[[target_set]]
name = "diameter"
address = "2001:db8::10"
ports = ["3868"]
  [[target_set.server]]
  address = "2001:db8::11"
[[target_set]]
name = "new"
address = "192.0.2.20"
ports = ["80"]
  [[target_set.server]]
  address = "198.51.100.21"
`)
	broken.TargetSets[1].TableSize = 1000
	if _, next, err := Build(broken, id1, Inputs{Interfaces: 1, MACs: noMACs, Generation: 2}); err == nil || next != nil {
		t.Fatalf("Build(non-prime table size) = %v, %v; want an error and no numbering", next, err)
	}
	again, _, err := Build(parseSpec(t, twoSets), id1, Inputs{Interfaces: 1, MACs: noMACs, Generation: 3})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"web", "diameter"} {
		before, after := setByName(t, first, name), setByName(t, again, name)
		if before.ID != after.ID {
			t.Errorf("set %q id = %d after a failed build, want %d", name, after.ID, before.ID)
		}
		for i := range before.Servers {
			b, a := before.Servers[i], after.Servers[i]
			if b.Present != a.Present || b.Addr != a.Addr || b.Gen != a.Gen {
				t.Errorf("set %q slot %d = %v gen %d after a failed build, want %v gen %d", name, i, a.Addr, a.Gen, b.Addr, b.Gen)
			}
		}
	}
	// The numbering Build was given is never changed, even by a success.
	if len(id.setIDs) != 0 || id.lastGen != 0 {
		t.Fatalf("Build changed the Identity it was given: %d set ids, last generation %d", len(id.setIDs), id.lastGen)
	}
}

// Issue 7 (b): a set removed and another added in one reload do not share
// an id, and no server generation is ever handed out twice, so the new set
// adopts neither the old one's associations nor its counters.
func TestBuildRemovedSetIDQuarantined(t *testing.T) {
	one := func(name, vip, server string) string {
		return `
[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "` + name + `"
address = "` + vip + `"
ports = ["80"]
delete_age = "30s"
  [[target_set.server]]
  address = "` + server + `"
`
	}
	t0 := time.Unix(1_000_000, 0)
	first, id, err := Build(parseSpec(t, one("old", "192.0.2.10", "198.51.100.11")), NewIdentity(), Inputs{Interfaces: 1, MACs: noMACs, Generation: 1, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	old := setByName(t, first, "old")
	second, id, err := Build(parseSpec(t, one("new", "192.0.2.20", "198.51.100.11")), id, Inputs{Interfaces: 1, MACs: noMACs, Generation: 2, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	nw := setByName(t, second, "new")
	if nw.ID == old.ID {
		t.Fatalf("new set got id %d, the id of the set removed in the same reload", nw.ID)
	}
	if nw.Servers[0].Gen == old.Servers[0].Gen {
		t.Fatalf("new set's server got generation %d, the generation of the removed set's server", nw.Servers[0].Gen)
	}

}

// manySets returns a spec of the named sets on one VIP, one port each.
func manySets(t *testing.T, names ...string) *config.Spec {
	t.Helper()
	var b strings.Builder
	b.WriteString("[dataplane]\ninterfaces = [\"eth1\"]\n")
	for i, n := range names {
		fmt.Fprintf(&b, "[[target_set]]\nname = %q\naddress = \"192.0.2.10\"\nports = [\"%d\"]\ndelete_age = \"30s\"\ntable_size = 251\n", n, 1000+i)
		b.WriteString("  [[target_set.server]]\n  address = \"198.51.100.11\"\n")
	}
	return parseSpec(t, b.String())
}

// Once every id has been used, a new set waits for a removed set's id until
// that set's associations are stale: its delete age, plus a second of clock
// granularity.
func TestBuildQuarantineLastsDeleteAge(t *testing.T) {
	names := make([]string, fastpath.MaxSets)
	for i := range names {
		names[i] = fmt.Sprintf("s%d", i)
	}
	t0 := time.Unix(1_000_000, 0)
	first, id, err := Build(manySets(t, names...), NewIdentity(), Inputs{Interfaces: 1, MACs: noMACs, Generation: 1, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	removed := setByName(t, first, "s255").ID
	// The reload at t0 removes s255; the next ones add "late".
	_, id, err = Build(manySets(t, names[:255]...), id, Inputs{Interfaces: 1, MACs: noMACs, Generation: 2, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	reloaded := manySets(t, append(names[:255:255], "late")...)
	if _, next, err := Build(reloaded, id, Inputs{Interfaces: 1, MACs: noMACs, Generation: 3, Now: t0.Add(30 * time.Second)}); !errors.Is(err, ErrNumbering) || next != nil {
		t.Fatalf("Build within the removed set's quarantine = %v, want ErrNumbering", err)
	}
	second, _, err := Build(reloaded, id, Inputs{Interfaces: 1, MACs: noMACs, Generation: 3, Now: t0.Add(31 * time.Second)})
	if err != nil {
		t.Fatalf("Build after the quarantine: %v", err)
	}
	if got := setByName(t, second, "late").ID; got != removed {
		t.Fatalf("new set id = %d, want the only free one, %d", got, removed)
	}
}

// Every slot assignment draws a new generation from one counter, whatever
// the set: no two servers ever share one, and 0 is never used.
func TestBuildGenerationsDaemonWide(t *testing.T) {
	id := NewIdentity()
	seen := map[uint32]string{}
	specs := []string{twoSets, `
[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "web"
address = "192.0.2.10"
ports = ["80"]
  [[target_set.server]]
  address = "198.51.100.14"
[[target_set]]
name = "diameter"
address = "2001:db8::10"
ports = ["3868"]
  [[target_set.server]]
  address = "2001:db8::12"
`, twoSets}
	for i, text := range specs {
		tb, next, err := Build(parseSpec(t, text), id, Inputs{Interfaces: 1, MACs: noMACs, Generation: uint64(i + 1)})
		if err != nil {
			t.Fatal(err)
		}
		for who, g := range gens(tb) {
			if g == 0 {
				t.Fatalf("build %d: %s has generation 0", i, who)
			}
			if prev, ok := seen[g]; ok && prev != who {
				t.Fatalf("build %d: generation %d given to %s, already given to %s", i, g, who, prev)
			}
			seen[g] = who
		}
		id = next
	}
}

// When the counter wraps, generations present servers hold are skipped.
func TestBuildGenerationWrapSkipsInUse(t *testing.T) {
	_, id, err := Build(parseSpec(t, twoSets), NewIdentity(), Inputs{Interfaces: 1, MACs: noMACs, Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	id.lastGen = maxGen // the next draw wraps to 1, which web's first server holds
	tb, _, err := Build(parseSpec(t, strings.Replace(twoSets, "198.51.100.12", "198.51.100.13", 1)), id,
		Inputs{Interfaces: 1, MACs: noMACs, Generation: 2})
	if err != nil {
		t.Fatal(err)
	}
	held := gens(tb)
	if got := held["web/198.51.100.13"]; got == held["web/198.51.100.11"] || got == held["diameter/2001:db8::11"] || got == 0 {
		t.Fatalf("after the wrap the new server got generation %d; in use: %v", got, held)
	}
}

// Issue 10: tagged VIP frames pass only on the VLANs [dataplane] vlans
// lists; without the key every tagged VIP frame is dropped and counted.
func TestBuildVLANPolicy(t *testing.T) {
	mac := func(int, netip.Addr) ([6]byte, bool) { return [6]byte{2, 0, 0, 0, 0, 1}, true }
	for _, tc := range []struct {
		conf string
		pass map[uint16]bool
	}{
		{twoSets, map[uint16]bool{0: true, 100: false}},
		{strings.Replace(twoSets, "[dataplane]\n", "[dataplane]\nvlans = [100, 200]\n", 1), map[uint16]bool{0: true, 100: true, 200: true, 300: false}},
	} {
		tab, _, err := Build(parseSpec(t, tc.conf), NewIdentity(), Inputs{Interfaces: 1, MACs: mac, Generation: 1})
		if err != nil {
			t.Fatal(err)
		}
		for vlan, want := range tc.pass {
			shard, err := assoc.NewShard(16)
			if err != nil {
				t.Fatal(err)
			}
			e := fastpath.NewEngine(shard, 0, [6]byte{2, 0, 0, 0, 0, 2})
			e.SetTables(tab)
			frame := make([]byte, 128)
			n, err := packet.Encode(frame, &packet.FrameSpec{SrcMAC: [6]byte{2, 0, 0, 0, 0, 3}, DstMAC: [6]byte{2, 0, 0, 0, 0, 2},
				Src: netip.MustParseAddr("203.0.113.7"), Dst: netip.MustParseAddr("192.0.2.10"), Proto: packet.ProtoTCP,
				SrcPort: 4000, DstPort: 80, TCPFlags: packet.TCPFlagSYN, VLAN: vlan})
			if err != nil {
				t.Fatal(err)
			}
			acts := make([]fastpath.Action, 1)
			e.Process([][]byte{frame[:n]}, acts, 1)
			e.Publish()
			var c fastpath.Counters
			e.Snapshot(&c)
			if got := acts[0] == fastpath.Transmit; got != want {
				t.Errorf("vlans line %q, frame on VLAN %d: forwarded %v, want %v (drops %v)", vlanLine(tc.conf), vlan, got, want, c.Drops)
			}
			if dropped := c.Drops[fastpath.DropVLANNotConfigured] == 1; dropped == want {
				t.Errorf("VLAN %d: vlan_not_configured counted %v, want %v", vlan, dropped, !want)
			}
		}
	}
}

// vlanLine is the vlans line of a config, for messages.
func vlanLine(conf string) string {
	for _, l := range strings.Split(conf, "\n") {
		if strings.HasPrefix(l, "vlans") {
			return l
		}
	}
	return "(none)"
}

// TestBuildHoldsUnresolvedServers: a server whose MAC is not resolved yet
// takes no share of the Maglev table while another server's is (a reload
// that adds it would otherwise send it new flows to drop as
// neighbor_unresolved); with no server resolved (at start) the weights stand.
func TestBuildHoldsUnresolvedServers(t *testing.T) {
	mac := [6]byte{2, 0, 0, 0, 0, 0x11}
	share := func(resolved map[string]bool) float64 {
		t.Helper()
		macs := func(_ int, a netip.Addr) ([6]byte, bool) { return mac, resolved[a.String()] }
		tb, _, err := Build(parseSpec(t, twoSets), NewIdentity(), Inputs{Interfaces: 1, MACs: macs, Generation: 1})
		if err != nil {
			t.Fatal(err)
		}
		web := setByName(t, tb, "web")
		i11, _ := slotOf(t, web, "198.51.100.11")
		i12, _ := slotOf(t, web, "198.51.100.12")
		c := web.Maglev.Counts()
		return float64(c[i12]) / float64(c[i11]+c[i12])
	}
	if got := share(map[string]bool{"198.51.100.11": true}); got != 0 {
		t.Errorf("unresolved weight-3 server beside a resolved one owns %.3f of the table, want 0", got)
	}
	if got := share(map[string]bool{}); got < 0.74 || got > 0.76 {
		t.Errorf("nothing resolved: the weight-3 server owns %.3f, want 0.75 (weights stand)", got)
	}
}
