package slowpath

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/slowpath/config"
)

// persistSets: "ctl" persistent on its own, "tcp" and "udp" in group "cd",
// "plain" without persistence; servers .11 and .12 in every set, .13 only
// in "plain". %s is replaced by extra TOML (more sets, say) before the
// group.
const persistSets = `
[dataplane]
interfaces = ["eth1"]
%s
[[target_set]]
name = "ctl"
address = "192.0.2.10"
ports = ["22"]
persistence = "client"
persistence_timeout = "15m"
persistence_ipv4_prefix = 24
persistence_ipv6_prefix = 64
server = [{ address = "198.51.100.11" }, { address = "198.51.100.12" }]
[[target_set]]
name = "tcp"
address = "192.0.2.11"
ports = ["1364"]
server = [{ address = "198.51.100.12" }, { address = "198.51.100.11" }]
[[target_set]]
name = "udp"
address = "192.0.2.11"
protocols = ["udp"]
ports = ["33001-33099"]
  [[target_set.server]]
  address = "198.51.100.11"
  owned_ports = ["33050-33099"]
  [[target_set.server]]
  address = "198.51.100.12"
  owned_ports = ["33001-33010", "33020"]
[[target_set]]
name = "plain"
address = "192.0.2.12"
ports = ["80"]
server = [{ address = "198.51.100.13" }, { address = "198.51.100.12" }, { address = "198.51.100.11" }]
[[persistence_group]]
name = "cd"
target_sets = ["tcp", "udp"]
timeout = "20m"
ipv4_prefix = 32
`

func persistSpec(t *testing.T, extra string) *config.Spec {
	t.Helper()
	return parseSpec(t, strings.Replace(persistSets, "%s", extra, 1))
}

// TestBuildPersistence: a persistent set gets a group of its own, the
// members of a [[persistence_group]] one group between them, each with the
// timeout in seconds and the prefix lengths; a set without persistence
// gets none. Owned ranges name the owner's slot, in port order.
func TestBuildPersistence(t *testing.T) {
	tb, _, err := Build(persistSpec(t, ""), NewIdentity(), Inputs{Interfaces: 1, MACs: noMACs, Generation: 1, Now: time.Unix(1_000_000, 0)})
	if err != nil {
		t.Fatal(err)
	}
	ctl, tcp, udp, plain := setByName(t, tb, "ctl"), setByName(t, tb, "tcp"), setByName(t, tb, "udp"), setByName(t, tb, "plain")
	if p := ctl.Persist; p == nil || p.Timeout != 900 || p.V4Bits != 24 || p.V6Bits != 64 {
		t.Errorf("ctl.Persist = %+v, want timeout 900, prefixes 24 and 64", p)
	}
	for _, ts := range []*fastpath.TargetSet{tcp, udp} {
		if p := ts.Persist; p == nil || p.Timeout != 1200 || p.V4Bits != 32 || p.V6Bits != 128 {
			t.Errorf("%s.Persist = %+v, want the group's timeout 1200, prefixes 32 and 128", ts.Name, p)
		}
	}
	if tcp.Persist != nil && udp.Persist != nil && ctl.Persist != nil {
		if tcp.Persist.Group != udp.Persist.Group {
			t.Errorf("group ids of tcp %d and udp %d differ, want one group", tcp.Persist.Group, udp.Persist.Group)
		}
		if ctl.Persist.Group == tcp.Persist.Group {
			t.Errorf("ctl shares group id %d with the group cd", ctl.Persist.Group)
		}
	}
	if plain.Persist != nil {
		t.Errorf("plain.Persist = %+v, want nil", plain.Persist)
	}
	s11, _ := slotOf(t, udp, "198.51.100.11")
	s12, _ := slotOf(t, udp, "198.51.100.12")
	want := []fastpath.OwnedRange{{First: 33001, Last: 33010, Slot: uint8(s12)}, {First: 33020, Last: 33020, Slot: uint8(s12)},
		{First: 33050, Last: 33099, Slot: uint8(s11)}}
	if fmt.Sprint(udp.Owned) != fmt.Sprint(want) {
		t.Errorf("udp.Owned = %v, want %v", udp.Owned, want)
	}
	if len(tcp.Owned) != 0 {
		t.Errorf("tcp.Owned = %v, want none", tcp.Owned)
	}
}

// TestBuildAddrIDs: a server address has one nonzero id in every set
// whatever its slot, different addresses differ, and the id survives
// reloads that remove the address and bring it back in another slot.
func TestBuildAddrIDs(t *testing.T) {
	in := Inputs{Interfaces: 1, MACs: noMACs, Generation: 1, Now: time.Unix(1_000_000, 0)}
	tb, id, err := Build(persistSpec(t, ""), NewIdentity(), in)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]uint32{}
	for _, ts := range tb.Sets() {
		for _, s := range ts.Servers {
			if !s.Present {
				continue
			}
			if s.AddrID == 0 {
				t.Errorf("set %s server %s: AddrID 0, want nonzero", ts.Name, s.Addr)
			}
			if prev, ok := ids[s.Addr.String()]; ok && prev != s.AddrID {
				t.Errorf("server %s: AddrID %d in set %s, %d in another", s.Addr, s.AddrID, ts.Name, prev)
			}
			ids[s.Addr.String()] = s.AddrID
		}
	}
	if len(ids) != 3 || ids["198.51.100.11"] == ids["198.51.100.12"] || ids["198.51.100.12"] == ids["198.51.100.13"] ||
		ids["198.51.100.11"] == ids["198.51.100.13"] {
		t.Errorf("address ids %v, want three distinct ones", ids)
	}

	// .11 leaves every set, then returns to "plain" in another slot.
	without := strings.NewReplacer(`{ address = "198.51.100.11" }, `, "", `, { address = "198.51.100.11" }`, "").Replace(persistSets)
	without = strings.Replace(without, "  [[target_set.server]]\n  address = \"198.51.100.11\"\n  owned_ports = [\"33050-33099\"]\n", "", 1)
	without = strings.Replace(without, "%s", "", 1)
	if strings.Contains(without, "198.51.100.11") {
		t.Fatalf("test spec still has .11:\n%s", without)
	}
	in.Generation++
	if _, id, err = Build(parseSpec(t, without), id, in); err != nil {
		t.Fatal(err)
	}
	back := strings.Replace(strings.Replace(persistSets, "%s", "", 1),
		`server = [{ address = "198.51.100.13" }, { address = "198.51.100.12" }, { address = "198.51.100.11" }]`,
		`server = [{ address = "198.51.100.11" }, { address = "198.51.100.13" }, { address = "198.51.100.12" }]`, 1)
	in.Generation++
	tb, _, err = Build(parseSpec(t, back), id, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, ts := range tb.Sets() {
		for _, s := range ts.Servers {
			if s.Present && s.AddrID != ids[s.Addr.String()] {
				t.Errorf("after the reloads, set %s server %s: AddrID %d, want %d as before", ts.Name, s.Addr, s.AddrID, ids[s.Addr.String()])
			}
		}
	}
}

// TestBuildGroupIDsStable: group ids survive reloads that add sets before
// the groups' members; a set leaving its group gets a group of its own, and
// neither it nor a new group takes the id of the group it left.
func TestBuildGroupIDsStable(t *testing.T) {
	in := Inputs{Interfaces: 1, MACs: noMACs, Generation: 1, Now: time.Unix(1_000_000, 0)}
	tb, id, err := Build(persistSpec(t, ""), NewIdentity(), in)
	if err != nil {
		t.Fatal(err)
	}
	ctl, cd := setByName(t, tb, "ctl").Persist.Group, setByName(t, tb, "tcp").Persist.Group

	extra := `[[target_set]]
name = "first"
address = "192.0.2.13"
ports = ["80"]
persistence = "client"
server = [{ address = "198.51.100.11" }]`
	in.Generation++
	tb, id, err = Build(persistSpec(t, extra), id, in)
	if err != nil {
		t.Fatal(err)
	}
	first := setByName(t, tb, "first").Persist.Group
	if g := setByName(t, tb, "ctl").Persist.Group; g != ctl {
		t.Errorf("ctl group id %d after a reload, want %d", g, ctl)
	}
	if g := setByName(t, tb, "udp").Persist.Group; g != cd {
		t.Errorf("udp group id %d after a reload, want %d", g, cd)
	}
	if first == ctl || first == cd {
		t.Errorf("new set's group id %d is one of the existing groups' (%d, %d)", first, ctl, cd)
	}

	// "udp" leaves group cd, which keeps "tcp" alone.
	alone := strings.Replace(persistSpecText(extra), `target_sets = ["tcp", "udp"]`, `target_sets = ["tcp"]`, 1)
	alone = strings.Replace(alone, "protocols = [\"udp\"]\n", "protocols = [\"udp\"]\npersistence = \"client\"\n", 1)
	in.Generation++
	tb, _, err = Build(parseSpec(t, alone), id, in)
	if err != nil {
		t.Fatal(err)
	}
	if g := setByName(t, tb, "tcp").Persist.Group; g != cd {
		t.Errorf("tcp group id %d, want %d (its group remains)", g, cd)
	}
	if g := setByName(t, tb, "udp").Persist.Group; g == cd || g == ctl || g == first {
		t.Errorf("udp, now on its own, got group id %d, one of the other groups' (%d, %d, %d)", g, cd, ctl, first)
	}
}

func persistSpecText(extra string) string { return strings.Replace(persistSets, "%s", extra, 1) }

// manyPersistent returns a spec of n persistent sets on one VIP, named
// p0, p1, ..., with a delete age of 30 s and a persistence timeout of 2 min.
func manyPersistent(t *testing.T, names []string) *config.Spec {
	t.Helper()
	var b strings.Builder
	b.WriteString("[dataplane]\ninterfaces = [\"eth1\"]\n")
	for i, n := range names {
		fmt.Fprintf(&b, "[[target_set]]\nname = %q\naddress = \"192.0.2.10\"\nports = [\"%d\"]\ndelete_age = \"30s\"\ntable_size = 251\n", n, 1000+i)
		b.WriteString("persistence = \"client\"\npersistence_timeout = \"2m\"\n")
		b.WriteString("  [[target_set.server]]\n  address = \"198.51.100.11\"\n")
	}
	return parseSpec(t, b.String())
}

// TestBuildGroupQuarantineLastsTimeout: once every group id has been used,
// a removed group's id is not handed out before its records are stale: its
// persistence timeout (not the set's delete age), plus a second of clock
// granularity. Until then the build fails and changes nothing.
func TestBuildGroupQuarantineLastsTimeout(t *testing.T) {
	names := make([]string, fastpath.MaxSets)
	for i := range names {
		names[i] = fmt.Sprintf("p%d", i)
	}
	t0 := time.Unix(1_000_000, 0)
	first, id, err := Build(manyPersistent(t, names), NewIdentity(), Inputs{Interfaces: 1, MACs: noMACs, Generation: 1, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	gone := setByName(t, first, "p7").Persist.Group
	without := append(append([]string(nil), names[:7]...), names[8:]...)
	if _, id, err = Build(manyPersistent(t, without), id, Inputs{Interfaces: 1, MACs: noMACs, Generation: 2, Now: t0}); err != nil {
		t.Fatal(err)
	}
	names[7] = "fresh"
	spec := manyPersistent(t, names)

	// Past the set id's quarantine (30 s), within the group's (2 min).
	_, _, err = Build(spec, id, Inputs{Interfaces: 1, MACs: noMACs, Generation: 3, Now: t0.Add(time.Minute)})
	if !errors.Is(err, ErrNumbering) || !strings.Contains(err.Error(), "persistence group") {
		t.Fatalf("Build 1 min after removal = %v, want a persistence group numbering error", err)
	}
	tb, _, err := Build(spec, id, Inputs{Interfaces: 1, MACs: noMACs, Generation: 3, Now: t0.Add(2*time.Minute + time.Second)})
	if err != nil {
		t.Fatalf("Build once the group's quarantine ended: %v", err)
	}
	if g := setByName(t, tb, "fresh").Persist.Group; g != gone {
		t.Errorf("new set's group id %d, want %d (the only free one)", g, gone)
	}
}

// TestBuildPersistNumberingUnchanged: Build works on a copy of the
// persistence numbering: the Identity it was given keeps none of it.
func TestBuildPersistNumberingUnchanged(t *testing.T) {
	id := NewIdentity()
	if _, _, err := Build(persistSpec(t, ""), id, Inputs{Interfaces: 1, MACs: noMACs, Generation: 1, Now: time.Unix(1_000_000, 0)}); err != nil {
		t.Fatal(err)
	}
	if len(id.persist.groups) != 0 || len(id.persist.addrs) != 0 || id.persist.lastAddr != 0 {
		t.Errorf("Build changed the Identity it was given: %d groups, %d addresses", len(id.persist.groups), len(id.persist.addrs))
	}
}
