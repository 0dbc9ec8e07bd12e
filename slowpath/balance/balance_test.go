package balance

import (
	"math"
	"testing"
	"time"
)

const period = time.Second // sampling period of every scenario

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// farm drives a Tracker the way the slow path does: servers whose
// cumulative packet counters grow by a given amount every period.
type farm struct {
	tr      *Tracker
	now     time.Time
	servers []ServerSample
}

// newFarm returns a farm of servers "a", "b", ... with the given weights.
func newFarm(cfg Config, weights ...float64) *farm {
	f := &farm{tr: NewTracker("diameter", cfg), now: t0}
	for i, w := range weights {
		k := string(rune('a' + i))
		f.servers = append(f.servers, ServerSample{Key: k, Name: "mp-" + k, Weight: w})
	}
	return f
}

// step advances one period in which server i received packets[i] packets,
// and observes.
func (f *farm) step(packets ...uint64) Result {
	f.now = f.now.Add(period)
	for i, n := range packets {
		f.servers[i].Packets += n
	}
	return f.tr.Observe(f.now, f.servers)
}

// run steps n periods with the same traffic and returns every result.
func (f *farm) run(n int, packets ...uint64) []Result {
	out := make([]Result, n)
	for i := range out {
		out[i] = f.step(packets...)
	}
	return out
}

// events counts the raise and clear edges in rs.
func events(rs []Result) (raised, cleared int) {
	for _, r := range rs {
		if r.Raised {
			raised++
		}
		if r.Cleared {
			cleared++
		}
	}
	return raised, cleared
}

// alarmCfg: 10 s window, 5 s sustain, out of balance above 0.2, balanced
// again below 0.05.
var alarmCfg = Config{Enabled: true, Threshold: 0.2, Clear: 0.05, Window: 10 * time.Second, Sustain: 5 * time.Second}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// TestBalanced: traffic and associations in proportion to the weights give
// shares equal to the weight shares and never an alarm.
func TestBalanced(t *testing.T) {
	f := newFarm(alarmCfg, 1, 2, 3)
	for i := range f.servers {
		f.servers[i].Associations = 10 * uint64(i+1)
	}
	rs := f.run(60, 100, 200, 300)
	if r, c := events(rs); r != 0 || c != 0 {
		t.Fatalf("raised %d, cleared %d times, want never", r, c)
	}
	last := rs[len(rs)-1]
	for _, k := range []string{"a", "b", "c"} {
		if !near(last.PacketShare[k], last.WeightShare[k]) || !near(last.AssocShare[k], last.WeightShare[k]) {
			t.Errorf("server %s: packet share %v, association share %v, want its weight share %v",
				k, last.PacketShare[k], last.AssocShare[k], last.WeightShare[k])
		}
	}
	if last.Deviation > 1e-9 || last.AlarmActive || last.Bias != nil {
		t.Errorf("Deviation %v, AlarmActive %v, Bias %v, want 0, false, none", last.Deviation, last.AlarmActive, last.Bias)
	}
	if last.Packets != 10*600 {
		t.Errorf("Packets = %d, want %d (10 periods of 600)", last.Packets, 10*600)
	}
}

// TestHotServer: one of three equal servers receiving 80% of the packets
// raises the alarm once the deviation has lasted Sustain, steers new
// associations away from it while active, and clears once when the traffic
// evens out. A second episode is a new alarm.
func TestHotServer(t *testing.T) {
	f := newFarm(alarmCfg, 1, 1, 1)
	for i := range f.servers {
		f.servers[i].Associations = 100
	}
	f.run(20, 100, 100, 100)

	hot := f.run(30, 800, 100, 100)
	raised, cleared := events(hot)
	if raised != 1 || cleared != 0 {
		t.Fatalf("hot phase: raised %d, cleared %d times, want 1, 0", raised, cleared)
	}
	at := -1
	for i, r := range hot {
		if r.Raised {
			at = i
		}
	}
	// Raised Sustain after the deviation first went above the threshold,
	// and it stayed above all along.
	over := -1
	for i, r := range hot {
		if r.Deviation > alarmCfg.Threshold && over < 0 {
			over = i
		}
		if over >= 0 && r.Deviation <= alarmCfg.Threshold {
			t.Fatalf("period %d: deviation %v back below the threshold", i, r.Deviation)
		}
	}
	if over < 0 || at != over+int(alarmCfg.Sustain/period) {
		t.Errorf("deviation above threshold from period %d, alarm raised at %d, want raised %v later", over, at, alarmCfg.Sustain)
	}
	for i, r := range hot[at:] {
		if !r.AlarmActive || r.AlarmID != "balance-diameter-1" {
			t.Fatalf("period %d after raising: AlarmActive %v, AlarmID %q, want true, balance-diameter-1", i, r.AlarmActive, r.AlarmID)
		}
		if len(r.Bias) != 3 || r.Bias["a"] != 0 || r.Bias["b"] != 1 || r.Bias["c"] != 1 {
			t.Fatalf("period %d after raising: Bias %v, want a:0 b:1 c:1", i, r.Bias)
		}
	}
	for i, r := range hot[:at] {
		if r.AlarmActive || r.AlarmID != "" || r.Bias != nil {
			t.Fatalf("period %d before raising: AlarmActive %v, AlarmID %q, Bias %v, want nothing", i, r.AlarmActive, r.AlarmID, r.Bias)
		}
	}
	if last := hot[len(hot)-1]; !near(last.PacketShare["a"], 0.8) {
		t.Errorf("hot server's packet share %v, want 0.8", last.PacketShare["a"])
	}

	even := f.run(30, 100, 100, 100)
	raised, cleared = events(even)
	if raised != 0 || cleared != 1 {
		t.Fatalf("even phase: raised %d, cleared %d times, want 0, 1", raised, cleared)
	}
	for i, r := range even {
		if r.Cleared {
			if r.AlarmActive || r.AlarmID != "balance-diameter-1" || r.Deviation >= alarmCfg.Clear || r.Bias != nil {
				t.Errorf("clearing observation: AlarmActive %v, AlarmID %q, Deviation %v, Bias %v, want false, balance-diameter-1, < Clear, none",
					r.AlarmActive, r.AlarmID, r.Deviation, r.Bias)
			}
			for _, r := range even[i+1:] {
				if r.AlarmActive || r.AlarmID != "" {
					t.Fatalf("after clearing: AlarmActive %v, AlarmID %q", r.AlarmActive, r.AlarmID)
				}
			}
		}
	}

	again := f.run(30, 100, 800, 100)
	if raised, _ := events(again); raised != 1 {
		t.Fatalf("second episode: raised %d times, want 1", raised)
	}
	if r := again[len(again)-1]; r.AlarmID != "balance-diameter-2" || r.Bias["b"] != 0 || r.Bias["a"] != 1 {
		t.Errorf("second episode: AlarmID %q, Bias %v, want balance-diameter-2 steering away from b", r.AlarmID, r.Bias)
	}
}

// TestSustain: a deviation shorter than Sustain raises nothing; one that
// lasts Sustain does. The window is one period, so the deviation follows the
// traffic exactly.
func TestSustain(t *testing.T) {
	cfg := alarmCfg
	cfg.Window = period
	f := newFarm(cfg, 1, 1, 1)
	f.run(5, 100, 100, 100)
	for range 3 {
		blip := f.run(5, 800, 100, 100) // 5 periods above threshold: 4 s
		if r, _ := events(blip); r != 0 {
			t.Fatalf("blip of 4 s: raised %d times, want 0", r)
		}
		f.run(1, 100, 100, 100)
	}
	long := f.run(6, 800, 100, 100) // 5 s after the first
	if r, _ := events(long); r != 1 || !long[5].Raised {
		t.Fatalf("6 periods above threshold: raised %d times (last period %v), want once, in the last", r, long[5].Raised)
	}

	cfg.Sustain = 0
	f = newFarm(cfg, 1, 1, 1)
	f.run(2, 100, 100, 100)
	if r := f.step(800, 100, 100); !r.Raised {
		t.Errorf("Sustain 0: not raised on the first deviating observation")
	}
}

// TestHysteresis: an active alarm stays active while the deviation is
// between Clear and Threshold, and clears below Clear.
func TestHysteresis(t *testing.T) {
	cfg := alarmCfg
	cfg.Window = period
	f := newFarm(cfg, 1, 1, 1)
	if r := f.run(7, 800, 100, 100); !r[6].Raised { // the first observation has no window yet
		t.Fatalf("fixture: alarm not raised")
	}
	// a: 0.433, b and c: 0.283: deviation 0.1.
	mid := f.run(30, 1300, 850, 850)
	for i, r := range mid {
		if !near(r.Deviation, 0.1) || !r.AlarmActive || r.Cleared || r.Bias["a"] != 0 {
			t.Fatalf("period %d at deviation 0.1: Deviation %v, AlarmActive %v, Cleared %v, Bias %v, want active, steering away from a",
				i, r.Deviation, r.AlarmActive, r.Cleared, r.Bias)
		}
	}
	if r := f.step(360, 320, 320); !r.Cleared { // deviation 0.0267
		t.Errorf("deviation %v below Clear: not cleared", r.Deviation)
	}
	// And the other way: between Clear and Threshold never raises.
	if r, _ := events(f.run(30, 1300, 850, 850)); r != 0 {
		t.Errorf("deviation 0.1 with no alarm active: raised %d times, want 0", r)
	}
}

// TestIneligibleExcluded: a drained (weight 0) server's packets and
// associations are left out of every share.
func TestIneligibleExcluded(t *testing.T) {
	f := newFarm(alarmCfg, 1, 1, 0)
	f.servers[0].Associations, f.servers[1].Associations, f.servers[2].Associations = 50, 50, 400
	rs := f.run(30, 100, 100, 5000)
	if r, _ := events(rs); r != 0 {
		t.Fatalf("raised %d times, want 0", r)
	}
	last := rs[len(rs)-1]
	for _, m := range []map[string]float64{last.PacketShare, last.AssocShare, last.WeightShare} {
		if _, ok := m["c"]; ok || len(m) != 2 || !near(m["a"], 0.5) || !near(m["b"], 0.5) {
			t.Errorf("shares %v, want a and b at 0.5 and no c", m)
		}
	}
	if last.Deviation != 0 || last.Packets != 2000 || last.Score["c"] != math.MaxUint32 {
		t.Errorf("Deviation %v, Packets %d, Score[c] %d, want 0, 2000, MaxUint32", last.Deviation, last.Packets, last.Score["c"])
	}
}

// TestCounterReset: a counter that goes down (a restart) counts nothing for
// that period and grows from its new value; a new server counts from its
// first observation. Neither is mistaken for a burst.
func TestCounterReset(t *testing.T) {
	f := newFarm(alarmCfg, 1, 1, 1)
	f.run(20, 1000, 1000, 1000)
	f.servers[1].Packets = 7 // restarted: lower than before
	r := f.step(1000, 1000, 1000)
	if s := r.PacketShare["b"]; s > 1.0/3 || s < 0.3 || r.Raised {
		t.Fatalf("period of the reset: b's share %v, want a little below 1/3 (one period of ten lost), no alarm", s)
	}
	rs := f.run(10, 1000, 1000, 1000)
	if last := rs[len(rs)-1]; !near(last.PacketShare["b"], 1.0/3) {
		t.Errorf("a window after the reset: b's share %v, want 1/3", last.PacketShare["b"])
	}
	if r, _ := events(rs); r != 0 {
		t.Errorf("raised %d times, want 0", r)
	}

	// A fourth server joins with a counter already far from zero.
	f.servers = append(f.servers, ServerSample{Key: "d", Weight: 1, Packets: 1 << 40})
	if r := f.step(1000, 1000, 1000, 0); r.PacketShare["d"] != 0 {
		t.Errorf("new server's share %v, want 0: its counter counts from its first observation", r.PacketShare["d"])
	}
	if r := f.step(1000, 1000, 1000, 1000); r.PacketShare["d"] == 0 || r.PacketShare["d"] > 0.25 {
		t.Errorf("new server's share after one period %v, want in (0, 0.25]", r.PacketShare["d"])
	}
}

// TestIdle: a window with fewer than MinPackets packets measures no packet
// share, so an idle set never alarms, however lopsided its trickle; a few
// associations within integer rounding do not alarm either.
func TestIdle(t *testing.T) {
	cfg := alarmCfg
	cfg.Sustain = 0
	f := newFarm(cfg, 1, 1, 1)
	f.servers[0].Associations, f.servers[1].Associations = 1, 1 // 2 over 3 servers: as even as it gets
	rs := f.run(60, 9, 0, 0)                                    // 90 packets per window
	if r, _ := events(rs); r != 0 {
		t.Fatalf("idle set: raised %d times, want 0", r)
	}
	if last := rs[len(rs)-1]; last.Deviation != 0 || last.Packets != 90 || last.PacketShare["a"] != 1 {
		t.Errorf("Deviation %v, Packets %d, PacketShare %v, want 0, 90, a at 1 (reported, not counted)", last.Deviation, last.Packets, last.PacketShare)
	}
	if r := f.step(20, 0, 0); !r.Raised { // 101 packets in the window: now it counts
		t.Errorf("window of %d packets, deviation %v: not raised", r.Packets, r.Deviation)
	}

	// Associations out of balance by more than rounding do count.
	f = newFarm(cfg, 1, 1, 1)
	f.servers[0].Associations = 6
	if r := f.step(0, 0, 0); !r.Raised || !near(r.Deviation, (6-2-1)/6.0) {
		t.Errorf("6 associations on one of 3 servers: Raised %v, Deviation %v, want true, %v", r.Raised, r.Deviation, (6-2-1)/6.0)
	}
}

// TestScore: scores order servers by packet rate per unit weight, ScoreFair
// meaning exactly the weight share; without enough packets, by associations
// per unit weight. Scores are computed with the alarm disabled, which then
// never raises.
func TestScore(t *testing.T) {
	cfg := alarmCfg
	cfg.Enabled = false
	f := newFarm(cfg, 1, 2, 4, 1)
	for i, n := range []uint64{10, 10, 10, 10} {
		f.servers[i].Associations = n
	}
	// rate/weight: a 100, b 100, c 75, d 400.
	rs := f.run(30, 100, 200, 300, 400)
	if r, _ := events(rs); r != 0 {
		t.Fatalf("disabled: raised %d times, want 0", r)
	}
	s := rs[len(rs)-1].Score
	if !(s["c"] < s["a"] && s["a"] == s["b"] && s["b"] < s["d"]) {
		t.Errorf("Score %v, want c < a = b < d", s)
	}
	// Total 1000 packets over weight 8 is 125 per unit weight: a is at 0.8
	// of its fair share, d at 3.2.
	if wa, wd := uint32(math.Round(0.8*ScoreFair)), uint32(math.Round(3.2*ScoreFair)); s["a"] != wa || s["d"] != wd {
		t.Errorf("Score a %d, d %d, want %d, %d", s["a"], s["d"], wa, wd)
	}
	// Penalty: one association of 40, on a server of weight 1 or 4 of 8,
	// rounded up.
	if p, wa, wc := rs[len(rs)-1].Penalty, uint32(math.Ceil(ScoreFair*8/40.0)), uint32(math.Ceil(ScoreFair*8/4/40.0)); p["a"] != wa || p["c"] != wc {
		t.Errorf("Penalty %v, want a %d, c %d", p, wa, wc)
	}

	g := newFarm(cfg, 1, 1)
	g.servers[0].Associations, g.servers[1].Associations = 30, 10
	r := g.step(0, 0)
	if r.Score["a"] != ScoreFair*3/2 || r.Score["b"] != ScoreFair/2 {
		t.Errorf("no packets: Score %v, want a %d, b %d (by associations)", r.Score, ScoreFair*3/2, ScoreFair/2)
	}
	if r := newFarm(cfg, 1, 1).step(0, 0); r.Score["a"] != ScoreFair || r.Score["b"] != ScoreFair || r.Penalty["a"] != ScoreFair*2 {
		t.Errorf("nothing at all: Score %v, Penalty %v, want every score ScoreFair, penalty %d", r.Score, r.Penalty, ScoreFair*2)
	}
}

// TestDisableClears: disabling the alarm by reload clears an active one at
// the next observation.
func TestDisableClears(t *testing.T) {
	cfg := alarmCfg
	cfg.Sustain = 0
	f := newFarm(cfg, 1, 1)
	f.run(3, 900, 100)
	if r := f.step(900, 100); !r.AlarmActive {
		t.Fatalf("fixture: alarm not active")
	}
	cfg.Enabled = false
	f.tr.SetConfig(cfg)
	if r := f.step(900, 100); !r.Cleared || r.AlarmActive || r.AlarmID != "balance-diameter-1" || r.Bias != nil {
		t.Errorf("after disabling: Cleared %v, AlarmActive %v, AlarmID %q, Bias %v, want cleared", r.Cleared, r.AlarmActive, r.AlarmID, r.Bias)
	}
}

// TestBiasNeverAllZero: when every server is above its share in one measure
// or the other, none is excluded.
func TestBiasNeverAllZero(t *testing.T) {
	cfg := alarmCfg
	cfg.Sustain, cfg.Clear = 0, 0.01
	f := newFarm(cfg, 1, 1)
	f.servers[0].Associations, f.servers[1].Associations = 10, 90 // b over on associations
	f.run(2, 900, 100)                                            // a over on packets
	r := f.step(900, 100)
	if !r.AlarmActive || r.Bias["a"] != 1 || r.Bias["b"] != 1 {
		t.Errorf("AlarmActive %v, Bias %v, want active with both at 1", r.AlarmActive, r.Bias)
	}
}
