package slowpath

import (
	"fmt"
	"maps"
	"math"
	"net/netip"
	"sort"
	"time"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
	"github.com/ipfront/ipfront/slowpath/balance"
	"github.com/ipfront/ipfront/slowpath/config"
)

// samplePeriod is how often the control goroutine measures load: the
// least-load snapshots and the balance heuristic both run on it.
const samplePeriod = time.Second

// maxAlarmHistory bounds the cleared alarms kept for the API.
const maxAlarmHistory = 100

// loadSampler is the control goroutine's load bookkeeping across samples and
// reloads. Readers see the alarms through the copy publishAlarms stores.
type loadSampler struct {
	trackers map[string]*balance.Tracker
	alarms   []Alarm // balance alarms, raised and cleared, oldest first
	// raised counts the alarms of each set since start. It outlives the
	// set's tracker (a reload may remove and re-add the set) and the capped
	// alarm history, so alarm ids never repeat and the metric never falls.
	raised map[string]uint64
	tables map[string]*tableWatch // table-full alarms' state by worker name (alarm_table.go)
	dirty  bool                   // alarms or raised changed since publishAlarms
}

// alarmView is what readers see of the alarms; immutable once stored.
type alarmView struct {
	alarms      []Alarm // active ones first
	raised      map[string]uint64
	tableRaised map[string]uint64 // table-full alarms by worker
}

// publishAlarms stores a copy of the alarms for readers when they changed.
func (d *Daemon) publishAlarms() {
	if !d.samp.dirty {
		return
	}
	v := &alarmView{alarms: make([]Alarm, 0, len(d.samp.alarms)), raised: maps.Clone(d.samp.raised),
		tableRaised: d.samp.tableRaisedCounts()}
	for _, active := range []bool{true, false} {
		for _, a := range d.samp.alarms {
			if a.Active == active {
				v.alarms = append(v.alarms, a)
			}
		}
	}
	d.alarmView.Store(v)
	d.samp.dirty = false
}

// sample measures every target set once: packet and association shares,
// balance alarms, least-load snapshots. It republishes the tables only when
// the balance bias changed. Control goroutine only; it reads counters and
// walks shards without holding any lock.
func (d *Daemon) sample(now time.Time) {
	dp := d.dp()
	t := dp.Tables()
	if t == nil {
		return
	}
	cur := d.cur()
	snap := snapshotPlane(dp)
	workers, c := snap.workers, snap.total
	d.trackTableFull(snap, now)
	// Per-server association counts come from the workers' gauges; only
	// peer groups need a walk of the shards (about 35 ms per million
	// associations), so only sets that use them pay for it.
	var groups []*peerCounts
	for _, ts := range t.Sets() {
		if ts.NumPeerGroups() > 0 {
			groups = countPeerGroups(t, workers)
			break
		}
	}
	if d.samp.trackers == nil {
		d.samp.trackers = map[string]*balance.Tracker{}
	}
	nextBias := map[serverRef]float64{}
	live := map[string]bool{}
	for i := range cur.spec.TargetSets {
		cs := &cur.spec.TargetSets[i]
		live[cs.Name] = true
		ts := t.Set(cur.id.setIDs[cs.Name])
		if ts == nil || ts.Name != cs.Name {
			continue
		}
		tr := d.samp.trackers[cs.Name]
		if tr == nil {
			tr = balance.NewTracker(cs.Name, balance.Config(cs.Balance))
			d.samp.trackers[cs.Name] = tr
		}
		tr.SetConfig(balance.Config(cs.Balance))
		res := tr.Observe(now, samples(cur, cs, ts, c))
		var peer [][fastpath.MaxServers]uint32
		if groups != nil && groups[ts.ID] != nil {
			peer = groups[ts.ID].group
		}
		storeLoad(ts, &res, peer, len(workers))
		d.trackAlarm(cs, &res, now)
		for key, b := range res.Bias {
			if addr, err := netip.ParseAddr(key); err == nil && b != 1 {
				nextBias[serverRef{cs.Name, addr}] = b
			}
		}
	}
	for name := range d.samp.trackers {
		if !live[name] {
			delete(d.samp.trackers, name)
			d.clearAlarms(name, now, "target set removed")
		}
	}
	d.publishAlarms()
	if equalBias(nextBias, cur.bias) {
		return
	}
	next := *cur
	next.bias = nextBias
	d.record(&next, "publish balance bias")
}

// peerCounts is one set's live associations per peer group and server.
type peerCounts struct {
	group [][fastpath.MaxServers]uint32
}

// countPeerGroups walks every worker's shard once and counts, for each set
// with peer groups, the associations of each group on each server that
// still holds them (present, same generation, not being re-selected).
func countPeerGroups(t *fastpath.Tables, workers []PlaneWorker) []*peerCounts {
	out := make([]*peerCounts, fastpath.MaxSets)
	for _, ts := range t.Sets() {
		if n := ts.NumPeerGroups(); n > 0 {
			out[ts.ID] = &peerCounts{group: make([][fastpath.MaxServers]uint32, n)}
		}
	}
	for _, w := range workers {
		w.Assoc.Range(func(k assoc.Key, v assoc.Value) bool {
			pc := out[k.Set]
			if k.Kind != assoc.KindFlow || pc == nil {
				return true
			}
			ts := t.Set(k.Set)
			s := v.Server & (fastpath.MaxServers - 1)
			if srv := &ts.Servers[s]; !srv.Present || srv.Gen != v.Gen || srv.Reselect {
				return true
			}
			if g, ok := ts.PeerGroup(&k.Addr); ok {
				pc.group[g][s]++
			}
			return true
		})
	}
	return out
}

// samples builds the balance input of one set: weights after drain and
// health but before the balance bias, so the alarm does not feed on its own
// output.
func samples(st *state, cs *config.TargetSet, ts *fastpath.TargetSet, c *fastpath.Counters) []balance.ServerSample {
	byAddr := map[netip.Addr]*config.Server{}
	for i := range cs.Servers {
		byAddr[cs.Servers[i].Address] = &cs.Servers[i]
	}
	var out []balance.ServerSample
	for slot := range ts.Servers {
		s := &ts.Servers[slot]
		cfg := byAddr[s.Addr]
		if !s.Present || cfg == nil {
			continue
		}
		w, _ := st.baseWeight(cs, cfg)
		j := int(ts.ID)*fastpath.MaxServers + slot
		out = append(out, balance.ServerSample{Key: s.Addr.String(), Name: s.Name, Weight: float64(w),
			Packets: c.ServerPackets[j], Associations: uint64(max(c.ServerAssociations[j], 0))})
	}
	return out
}

// storeLoad publishes the least-load snapshot of a set that uses one.
func storeLoad(ts *fastpath.TargetSet, res *balance.Result, groups [][fastpath.MaxServers]uint32, workers int) {
	if ts.Load == nil {
		return
	}
	snap := &fastpath.LoadSnapshot{GroupAssoc: groups}
	for slot := range ts.Servers {
		snap.Score[slot] = math.MaxUint32
		if !ts.Servers[slot].Present {
			continue
		}
		key := ts.Servers[slot].Addr.String()
		if sc, ok := res.Score[key]; ok {
			snap.Score[slot] = sc
		}
		snap.NewPenalty[slot] = uint32(min(uint64(res.Penalty[key])*uint64(max(workers, 1)), math.MaxUint32))
	}
	ts.Load.Store(snap)
}

// trackAlarm records and logs the alarm edges of one observation.
func (d *Daemon) trackAlarm(cs *config.TargetSet, res *balance.Result, now time.Time) {
	if !res.Raised && !res.Cleared && !res.AlarmActive {
		return
	}
	servers := alarmServers(res, cs)
	if d.samp.raised == nil {
		d.samp.raised = map[string]uint64{}
	}
	d.samp.dirty = true
	switch {
	case res.Raised:
		d.samp.raised[cs.Name]++
		id := fmt.Sprintf("balance-%s-%d", cs.Name, d.samp.raised[cs.Name])
		d.samp.alarms = append(d.samp.alarms, Alarm{ID: id, Kind: v1.AlarmBalance, Set: cs.Name, Active: true, Raised: now, Deviation: res.Deviation, Servers: servers})
		ev := d.log.Warn().Str("alarm", id).Str("target_set", cs.Name).Float64("deviation", res.Deviation)
		for _, s := range servers {
			ev = ev.Str("server_"+s.Name, fmt.Sprintf("packets=%.3f assoc=%.3f weight=%.3f", s.PacketShare, s.AssocShare, s.WeightShare))
		}
		ev.Msg("balance alarm raised: new associations go to under-loaded servers")
	case res.Cleared:
		for i := range d.samp.alarms {
			if d.samp.alarms[i].Set == cs.Name && d.samp.alarms[i].Active {
				d.samp.alarms[i].Deviation, d.samp.alarms[i].Servers = res.Deviation, servers
			}
		}
		d.clearAlarms(cs.Name, now, "deviation below clear")
	default:
		for i := range d.samp.alarms {
			if d.samp.alarms[i].Set == cs.Name && d.samp.alarms[i].Active {
				d.samp.alarms[i].Deviation, d.samp.alarms[i].Servers = res.Deviation, servers
			}
		}
	}
	d.trimAlarms()
}

// clearAlarms ends every active alarm of a set and logs it.
func (d *Daemon) clearAlarms(set string, now time.Time, why string) {
	for i := range d.samp.alarms {
		a := &d.samp.alarms[i]
		if a.Kind != v1.AlarmBalance || a.Set != set || !a.Active {
			continue
		}
		a.Active, a.Cleared = false, now
		d.samp.dirty = true
		d.log.Info().Str("alarm", a.ID).Str("target_set", set).Float64("deviation", a.Deviation).Str("why", why).Msg("balance alarm cleared")
	}
}

// AlarmsRaised is the number of balance alarms raised per target set since
// start, removed sets included.
func (d *Daemon) AlarmsRaised() map[string]uint64 {
	out := map[string]uint64{}
	if v := d.alarmView.Load(); v != nil {
		maps.Copy(out, v.raised)
	}
	return out
}

func alarmServers(res *balance.Result, cs *config.TargetSet) []AlarmServer {
	var out []AlarmServer
	for _, s := range cs.Servers {
		key := s.Address.String()
		if _, ok := res.WeightShare[key]; !ok {
			continue
		}
		out = append(out, AlarmServer{Name: s.Name, Address: key, WeightShare: res.WeightShare[key],
			PacketShare: res.PacketShare[key], AssocShare: res.AssocShare[key]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

func equalBias(a, b map[serverRef]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
