package slowpath

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/ipfront/ipfront/fastpath"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// The table-full alarm watches each worker's association shard. While a
// shard is under pressure the fast path keeps serving (new flows go by the
// Maglev hash without an association, established ones never move), but
// such flows move when the Maglev table changes, so the operator must know.
//
// At every sampling interval (samplePeriod) a worker is under pressure if
//   - its unproven associations hold their limit (half the shard: openings
//     then go without an association, FloodStateless),
//   - its shard holds its capacity, or
//   - it forwarded flows without an association since the last interval
//     (its Stateless counter grew; FloodStateless is a part of it).
//
// The first interval under pressure raises the worker's alarm; it clears
// once no interval showed pressure for tableFullHold.

// AlarmTableFull is the kind of a worker's table-full alarm.
const AlarmTableFull = v1.AlarmTableFull

// AlarmTable is a table-full alarm's reading of its worker's shard.
type AlarmTable = v1.AlarmTable

// tableFullHold is how long a worker must show no pressure before its
// table-full alarm clears. A flood that pauses for a few seconds (a
// generator's bursts, a restarted attack) then keeps one alarm instead of
// a series of raises and clears, while the end of an attack still shows
// within seconds of the unproven associations' syn_age.
const tableFullHold = 10 * time.Second

// Causes of a table-full alarm (AlarmTable.Causes).
const (
	causeUnprovenFull = "unproven_full"
	causeShardFull    = "shard_full"
	causeStateless    = "stateless"
)

// unprovenLimit is how many unproven associations a shard of limit records
// holds at most: the fast path's (fastpath.UnprovenLimit).
func unprovenLimit(limit int) uint64 { return uint64(fastpath.UnprovenLimit(limit)) }

// tableWatch is the table-full bookkeeping of one worker across samples.
type tableWatch struct {
	based        bool   // stateless and flood hold a reading
	stateless    uint64 // the worker's Stateless at the last sample
	flood        uint64 // its FloodStateless at the last sample
	lastPressure time.Time
	active       string   // id of the raised alarm, "" while none
	causes       []string // seen since the alarm was raised
	raisedTotal  uint64   // alarms raised since start: ids never repeat
}

// trackTableFull evaluates every worker's shard once per sample, raising
// and clearing table-full alarms and logging each edge. Control goroutine
// only.
func (d *Daemon) trackTableFull(snap *planeSnapshot, now time.Time) {
	if d.samp.tables == nil {
		d.samp.tables = map[string]*tableWatch{}
	}
	for i := range snap.workers {
		wk, c := &snap.workers[i], snap.per[i]
		name := wk.Name()
		w := d.samp.tables[name]
		if w == nil {
			w = &tableWatch{}
			d.samp.tables[name] = w
		}
		limit, live := wk.Assoc.Limit(), wk.Assoc.Live()
		tab := AlarmTable{Associations: live, Capacity: limit, Unproven: c.Unproven, UnprovenLimit: unprovenLimit(limit)}
		if w.based {
			// Counters only grow while the data plane runs; a smaller
			// reading would be a new data plane, whose first reading is
			// a base like the daemon's first.
			if c.Stateless >= w.stateless {
				tab.Stateless = c.Stateless - w.stateless
			}
			if c.FloodStateless >= w.flood {
				tab.FloodStateless = c.FloodStateless - w.flood
			}
		}
		w.based, w.stateless, w.flood = true, c.Stateless, c.FloodStateless

		var causes []string
		if tab.UnprovenLimit > 0 && tab.Unproven >= tab.UnprovenLimit {
			causes = append(causes, causeUnprovenFull)
		}
		if limit > 0 && live >= limit {
			causes = append(causes, causeShardFull)
		}
		if tab.Stateless > 0 || tab.FloodStateless > 0 {
			causes = append(causes, causeStateless)
		}
		switch {
		case len(causes) > 0 && w.active == "":
			w.lastPressure = now
			d.raiseTableFull(name, w, causes, tab, now)
		case len(causes) > 0:
			w.lastPressure = now
			for _, c := range causes {
				if !slices.Contains(w.causes, c) {
					w.causes = append(w.causes, c)
				}
			}
			d.updateTableFull(w, tab)
		case w.active != "" && now.Sub(w.lastPressure) >= tableFullHold:
			d.updateTableFull(w, tab)
			d.clearTableFull(name, w, now)
		case w.active != "":
			d.updateTableFull(w, tab)
		}
	}
}

// raiseTableFull records and logs a new alarm for worker name.
func (d *Daemon) raiseTableFull(name string, w *tableWatch, causes []string, tab AlarmTable, now time.Time) {
	w.raisedTotal++
	w.active = fmt.Sprintf("table-full-%s-%d", name, w.raisedTotal)
	w.causes = slices.Clone(causes)
	tab.Causes = slices.Clone(w.causes)
	d.samp.alarms = append(d.samp.alarms, Alarm{ID: w.active, Kind: AlarmTableFull, Active: true, Raised: now,
		Servers: []AlarmServer{}, Worker: name, Table: &tab})
	d.samp.dirty = true
	d.trimAlarms()
	d.publishAlarms() // whoever reads the log line and asks the API sees the alarm
	d.log.Warn().Str("alarm", w.active).Str("worker", name).Str("causes", strings.Join(causes, ",")).
		Int("associations", tab.Associations).Int("capacity", tab.Capacity).
		Uint64("unproven", tab.Unproven).Uint64("unproven_limit", tab.UnprovenLimit).
		Uint64("stateless", tab.Stateless).Uint64("flood_stateless", tab.FloodStateless).
		Msg("table-full alarm raised: new flows go by the hash without an association; established ones keep their server")
}

// updateTableFull stores the latest reading in w's active alarm.
func (d *Daemon) updateTableFull(w *tableWatch, tab AlarmTable) {
	tab.Causes = slices.Clone(w.causes)
	for i := range d.samp.alarms {
		if a := &d.samp.alarms[i]; a.ID == w.active && a.Active {
			a.Table = &tab
			d.samp.dirty = true
		}
	}
}

// clearTableFull ends w's active alarm and logs it.
func (d *Daemon) clearTableFull(name string, w *tableWatch, now time.Time) {
	for i := range d.samp.alarms {
		a := &d.samp.alarms[i]
		if a.ID != w.active || !a.Active {
			continue
		}
		a.Active, a.Cleared = false, now
		d.samp.dirty = true
		d.publishAlarms() // whoever reads the log line and asks the API sees it cleared
		d.log.Info().Str("alarm", a.ID).Str("worker", name).Str("causes", strings.Join(w.causes, ",")).
			Dur("quiet", now.Sub(w.lastPressure)).Msg("table-full alarm cleared")
	}
	w.active, w.causes = "", nil
}

// trimAlarms keeps at most maxAlarmHistory alarms, forgetting the oldest
// cleared ones first so that an active alarm never disappears.
func (d *Daemon) trimAlarms() {
	excess := len(d.samp.alarms) - maxAlarmHistory
	if excess <= 0 {
		return
	}
	kept := make([]Alarm, 0, maxAlarmHistory)
	for _, a := range d.samp.alarms {
		if excess > 0 && !a.Active {
			excess--
			continue
		}
		kept = append(kept, a)
	}
	d.samp.alarms = kept
}

// TableFullRaised is the number of table-full alarms raised per worker
// ("interface/queue") since start.
func (d *Daemon) TableFullRaised() map[string]uint64 {
	out := map[string]uint64{}
	if v := d.alarmView.Load(); v != nil {
		maps.Copy(out, v.tableRaised)
	}
	return out
}

// tableRaisedCounts is what publishAlarms stores for TableFullRaised.
func (s *loadSampler) tableRaisedCounts() map[string]uint64 {
	out := make(map[string]uint64, len(s.tables))
	for name, w := range s.tables {
		out[name] = w.raisedTotal
	}
	return out
}

// defencesOf is the API's view of a worker's (or the totals') defence
// counters; limit is the shard capacity (summed for totals).
func defencesOf(c *fastpath.Counters, unprovenLim uint64) v1.Defences {
	return v1.Defences{Unproven: c.Unproven, UnprovenLimit: unprovenLim, FloodStateless: c.FloodStateless,
		TeardownIgnored: c.TeardownIgnored, SCTPTagMismatch: c.SCTPTagMismatch, PartialChecksum: c.PartialChecksum}
}
