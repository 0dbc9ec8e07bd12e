package slowpath

import (
	"fmt"
	"net/netip"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
)

// Plane is what the API and the metrics read from the data plane. Every
// method may be called from any goroutine and never makes a worker wait.
// FastPlane adapts a running *fastpath.Dataplane; tests use a fake.
type Plane interface {
	Interfaces() []fastpath.Interface
	Workers() []PlaneWorker
	Tables() *fastpath.Tables // nil before the first publication
	SteeringStats() (fastpath.SteeringCounts, error)
}

// PlaneWorker is one worker as readers see it.
type PlaneWorker struct {
	Interface string
	Queue     int
	CPU       int // -1: not pinned
	// Snapshot copies the worker's published counters into out.
	Snapshot func(out *fastpath.Counters)
	Assoc    AssocTable
	// Rings reads the depth of the worker's rings with the slow path; nil
	// where the plane cannot tell (fakes). metrics_ops.go exports it.
	Rings func() fastpath.RingOccupancy
}

// Name labels the worker in replies and metrics: "interface/queue".
func (w *PlaneWorker) Name() string { return fmt.Sprintf("%s/%d", w.Interface, w.Queue) }

// AssocTable is the read side of a worker's association shard;
// *assoc.Shard implements it.
type AssocTable interface {
	Live() int
	Limit() int
	Range(fn func(assoc.Key, assoc.Value) bool)
}

type dataplanePlane struct{ dp *fastpath.Dataplane }

func (p dataplanePlane) Interfaces() []fastpath.Interface { return p.dp.Interfaces() }
func (p dataplanePlane) Tables() *fastpath.Tables         { return p.dp.Tables() }
func (p dataplanePlane) SteeringStats() (fastpath.SteeringCounts, error) {
	return p.dp.SteeringStats()
}

func (p dataplanePlane) Workers() []PlaneWorker {
	ws := p.dp.Workers()
	out := make([]PlaneWorker, len(ws))
	for i, w := range ws {
		e := w.Engine()
		out[i] = PlaneWorker{Interface: w.Interface, Queue: w.Queue, CPU: w.CPU, Snapshot: e.Snapshot, Assoc: e.Shard(), Rings: w.RingOccupancy}
	}
	return out
}

// planeSnapshot is one reading of every worker's counters, taken together
// so that one reply adds up.
type planeSnapshot struct {
	workers []PlaneWorker
	per     []*fastpath.Counters // by worker
	total   *fastpath.Counters
	tables  *fastpath.Tables // may be nil
}

func snapshotPlane(p Plane) *planeSnapshot {
	s := &planeSnapshot{workers: p.Workers(), total: new(fastpath.Counters), tables: p.Tables()}
	s.per = make([]*fastpath.Counters, len(s.workers))
	for i := range s.workers {
		c := new(fastpath.Counters)
		s.workers[i].Snapshot(c)
		s.per[i] = c
		s.total.Add(c)
	}
	return s
}

// serverIndex is the counter index (set id * MaxServers + slot) of a
// configured server in a table generation.
type serverIndex map[serverRef]int

func indexServers(t *fastpath.Tables) serverIndex {
	idx := serverIndex{}
	if t == nil {
		return idx
	}
	for _, ts := range t.Sets() {
		for slot := range ts.Servers {
			if s := &ts.Servers[slot]; s.Present {
				idx[serverRef{ts.Name, s.Addr}] = int(ts.ID)*fastpath.MaxServers + slot
			}
		}
	}
	return idx
}

// lookup returns the counter index of the server at addr in set, if the
// tables hold it.
func (si serverIndex) lookup(set string, addr netip.Addr) (int, bool) {
	j, ok := si[serverRef{set, addr}]
	return j, ok
}

// assocCounts are associations counted over every shard.
type assocCounts struct {
	bySet    [fastpath.MaxSets]int                       // every association of a set
	byServer [fastpath.MaxSets * fastpath.MaxServers]int // those whose slot still holds the server they were made for
}

// countAssociations walks every shard once. Its cost is a read of every
// slot, so it runs per request, never per scrape.
func countAssociations(workers []PlaneWorker, t *fastpath.Tables) *assocCounts {
	c := new(assocCounts)
	if t == nil {
		return c
	}
	for _, w := range workers {
		w.Assoc.Range(func(k assoc.Key, v assoc.Value) bool {
			ts := t.Set(k.Set)
			if ts == nil || k.Kind != assoc.KindFlow {
				// Set removed: expires at its next sweep. Other kinds are
				// no flows (a persistence record's Set is a group).
				return true
			}
			c.bySet[k.Set]++
			slot := int(v.Server) & (fastpath.MaxServers - 1)
			if s := &ts.Servers[slot]; s.Present && s.Gen == v.Gen {
				c.byServer[int(k.Set)*fastpath.MaxServers+slot]++
			}
			return true
		})
	}
	return c
}
