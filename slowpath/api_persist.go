package slowpath

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
	"github.com/ipfront/ipfront/slowpath/config"
)

// errNotPersistent reports a ?set= naming a set without persistence.
var errNotPersistent = errors.New("not persistent")

// persistence serves GET /v1/persistence (?set=, ?client=).
func (a *API) persistence(w http.ResponseWriter, r *http.Request) {
	p := a.plane()
	if p == nil {
		writeError(w, http.StatusServiceUnavailable, ErrNotRunning)
		return
	}
	snap := snapshotPlane(p)
	groups := persistGroups(snap.tables, a.b.Spec())
	q := persistQuery{group: -1}
	if name := r.URL.Query().Get("set"); name != "" {
		ts := findTableSet(snap.tables, name)
		switch {
		case ts == nil:
			writeError(w, http.StatusNotFound, fmt.Errorf("no target set %q: %w", name, ErrUnknownServer))
			return
		case ts.Persist == nil:
			writeError(w, http.StatusNotFound, fmt.Errorf("target set %q: %w (no persistence = \"client\", in no persistence group)", name, errNotPersistent))
			return
		}
		q.group = int(ts.Persist.Group)
	}
	if s := r.URL.Query().Get("client"); s != "" {
		c, err := netip.ParseAddr(s)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("client %q is not an IP address", s))
			return
		}
		q.client, q.hasClient = c.Unmap().As16(), true // IPv4 in IPv4-mapped form, as in keys
	}
	writeJSON(w, http.StatusOK, v1.Persistence{Counters: persistCounters(snap.total),
		Records: listPersistence(snap.workers, groups, q, assoc.Now())})
}

// persistCounters picks the persistence counters out of the workers' sum.
func persistCounters(c *fastpath.Counters) v1.PersistenceCounters {
	return v1.PersistenceCounters{Made: c.PersistMade, Found: c.PersistFound, Full: c.PersistFull,
		Expired: c.PersistExpired, OwnedPort: c.OwnedPort}
}

// persistQuery is a parsed GET /v1/persistence.
type persistQuery struct {
	group     int // group id, -1 for any
	client    [16]byte
	hasClient bool
}

// findTableSet returns the target set called name in t, or nil.
func findTableSet(t *fastpath.Tables, name string) *fastpath.TargetSet {
	if t == nil {
		return nil
	}
	for _, ts := range t.Sets() {
		if ts.Name == name {
			return ts
		}
	}
	return nil
}

// persistGroup is one persistence group as the tables hold it.
type persistGroup struct {
	name    string
	sets    []*fastpath.TargetSet // in configuration order
	persist fastpath.Persistence  // of its first member; every member's is the same
}

// persistGroups indexes the persistence groups of t by id, with their
// names and members from spec (in its order; sets spec does not know come
// last, named after the set).
func persistGroups(t *fastpath.Tables, spec *config.Spec) map[uint16]*persistGroup {
	out := map[uint16]*persistGroup{}
	if t == nil {
		return out
	}
	add := func(ts *fastpath.TargetSet, name string) {
		g := out[ts.Persist.Group]
		if g == nil {
			g = &persistGroup{name: name, persist: *ts.Persist}
			out[ts.Persist.Group] = g
		}
		if !slices.Contains(g.sets, ts) {
			g.sets = append(g.sets, ts)
		}
	}
	for i := range spec.TargetSets {
		cs := &spec.TargetSets[i]
		if ts := findTableSet(t, cs.Name); ts != nil && ts.Persist != nil {
			name := cs.Name
			if cs.Persistence != nil && cs.Persistence.Group != "" {
				name = cs.Persistence.Group
			}
			add(ts, name)
		}
	}
	for _, ts := range t.Sets() {
		if ts.Persist != nil {
			add(ts, ts.Name) // a generation newer than the spec read: named after its set
		}
	}
	return out
}

// clientKey masks a client address (16 bytes, IPv4-mapped for IPv4) to the
// group's prefix, as the workers key persistence records.
func (g *persistGroup) clientKey(a [16]byte) netip.Prefix {
	addr := netip.AddrFrom16(a)
	if addr.Is4In6() {
		p, _ := addr.Unmap().Prefix(int(g.persist.V4Bits))
		return p
	}
	p, _ := addr.Prefix(int(g.persist.V6Bits))
	return p
}

// server returns the member server with address id id: its name in the
// first member listing it and its address.
func (g *persistGroup) server(id uint32) (name, addr string) {
	for _, ts := range g.sets {
		for i := range ts.Servers {
			if s := &ts.Servers[i]; s.Present && s.AddrID == id {
				return s.Name, s.Addr.String()
			}
		}
	}
	return "", ""
}

// recordKey identifies one listed record: copies of it in several shards
// are merged. The server is part of it: two workers whose first flows of a
// client raced may hold different choices, and both are shown.
type recordKey struct {
	group  uint16
	client netip.Prefix
	server uint32 // AddrID
}

// listPersistence walks every shard once: it merges the live persistence
// records of each client (one copy per worker that saw it) and counts the
// client's flow associations in the group's sets. Records whose timeout has
// passed but that no sweep has removed yet are no longer honoured and are
// left out.
func listPersistence(workers []PlaneWorker, groups map[uint16]*persistGroup, q persistQuery, now uint32) []v1.PersistenceRecord {
	recs := map[recordKey]*v1.PersistenceRecord{}
	flows := map[recordKey]int{}
	setGroup := map[uint16]uint16{} // set id -> group id
	for id, g := range groups {
		for _, ts := range g.sets {
			setGroup[ts.ID] = id
		}
	}
	wanted := func(gid uint16, g *persistGroup, client netip.Prefix) bool {
		if q.group >= 0 && int(gid) != q.group {
			return false
		}
		return !q.hasClient || client == g.clientKey(q.client)
	}
	for i := range workers {
		workers[i].Assoc.Range(func(k assoc.Key, v assoc.Value) bool {
			switch k.Kind {
			case assoc.KindPersist:
				g := groups[k.Set]
				if g == nil {
					return true // its group is gone: expires at the next sweep
				}
				age := assoc.Age(now, v.LastSeen)
				client := g.clientKey(k.Addr)
				if age > g.persist.Timeout || !wanted(k.Set, g, client) {
					return true
				}
				rk := recordKey{k.Set, client, v.Tag}
				r := recs[rk]
				if r == nil {
					r = &v1.PersistenceRecord{Group: g.name, Sets: []string{}, Client: client.String(), Age: age}
					r.Server, r.Address = g.server(v.Tag)
					for _, ts := range g.sets {
						r.Sets = append(r.Sets, ts.Name)
					}
					recs[rk] = r
				}
				r.Workers++
				r.Age = min(r.Age, age)
				r.ExpiresIn = g.persist.Timeout - r.Age
			case assoc.KindFlow:
				gid, ok := setGroup[k.Set]
				if !ok {
					return true
				}
				g := groups[gid]
				ts := g.sets[slices.IndexFunc(g.sets, func(ts *fastpath.TargetSet) bool { return ts.ID == k.Set })]
				s := &ts.Servers[v.Server&(fastpath.MaxServers-1)]
				if s.Present && s.Gen == v.Gen {
					flows[recordKey{gid, g.clientKey(k.Addr), s.AddrID}]++
				}
			}
			return true
		})
	}
	out := make([]v1.PersistenceRecord, 0, len(recs))
	for rk, r := range recs {
		r.Flows = flows[rk]
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b v1.PersistenceRecord) int {
		if c := strings.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		pa, pb := netip.MustParsePrefix(a.Client), netip.MustParsePrefix(b.Client)
		if c := pa.Addr().Compare(pb.Addr()); c != 0 {
			return c
		}
		if c := pa.Bits() - pb.Bits(); c != 0 {
			return c
		}
		return strings.Compare(a.Address, b.Address)
	})
	return out
}

// Persistence metric descriptions.
var (
	descPersistMade    = prometheus.NewDesc("ipfront_persistence_records_made_total", "Persistence records written with a new choice (a client's first flow, or its server left or its record expired).", nil, nil)
	descPersistFound   = prometheus.NewDesc("ipfront_persistence_records_found_total", "New associations a live persistence record sent to the client's server.", nil, nil)
	descPersistFull    = prometheus.NewDesc("ipfront_persistence_records_full_total", "Choices not recorded: the worker's share of max_persistence_records was used up (the flow was balanced on its own).", nil, nil)
	descPersistExpired = prometheus.NewDesc("ipfront_persistence_records_expired_total", "Persistence records forgotten after their timeout, each worker's copy counted.", nil, nil)
	descOwnedPort      = prometheus.NewDesc("ipfront_owned_port_associations_total", "Packets an owned destination port sent to its server (owned ports are routed without an association; the name is kept for dashboards).", nil, nil)

	persistDescs = []*prometheus.Desc{descPersistMade, descPersistFound, descPersistFull, descPersistExpired, descOwnedPort}
)

// persistCollector exports the workers' persistence and port-ownership
// counters.
type persistCollector struct{ plane func() Plane }

// Describe sends every persistence metric's description.
func (c persistCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range persistDescs {
		ch <- d
	}
}

// Collect reads the workers' published counters.
func (c persistCollector) Collect(ch chan<- prometheus.Metric) {
	total := new(fastpath.Counters)
	if p := c.plane(); p != nil {
		total = snapshotPlane(p).total
	}
	r := persistCounters(total)
	for _, m := range []struct {
		d *prometheus.Desc
		v uint64
	}{{descPersistMade, r.Made}, {descPersistFound, r.Found}, {descPersistFull, r.Full},
		{descPersistExpired, r.Expired}, {descOwnedPort, r.OwnedPort}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
	}
}
