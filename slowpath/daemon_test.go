package slowpath

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/maglev"
	"github.com/ipfront/ipfront/slowpath/balance"
	"github.com/ipfront/ipfront/slowpath/config"
)

var (
	srvA = netip.MustParseAddr("198.51.100.11")
	srvB = netip.MustParseAddr("198.51.100.12")
	srvC = netip.MustParseAddr("198.51.100.13")
)

const dataplaneTOML = `
[dataplane]
interfaces = ["eth1"]
`

// checkedSet is a TCP set "web" of servers A and B, health-checked every
// second with the given fall and on_server_failure.
func checkedSet(name, vip, onFailure string, fall int) string {
	return fmt.Sprintf(`
[[target_set]]
name = %q
address = %q
ports = ["80"]
on_server_failure = %q
  [[target_set.server]]
  address = "198.51.100.11"
  [[target_set.server]]
  address = "198.51.100.12"
  [target_set.health]
  type = "tcp"
  interval = "1s"
  timeout = "500ms"
  fall = %d
  rise = 1
`, name, vip, onFailure, fall)
}

// A server is down after exactly fall failed probes, one interval apart on
// the daemon's clock: each interval brings one probe, and the publication
// that takes the server out of selection follows the fall-th.
func TestDaemonHealthProbesEveryInterval(t *testing.T) {
	const fall = 3
	h := startDaemon(t, dataplaneTOML+checkedSet("web", "192.0.2.10", "reselect", fall), srvA)
	h.prober.waitProbes(t, srvA, 1) // the first probe runs at once
	for n := 2; n <= fall; n++ {
		h.clock.Advance(time.Second)
		h.prober.waitProbes(t, srvA, n)
	}
	h.waitTables(t, "server A down", func(tb *fastpath.Tables) bool {
		s := server(tb, "web", srvA)
		return s != nil && s.Weight == 0
	})
	if got := h.prober.probed(srvA); got != fall {
		t.Fatalf("server A marked down after %d probes, want fall = %d", got, fall)
	}
	if st := findState(t, h.d, "web", srvA); st.Healthy || st.EffectiveWeight != 0 {
		t.Fatalf("Servers() A = healthy %v weight %d, want down with weight 0", st.Healthy, st.EffectiveWeight)
	}
	if st := findState(t, h.d, "web", srvB); !st.Healthy || st.EffectiveWeight != 1 {
		t.Fatalf("Servers() B = healthy %v weight %d, want up with weight 1", st.Healthy, st.EffectiveWeight)
	}

	// One successful probe (rise = 1) at the next interval brings it back.
	h.prober.setFailing(srvA, false)
	h.clock.Advance(time.Second)
	h.waitTables(t, "server A up again", func(tb *fastpath.Tables) bool {
		s := server(tb, "web", srvA)
		return s != nil && s.Weight == 1 && !s.Reselect
	})
}

// on_server_failure decides whether a failed server's associations move
// (Reselect in the published tables) or stay; either way it gets no new
// ones.
func TestDaemonOnServerFailure(t *testing.T) {
	h := startDaemon(t, dataplaneTOML+checkedSet("moving", "192.0.2.10", "reselect", 1)+checkedSet("staying", "192.0.2.20", "keep", 1), srvA)
	tb := h.waitTables(t, "server A down in both sets", func(tb *fastpath.Tables) bool {
		m, k := server(tb, "moving", srvA), server(tb, "staying", srvA)
		return m != nil && k != nil && m.Weight == 0 && k.Weight == 0
	})
	if s := server(tb, "moving", srvA); !s.Reselect {
		t.Errorf(`failed server of a set with on_server_failure = "reselect": Reselect = false, want true`)
	}
	if s := server(tb, "staying", srvA); s.Reselect {
		t.Errorf(`failed server of a set with on_server_failure = "keep": Reselect = true, want false`)
	}
	for _, set := range []string{"moving", "staying"} {
		if s := server(tb, set, srvB); s.Weight != 1 || s.Reselect {
			t.Errorf("healthy server B of %q = weight %d reselect %v, want 1, false", set, s.Weight, s.Reselect)
		}
	}
}

// The balance loop turns the workers' per-server packet counters into
// least-load scores: a server that carried more than its weight share
// scores above the fair share, the other below.
func TestDaemonLeastLoadScores(t *testing.T) {
	h := startDaemon(t, dataplaneTOML+`
[[target_set]]
name = "ll"
address = "192.0.2.10"
ports = ["80"]
method = "least_load"
  [[target_set.server]]
  address = "198.51.100.11"
  [[target_set.server]]
  address = "198.51.100.12"
  [target_set.health]
  type = "none"
`)
	tb, _, _ := h.plane.published()
	ts, _ := findSlot(t, tb, "ll", srvA)
	ja, jb := counterIndex(t, tb, "ll", srvA), counterIndex(t, tb, "ll", srvB)
	h.step(t, samplePeriod) // first reading: the counters' base
	h.plane.workers[0].update(func(c *fastpath.Counters) { c.ServerPackets[ja] += 900 })
	h.plane.workers[1].update(func(c *fastpath.Counters) { c.ServerPackets[ja] += 100; c.ServerPackets[jb] += 250 })
	h.step(t, samplePeriod)
	snap := ts.Load.Load()
	if snap == nil || snap.Seq != 2 {
		t.Fatalf("load snapshot after two samples = %+v, want the second", snap)
	}
	_, sa := findSlot(t, tb, "ll", srvA)
	_, sb := findSlot(t, tb, "ll", srvB)
	// A carried 1000 of 1250 packets with half the weight: 1.6 times its
	// share; B 0.4 times.
	wantA, wantB := uint32(math.Round(1.6*balance.ScoreFair)), uint32(math.Round(0.4*balance.ScoreFair))
	if got := snap.Score[sa]; got < wantA-2 || got > wantA+2 {
		t.Errorf("Score(A, 80%% of packets at 50%% of weight) = %d, want %d", got, wantA)
	}
	if got := snap.Score[sb]; got < wantB-2 || got > wantB+2 {
		t.Errorf("Score(B, 20%% of packets at 50%% of weight) = %d, want %d", got, wantB)
	}
	// One association adds 1/(weight share * associations) of a fair score
	// (no association yet counts as one); each worker sees only the
	// associations it made itself, so the snapshot scales that by the
	// number of workers, two here.
	wantPenalty := uint32(len(h.plane.workers)) * uint32(math.Ceil(balance.ScoreFair/0.5))
	if got := snap.NewPenalty[sa]; got != wantPenalty {
		t.Errorf("NewPenalty(A) with %d workers = %d, want %d", len(h.plane.workers), got, wantPenalty)
	}
}

// The Reselect flag a policy sets reaches the published server.
func TestBuildCarriesPolicy(t *testing.T) {
	policy := func(set *config.TargetSet, srv *config.Server) (uint32, bool) {
		if srv.Address == netip.MustParseAddr("198.51.100.11") {
			return 0, true
		}
		return 7, false
	}
	tb, _, err := Build(parseSpec(t, twoSets), NewIdentity(), Inputs{Interfaces: 1, MACs: noMACs, Policy: policy, Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	web := setByName(t, tb, "web")
	if _, s := slotOf(t, web, "198.51.100.11"); s.Weight != 0 || !s.Reselect {
		t.Errorf("server .11 = weight %d reselect %v, want the policy's 0, true", s.Weight, s.Reselect)
	}
	if _, s := slotOf(t, web, "198.51.100.12"); s.Weight != 7 || s.Reselect {
		t.Errorf("server .12 = weight %d reselect %v, want the policy's 7, false", s.Weight, s.Reselect)
	}
}

func findState(tb testing.TB, d *Daemon, set string, addr netip.Addr) ServerState {
	tb.Helper()
	for _, s := range d.Servers() {
		if s.Set == set && s.Address == addr {
			return s
		}
	}
	tb.Fatalf("Servers() has no %v in %q", addr, set)
	return ServerState{}
}

// numbering is every server's set id, slot and generation in t.
func numbering(t *fastpath.Tables) map[string][3]uint32 {
	out := map[string][3]uint32{}
	for _, ts := range t.Sets() {
		for slot, s := range ts.Servers {
			if s.Present {
				out[ts.Name+"/"+s.Addr.String()] = [3]uint32{uint32(ts.ID), uint32(slot), s.Gen}
			}
		}
	}
	return out
}

// reloadBase is 256 target sets on one VIP, every set id in use; set s0 has
// servers A and B.
func reloadBase(sets []string, s0Servers ...string) string {
	var b strings.Builder
	b.WriteString(dataplaneTOML)
	for i, name := range sets {
		fmt.Fprintf(&b, "[[target_set]]\nname = %q\naddress = \"192.0.2.10\"\nports = [\"%d\"]\ndelete_age = \"30s\"\ntable_size = 251\n", name, 1000+i)
		servers := []string{"198.51.100.11"}
		if i == 0 {
			servers = s0Servers
		}
		for _, s := range servers {
			fmt.Fprintf(&b, "  [[target_set.server]]\n  address = %q\n", s)
		}
	}
	return b.String()
}

// A reload that fails at any stage changes nothing: not the spec, not the
// numbering, not the published tables, not the steered VIPs; reloading the
// file in force afterwards gives every server its slot and generation back.
func TestDaemonReloadFailureChangesNothing(t *testing.T) {
	sets := make([]string, fastpath.MaxSets)
	for i := range sets {
		sets[i] = fmt.Sprintf("s%d", i)
	}
	base := reloadBase(sets, "198.51.100.11", "198.51.100.12")
	// Servers of s0 renumbered (A leaves, C takes its slot) and a new VIP.
	renumbered := strings.Replace(reloadBase(sets, "198.51.100.13", "198.51.100.12"), `address = "192.0.2.10"`, `address = "192.0.2.99"`, 1)
	errPublish := errors.New("fake VIP map update failure")
	stages := []struct {
		name string
		// fail makes the reload fail; it returns the reload's error.
		fail func(t *testing.T, h *harness) error
	}{
		{"parse", func(t *testing.T, h *harness) error {
			return h.reload(t, renumbered+"\n[[target_set\n")
		}},
		{"validate", func(t *testing.T, h *harness) error {
			return h.reload(t, strings.Replace(renumbered, "198.51.100.13", "198.51.100.300", 1))
		}},
		{"build: every set id in use or quarantined", func(t *testing.T, h *harness) error {
			// s255 removed and "late" added in one reload: the only free id
			// is s255's, quarantined for its delete age.
			return h.reload(t, reloadBase(append(sets[:255:255], "late"), "198.51.100.13", "198.51.100.12"))
		}},
		{"build: after renumbering a set", func(t *testing.T, h *harness) error {
			// No configuration file gets here (validation refuses a table
			// size that is not prime), so the spec is handed to the
			// control goroutine directly: s0 is renumbered before s1
			// fails to build.
			spec := parseSpec(t, renumbered)
			spec.TargetSets[1].TableSize = 1000
			spec.Path = h.path
			return h.d.do(context.Background(), func() error { _, err := h.d.reload(spec); return err })
		}},
		{"VIP map", func(t *testing.T, h *harness) error {
			h.plane.setFailPublish(errPublish)
			defer h.plane.setFailPublish(nil)
			return h.reload(t, renumbered)
		}},
	}
	for _, stage := range stages {
		t.Run(stage.name, func(t *testing.T) {
			h := startDaemon(t, base)
			spec, gen, id := h.d.Spec(), h.d.Generation(), h.d.cur().id
			tables, vips, publishes := h.plane.published()
			before := numbering(tables)

			if err := stage.fail(t, h); err == nil {
				t.Fatal("reload succeeded, want an error")
			}

			if h.d.Spec() != spec {
				t.Error("reload failed but the spec in force changed")
			}
			if got := h.d.Generation(); got != gen {
				t.Errorf("Generation() = %d after a failed reload, want %d", got, gen)
			}
			if h.d.cur().id != id {
				t.Error("reload failed but the numbering changed")
			}
			gotT, gotV, gotN := h.plane.published()
			if gotT != tables || gotN != publishes {
				t.Errorf("published tables = generation %d (%d publications), want generation %d (%d)", gotT.Generation, gotN, tables.Generation, publishes)
			}
			if !slices.Equal(gotV, vips) {
				t.Errorf("steered VIPs = %v, want %v", gotV, vips)
			}
			if st := findState(t, h.d, "s0", srvA); !st.Healthy || st.EffectiveWeight != 1 {
				t.Errorf("server A after a failed reload = %+v", st)
			}

			if err := h.reload(t, base); err != nil {
				t.Fatalf("reload of the file in force: %v", err)
			}
			after, _, _ := h.plane.published()
			if got := numbering(after); !maps.Equal(got, before) {
				for k, v := range before {
					if got[k] != v {
						t.Errorf("%s: set id, slot, generation = %v after the failed reload, want %v", k, got[k], v)
					}
				}
				t.Fatalf("numbering changed")
			}
		})
	}
}

// A drain whose publication fails changes nothing either.
func TestDaemonDrainPublishFailure(t *testing.T) {
	h := startDaemon(t, dataplaneTOML+checkedSet("web", "192.0.2.10", "reselect", 1))
	tables, _, _ := h.plane.published()
	h.plane.setFailPublish(errors.New("fake VIP map update failure"))
	if err := h.d.SetDrained(context.Background(), "web", srvA.String(), true); err == nil {
		t.Fatal("SetDrained succeeded with a failing publication")
	}
	if h.d.Drained("web", srvA) {
		t.Error("Drained(A) = true after a drain that failed")
	}
	if got, _, _ := h.plane.published(); got != tables {
		t.Error("published tables changed")
	}
	h.plane.setFailPublish(nil)
	if err := h.d.SetDrained(context.Background(), "web", srvA.String(), true); err != nil {
		t.Fatal(err)
	}
	tb, _, _ := h.plane.published()
	if s := server(tb, "web", srvA); s.Weight != 0 || s.Reselect {
		t.Errorf("drained server = weight %d reselect %v, want 0, false", s.Weight, s.Reselect)
	}
}

// Issue 7 (b) through the daemon: a set removed and another added in one
// reload get different ids, so the new one's servers start with no
// associations and no counters of the old one.
func TestDaemonReloadRemovedSetIDNotReused(t *testing.T) {
	h := startDaemon(t, dataplaneTOML+checkedSet("old", "192.0.2.10", "reselect", 1))
	before, _, _ := h.plane.published()
	oldID, _ := findSlot(t, before, "old", srvA)
	if err := h.reload(t, dataplaneTOML+checkedSet("new", "192.0.2.20", "reselect", 1)); err != nil {
		t.Fatal(err)
	}
	after, _, _ := h.plane.published()
	newSet, _ := findSlot(t, after, "new", srvA)
	if newSet.ID == oldID.ID {
		t.Fatalf("new set got id %d, the id of the set the same reload removed", newSet.ID)
	}
	for slot := range newSet.Servers {
		if n, o := newSet.Servers[slot], oldID.Servers[slot]; n.Present && o.Present && n.Gen == o.Gen {
			t.Errorf("slot %d: new set's server has generation %d, like the removed set's", slot, n.Gen)
		}
	}
}

// Issue 7: a server marked down stays down only while it is checked: once a
// reload sets its set's health check to "none" it is up again.
func TestDaemonDownServerUpWhenCheckRemoved(t *testing.T) {
	checked := dataplaneTOML + checkedSet("web", "192.0.2.10", "reselect", 1)
	h := startDaemon(t, checked, srvA)
	h.waitTables(t, "server A down", func(tb *fastpath.Tables) bool {
		s := server(tb, "web", srvA)
		return s != nil && s.Weight == 0
	})
	unchecked := strings.Replace(checked, `type = "tcp"`, `type = "none"`, 1)
	if err := h.reload(t, unchecked); err != nil {
		t.Fatal(err)
	}
	tb, _, _ := h.plane.published()
	if s := server(tb, "web", srvA); s.Weight != 1 || s.Reselect {
		t.Errorf("server A after its check was removed = weight %d reselect %v, want 1, false", s.Weight, s.Reselect)
	}
	if st := findState(t, h.d, "web", srvA); !st.Healthy {
		t.Error("Servers() A healthy = false after its check was removed")
	}
	// A verdict its stopped checker delivered late changes nothing.
	h.d.healthQ.push(healthEvent("web", srvA, false))
	if err := h.d.do(context.Background(), func() error { h.d.applyHealth(h.d.healthQ.drain()); return nil }); err != nil {
		t.Fatal(err)
	}
	if st := findState(t, h.d, "web", srvA); !st.Healthy {
		t.Error("a late event from a stopped checker marked an unchecked server down")
	}
}

// API readers never wait for the control goroutine: while a publication
// hangs, the state, the servers, the alarms and the generation answer.
func TestDaemonReadersDoNotWaitForPublication(t *testing.T) {
	h := startDaemon(t, dataplaneTOML+checkedSet("web", "192.0.2.10", "reselect", 1))
	in, release := make(chan struct{}, 1), make(chan struct{})
	h.plane.mu.Lock()
	h.plane.inPublish, h.plane.release = in, release
	h.plane.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- h.d.SetDrained(context.Background(), "web", srvA.String(), true) }()
	select {
	case <-in:
	case <-time.After(waitLimit):
		t.Fatal("drain never published")
	}
	answered := make(chan struct{})
	go func() {
		_ = h.d.Spec()
		_ = h.d.Servers()
		_ = h.d.Alarms()
		_ = h.d.AlarmsRaised()
		_ = h.d.Generation()
		close(answered)
	}()
	select {
	case <-answered:
	case <-time.After(waitLimit):
		t.Fatal("readers waited for a publication in progress")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The balance loop's walk of the shards (for peer groups) does not hold
// readers up either.
func TestDaemonReadersDoNotWaitForShardWalk(t *testing.T) {
	h := startDaemon(t, dataplaneTOML+`
[[target_set]]
name = "peers"
address = "2001:db8::10"
ports = ["80"]
method = "peer_aware_least_load"
  [[target_set.server]]
  address = "2001:db8::11"
  [[target_set.peer_group]]
  name = "a"
  prefixes = ["2001:db8:1::/48"]
`)
	in, release := make(chan struct{}, 1), make(chan struct{})
	w := h.plane.workers[0]
	w.mu.Lock()
	w.walk = func() { in <- struct{}{}; <-release }
	w.mu.Unlock()
	h.clock.Advance(samplePeriod)
	select {
	case <-in:
	case <-time.After(waitLimit):
		t.Fatal("the balance loop never walked the shards")
	}
	answered := make(chan struct{})
	go func() {
		_ = h.d.Servers()
		_ = h.d.Alarms()
		_ = h.d.AlarmsRaised()
		close(answered)
	}()
	select {
	case <-answered:
	case <-time.After(waitLimit):
		t.Fatal("readers waited for the balance loop's shard walk")
	}
	w.mu.Lock()
	w.walk = nil
	w.mu.Unlock()
	close(release)
	h.sync(t)
}

// A sustained imbalance raises an alarm that readers see, and the bias it
// brings takes the over-loaded server out of new selections until the
// deviation clears.
func TestDaemonBalanceAlarm(t *testing.T) {
	h := startDaemon(t, dataplaneTOML+`
[[target_set]]
name = "web"
address = "192.0.2.10"
ports = ["80"]
  [[target_set.server]]
  address = "198.51.100.11"
  [[target_set.server]]
  address = "198.51.100.12"
  [target_set.health]
  type = "none"
  [target_set.balance]
  threshold = 0.2
  clear = 0.1
  window = "10s"
  sustain = "0s"
`)
	tb, _, _ := h.plane.published()
	ja, jb := counterIndex(t, tb, "web", srvA), counterIndex(t, tb, "web", srvB)
	h.step(t, samplePeriod) // the counters' base
	h.plane.workers[0].update(func(c *fastpath.Counters) { c.ServerPackets[ja] += 900; c.ServerPackets[jb] += 100 })
	h.step(t, samplePeriod)
	h.waitTables(t, "the over-loaded server biased out", func(tb *fastpath.Tables) bool {
		a, b := server(tb, "web", srvA), server(tb, "web", srvB)
		return a.Weight == 0 && b.Weight == 1
	})
	alarms := h.d.Alarms()
	if len(alarms) != 1 || !alarms[0].Active || alarms[0].Set != "web" || alarms[0].ID != "balance-web-1" {
		t.Fatalf("Alarms() = %+v, want one active alarm balance-web-1", alarms)
	}
	if got := h.d.AlarmsRaised(); got["web"] != 1 {
		t.Fatalf("AlarmsRaised() = %v, want web: 1", got)
	}
	if st := findState(t, h.d, "web", srvA); st.EffectiveWeight != 0 || st.Weight != 1 {
		t.Errorf("Servers() A = weight %d effective %d, want 1 and 0 while biased", st.Weight, st.EffectiveWeight)
	}

	// Balanced traffic clears the alarm and the bias once the window holds
	// mostly even intervals.
	for range 20 {
		h.plane.workers[0].update(func(c *fastpath.Counters) { c.ServerPackets[ja] += 1000; c.ServerPackets[jb] += 1000 })
		h.step(t, samplePeriod)
	}
	h.waitTables(t, "the bias lifted", func(tb *fastpath.Tables) bool { return server(tb, "web", srvA).Weight == 1 })
	if alarms := h.d.Alarms(); len(alarms) != 1 || alarms[0].Active {
		t.Fatalf("Alarms() = %+v, want the alarm cleared", alarms)
	}
}

// A publication that stands although removed VIPs could not be unsteered
// is a successful reload: the tables and the numbering are the new ones.
func TestDaemonReloadStaleVIPsStands(t *testing.T) {
	h := startDaemon(t, dataplaneTOML+checkedSet("old", "192.0.2.10", "reselect", 1))
	gen := h.d.Generation()
	h.plane.mu.Lock()
	h.plane.staleVIPs = true
	h.plane.mu.Unlock()
	if err := h.reload(t, dataplaneTOML+checkedSet("new", "192.0.2.20", "reselect", 1)); err != nil {
		t.Fatalf("Reload = %v, want success: the tables were published", err)
	}
	if got := h.d.Generation(); got != gen+1 {
		t.Errorf("Generation() = %d, want %d", got, gen+1)
	}
	tb, vips, _ := h.plane.published()
	if tb.Generation != gen+1 || server(tb, "new", srvA) == nil {
		t.Errorf("published tables = generation %d, want %d with set \"new\"", tb.Generation, gen+1)
	}
	if h.d.Spec().TargetSets[0].Name != "new" {
		t.Errorf("spec in force has set %q, want \"new\"", h.d.Spec().TargetSets[0].Name)
	}
	t.Logf("steered VIPs (the removed one still steered): %v", vips)
}

// Issue 10: the flow hash is keyed by [dataplane] hash_seed, the same seed
// on every generation of one run (a reload must not move flows without an
// association), and each set carries its syn_age.
func TestDaemonHashSeedAndSynAge(t *testing.T) {
	conf := strings.Replace(dataplaneTOML, "[dataplane]\n", "[dataplane]\nhash_seed = \"mated-pair-1\"\n", 1)
	set := strings.Replace(checkedSet("web", "192.0.2.10", "reselect", 1), "ports = [\"80\"]\n", "ports = [\"80\"]\nsyn_age = \"7s\"\n", 1)
	h := startDaemon(t, conf+set)
	tab, _, _ := h.plane.published()
	seed := config.SeedOf("mated-pair-1")
	ts, _ := findSlot(t, tab, "web", srvA)
	if ts.Seed != maglev.NewSeed(seed) {
		t.Errorf("published seed differs from hash_seed's")
	}
	if ts.SynAge != 7 {
		t.Errorf("SynAge = %d, want 7 (syn_age = \"7s\")", ts.SynAge)
	}
	// A reload that changes nothing else keeps the seed, even a random one.
	h2 := startDaemon(t, dataplaneTOML+set)
	first, _, _ := h2.plane.published()
	if err := h2.reload(t, dataplaneTOML+checkedSet("web", "192.0.2.10", "reselect", 2)); err != nil {
		t.Fatal(err)
	}
	after, _, _ := h2.plane.published()
	a, _ := findSlot(t, first, "web", srvA)
	b, _ := findSlot(t, after, "web", srvA)
	if a.Seed != b.Seed || a.Seed == maglev.Unkeyed {
		t.Errorf("random seed across a reload: %v then %v; want one keyed seed for the run", a.Seed, b.Seed)
	}
}
