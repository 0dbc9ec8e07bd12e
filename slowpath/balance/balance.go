// Package balance is the IPFE's connection-balance heuristic for one target
// set: it compares each eligible server's share of the packets (over a
// sliding window) and of the associations (now) with its share of the
// weight, raises an "out of balance" alarm when they deviate for long
// enough, and says how to steer new associations while the alarm lasts. It
// also computes the load scores of the least-load selection methods.
//
// # Shares
//
// Only eligible servers count: those with a weight above 0. A drained
// server still carries traffic on its associations, but it is being emptied
// on purpose, and its packets are left out of every share.
//
// Packet counters are cumulative; a share comes from their growth over the
// window. The Tracker keeps the growth between consecutive observations in
// a ring and sums the intervals that end within the window. A counter that
// went down (a restart) counts nothing for that interval and grows from its
// new value on; a server seen for the first time counts from its first
// observation.
//
// A share needs traffic to mean anything: packet shares count only when the
// window holds at least MinPackets packets to eligible servers. Association
// counts are integers and can only be as even as integers allow, so a
// server's association deviation is measured after one association of
// slack: 2 associations over 3 equal servers are balanced.
//
// # Alarm
//
// The deviation is the largest |share - weight share| over the eligible
// servers, packets and associations both considered. The alarm is raised
// when the deviation has been above Config.Threshold in every observation
// for at least Config.Sustain, and cleared as soon as it is below
// Config.Clear (hysteresis: between the two, an active alarm stays active
// and an inactive one stays inactive). A set too idle to measure has
// deviation 0. Alarms are numbered per Tracker: "balance-<set>-<n>".
//
// # Scores
//
// Score is what slowpath feeds fastpath.LoadSnapshot.Score: a server's
// packet share divided by its weight share, ScoreFair meaning exactly its
// weight share (or the same of its association share when the window has
// too few packets). Penalty is the score one more association adds to a
// server, for fastpath.LoadSnapshot.NewPenalty.
package balance

import (
	"fmt"
	"math"
	"time"
)

// MinPackets is the fewest packets to eligible servers a window must hold
// for packet shares to count.
const MinPackets = 100

// ScoreFair is the Score of a server carrying exactly its weight share.
// Scores saturate at math.MaxUint32, 4096 times the fair share.
const ScoreFair = 1 << 20

// Config is [target_set.balance] (config.Balance converts to it).
type Config struct {
	Enabled   bool          // raise alarms; when false Observe still computes shares and scores
	Threshold float64       // deviation above which the set is out of balance, 0..1
	Clear     float64       // deviation below which an active alarm clears, < Threshold
	Window    time.Duration // span of the packet shares
	Sustain   time.Duration // how long the deviation must stay above Threshold before the alarm
}

// ServerSample is one server of the set at one observation.
type ServerSample struct {
	Key          string  // stable identity across observations, e.g. the address
	Name         string  // label for the caller; not used here
	Weight       float64 // effective weight for new associations; 0 (or less) is ineligible and excluded
	Packets      uint64  // cumulative packets sent to the server
	Associations uint64  // live associations now
}

// Result is one observation's view of the set. Maps are keyed by
// ServerSample.Key and hold the eligible servers only, except Score, which
// holds every server.
type Result struct {
	PacketShare map[string]float64 // share of the window's packets; empty without packets
	AssocShare  map[string]float64 // share of the associations; empty without associations
	WeightShare map[string]float64
	Packets     uint64 // packets to eligible servers in the window
	// Deviation is the largest |share - weight share| over the servers,
	// packet and association shares both considered (see the package
	// documentation for what is measurable).
	Deviation float64
	// Score is each server's load per unit weight for the least-load
	// methods, ScoreFair being its fair share; math.MaxUint32 for an
	// ineligible server.
	Score map[string]uint32
	// Penalty is how much one more association adds to a server's Score:
	// ScoreFair * total weight / (weight * associations). A worker sees only
	// the associations it makes itself, so multiply by the number of
	// workers for fastpath.LoadSnapshot.NewPenalty.
	Penalty map[string]uint32
	// Bias is, while the alarm is active, a factor for each eligible
	// server's weight that steers new associations away from the servers
	// above their share: 0 for a server whose packet or association share
	// exceeds its weight share by more than Clear, 1 for the others; never
	// 0 for all of them. Empty when the alarm is not active.
	Bias map[string]float64

	Raised, Cleared bool   // the alarm was raised, or cleared, by this observation
	AlarmActive     bool   // an alarm is active after this observation
	AlarmID         string // of the active alarm, or of the one this observation cleared
}

// Tracker follows one target set. It is not safe for concurrent use: the
// slow path's control goroutine owns it and calls Observe once per sampling
// period.
type Tracker struct {
	set string
	cfg Config

	last map[string]uint64 // cumulative packets at the previous observation; nil before the first
	ring []interval        // growth between observations, oldest first, within the window

	over      bool      // the deviation was above Threshold at the last observation
	overSince time.Time // since when, if over
	active    bool
	raised    int    // alarms raised so far
	id        string // of the last alarm raised
}

// interval is the packet counters' growth between two observations.
type interval struct {
	end     time.Time
	packets map[string]uint64
}

// NewTracker returns a tracker for the target set named set.
func NewTracker(set string, cfg Config) *Tracker {
	return &Tracker{set: set, cfg: cfg}
}

// SetConfig changes the configuration (a reload) and keeps the window and
// the alarm; disabling clears an active alarm at the next Observe.
func (t *Tracker) SetConfig(cfg Config) { t.cfg = cfg }

// Observe records the servers' counters at now and evaluates the set.
func (t *Tracker) Observe(now time.Time, servers []ServerSample) Result {
	t.record(now, servers)

	r := Result{
		PacketShare: map[string]float64{}, AssocShare: map[string]float64{}, WeightShare: map[string]float64{},
		Score: map[string]uint32{}, Penalty: map[string]uint32{},
	}
	var weight float64
	var assocs uint64
	inWindow := make(map[string]uint64, len(servers))
	for _, s := range servers {
		if !eligible(s) {
			continue
		}
		weight += s.Weight
		assocs += s.Associations
		for _, iv := range t.ring {
			inWindow[s.Key] += iv.packets[s.Key]
		}
		r.Packets += inWindow[s.Key]
	}
	measured := r.Packets >= MinPackets
	over := map[string]float64{} // largest amount by which a server's shares exceed its weight share
	for _, s := range servers {
		if !eligible(s) {
			r.Score[s.Key] = math.MaxUint32
			continue
		}
		ws := s.Weight / weight
		r.WeightShare[s.Key] = ws
		over[s.Key] = math.Inf(-1)
		load := 1.0 // share / weight share: 1 is fair
		if r.Packets > 0 {
			ps := float64(inWindow[s.Key]) / float64(r.Packets)
			r.PacketShare[s.Key] = ps
			if measured {
				r.Deviation = max(r.Deviation, math.Abs(ps-ws))
				over[s.Key] = ps - ws
				load = ps / ws
			}
		}
		if assocs > 0 {
			as := float64(s.Associations) / float64(assocs)
			r.AssocShare[s.Key] = as
			// One association of slack: integers cannot do better.
			d := (math.Abs(float64(s.Associations)-float64(assocs)*ws) - 1) / float64(assocs)
			r.Deviation = max(r.Deviation, d)
			over[s.Key] = max(over[s.Key], (float64(s.Associations)-float64(assocs)*ws-1)/float64(assocs))
			if !measured {
				load = as / ws
			}
		}
		r.Score[s.Key] = scale(load, math.Round)
		r.Penalty[s.Key] = max(1, scale(1/(ws*float64(max(assocs, 1))), math.Ceil))
	}

	t.evaluate(now, &r)
	if t.active {
		r.Bias = make(map[string]float64, len(over))
		kept := 0
		for k, o := range over {
			r.Bias[k] = 1
			if o > t.cfg.Clear {
				r.Bias[k] = 0
			} else {
				kept++
			}
		}
		if kept == 0 {
			for k := range r.Bias {
				r.Bias[k] = 1
			}
		}
	}
	return r
}

// record adds the growth since the previous observation to the ring and
// drops the intervals that ended before the window.
func (t *Tracker) record(now time.Time, servers []ServerSample) {
	cur := make(map[string]uint64, len(servers))
	for _, s := range servers {
		cur[s.Key] = s.Packets
	}
	if t.last != nil {
		iv := interval{end: now, packets: make(map[string]uint64, len(servers))}
		for k, n := range cur {
			// A new server, or a counter that went down, counts from here.
			if prev, ok := t.last[k]; ok && n >= prev {
				iv.packets[k] = n - prev
			}
		}
		t.ring = append(t.ring, iv)
	}
	t.last = cur
	start := now.Add(-t.cfg.Window)
	drop := 0
	for drop < len(t.ring)-1 && !t.ring[drop].end.After(start) {
		drop++
	}
	if drop > 0 {
		t.ring = append(t.ring[:0], t.ring[drop:]...)
	}
}

// evaluate runs the alarm's state machine on r.Deviation.
func (t *Tracker) evaluate(now time.Time, r *Result) {
	if r.Deviation > t.cfg.Threshold {
		if !t.over {
			t.over, t.overSince = true, now
		}
	} else {
		t.over = false
	}
	switch {
	case !t.active && t.cfg.Enabled && t.over && now.Sub(t.overSince) >= t.cfg.Sustain:
		t.active = true
		t.raised++
		t.id = fmt.Sprintf("balance-%s-%d", t.set, t.raised)
		r.Raised = true
	case t.active && (!t.cfg.Enabled || r.Deviation < t.cfg.Clear || r.Deviation == 0):
		t.active = false
		r.Cleared = true
	}
	r.AlarmActive = t.active
	if t.active || r.Cleared {
		r.AlarmID = t.id
	}
}

func eligible(s ServerSample) bool { return s.Weight > 0 && !math.IsInf(s.Weight, 1) }

// scale turns a load ratio (1 = fair) into score units, rounding with
// round and saturating.
func scale(ratio float64, round func(float64) float64) uint32 {
	v := round(ratio * ScoreFair)
	if !(v < math.MaxUint32) {
		return math.MaxUint32
	}
	return uint32(max(v, 0))
}
