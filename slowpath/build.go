package slowpath

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/maglev"
	"github.com/ipfront/ipfront/slowpath/config"
)

// Identity is the numbering associations depend on, kept stable across
// reloads so that an association always means the server it was made for:
//
//   - a target set keeps its id as long as its name exists. A removed set's id
//     is quarantined for its delete age (plus a second of clock granularity),
//     after which its associations are stale, and a new set prefers ids no set
//     ever had: a new set never adopts an old one's associations or counters;
//   - a server keeps its slot as long as its address stays in the set;
//   - every slot assignment gets a generation from one daemon-wide counter
//     (1..maxGen, 0 is never used), so an association naming a slot and a
//     generation cannot follow the slot to another server, in its own set or
//     in a set that later gets the same id.
//
// When the counter wraps, generations held by present servers are skipped.
// The residual risk is an association made for a server that left its slot
// more than maxGen assignments ago, still younger than its delete age, whose
// set id and slot are given exactly its old generation again: it then
// follows the slot to the new server. Reaching it takes over a million server
// changes within one delete age.
//
// An Identity is immutable once Build returned it: Build works on a copy and
// returns the new numbering, which the caller adopts only when the tables
// built with it were published. A failed build or publication therefore
// changes nothing.
type Identity struct {
	setIDs  map[string]uint16
	ages    map[string]time.Duration // delete age of each set when last built, for its quarantine
	everSet [fastpath.MaxSets]bool   // ids ever handed out; new sets prefer the others
	retired map[uint16]time.Time     // ids of removed sets, quarantined until the time given
	slots   map[string]slotState
	loads   map[string]*fastpath.LoadCell // least-load snapshots, kept across generations
	lastGen uint32                        // last server generation handed out
	wrapped bool                          // lastGen went past maxGen at least once
	persist persistIdentity               // persistence group and server address ids (build_persist.go)
}

type slotState struct {
	addr [fastpath.MaxServers]netip.Addr // current or last occupant
	used [fastpath.MaxServers]bool
	gen  [fastpath.MaxServers]uint32
}

// maxGen is the largest server generation an association record holds.
const maxGen = assoc.MaxGen

// quarantineSlack covers the association clock's whole-second granularity:
// an association is stale one second after its delete age at the latest.
const quarantineSlack = time.Second

// ErrNumbering reports that no set id or server generation is free.
var ErrNumbering = errors.New("numbering exhausted")

// NewIdentity returns an empty numbering.
func NewIdentity() *Identity {
	return &Identity{setIDs: map[string]uint16{}, ages: map[string]time.Duration{}, retired: map[uint16]time.Time{},
		slots: map[string]slotState{}, loads: map[string]*fastpath.LoadCell{}}
}

// clone returns a copy Build may change; LoadCells are shared, as they are
// what workers of both generations read.
func (id *Identity) clone() *Identity {
	c := *id
	c.setIDs = maps.Clone(id.setIDs)
	c.ages = maps.Clone(id.ages)
	c.retired = maps.Clone(id.retired)
	c.slots = maps.Clone(id.slots)
	c.loads = maps.Clone(id.loads)
	c.persist = id.persist.clone()
	return &c
}

// MACFunc answers the resolved link-layer address of a server as seen from
// interface number iface, if known.
type MACFunc func(iface int, addr netip.Addr) ([6]byte, bool)

// PolicyFunc adjusts a configured server for the slow path's run-time state
// (admin drain, health, balance): the Maglev weight new flows see, and
// whether its existing associations must move on their next packet. Nil
// means the configuration as written.
type PolicyFunc func(set *config.TargetSet, srv *config.Server) (weight uint32, reselect bool)

// Inputs is everything a table generation is built from besides the spec.
type Inputs struct {
	Interfaces int        // number of data-plane interfaces
	MACs       MACFunc    // resolved server MACs
	Policy     PolicyFunc // run-time adjustments; nil for none
	Generation uint64
	Now        time.Time // when the tables are published: starts the quarantine of removed sets' ids
	// NAT resolves where NAT sets' frames leave (route.go); nil leaves
	// their servers unresolved and their replies unroutable.
	NAT NATResolver
	// Seed keys every set's flow hash (the daemon's, resolved once per
	// start); zero: maglev.Unkeyed.
	Seed maglev.Seed
}

// Build turns a validated spec into one generation of fast-path tables and
// the numbering they use. It changes neither spec nor id: the caller adopts
// the returned Identity once the tables are published, and keeps id if
// anything fails.
func Build(spec *config.Spec, id *Identity, in Inputs) (*fastpath.Tables, *Identity, error) {
	if len(spec.TargetSets) > fastpath.MaxSets {
		return nil, nil, fmt.Errorf("%d target sets; at most %d are supported", len(spec.TargetSets), fastpath.MaxSets)
	}
	next := id.clone()
	if err := next.assignSetIDs(spec, in.Now); err != nil {
		return nil, nil, err
	}
	if err := next.persist.assign(spec, in.Now); err != nil {
		return nil, nil, err
	}
	sets := make([]*fastpath.TargetSet, 0, len(spec.TargetSets))
	for i := range spec.TargetSets {
		cs := &spec.TargetSets[i]
		ts, err := next.buildSet(cs, in)
		if err != nil {
			return nil, nil, fmt.Errorf("target set %q: %w", cs.Name, err)
		}
		sets = append(sets, ts)
	}
	t, err := fastpath.NewTables(in.Generation, sets)
	if err != nil {
		return nil, nil, err
	}
	t.AllowVLANs(spec.Dataplane.VLANs)
	if in.NAT != nil && hasNAT(spec) {
		t.Routes = in.NAT.Routes()
	}
	return t, next, nil
}

// assignSetIDs keeps the ids of surviving names, quarantines the ids of
// removed ones and gives new names ids, so removing a set never renumbers
// the others and never hands its id to a newcomer while its associations
// may live.
func (id *Identity) assignSetIDs(spec *config.Spec, now time.Time) error {
	keep := map[string]bool{}
	for _, ts := range spec.TargetSets {
		keep[ts.Name] = true
	}
	for name, v := range id.setIDs {
		if !keep[name] {
			id.retired[v] = now.Add(id.ages[name] + quarantineSlack)
			delete(id.setIDs, name)
			delete(id.ages, name)
			delete(id.slots, name)
			delete(id.loads, name)
		}
	}
	taken := map[uint16]bool{}
	for _, v := range id.setIDs {
		taken[v] = true
	}
	for _, ts := range spec.TargetSets {
		if _, ok := id.setIDs[ts.Name]; !ok {
			v, err := id.freeSetID(taken, now)
			if err != nil {
				return fmt.Errorf("target set %q: %w", ts.Name, err)
			}
			id.setIDs[ts.Name], id.everSet[v], taken[v] = v, true, true
			delete(id.retired, v)
		}
		id.ages[ts.Name] = ts.DeleteAge
	}
	return nil
}

// freeSetID returns the lowest id no set ever had or, when every id has
// been used, the one whose quarantine ended first.
func (id *Identity) freeSetID(taken map[uint16]bool, now time.Time) (uint16, error) {
	for v := range fastpath.MaxSets {
		if !id.everSet[v] && !taken[uint16(v)] {
			return uint16(v), nil
		}
	}
	best, found := uint16(0), false
	for v := range fastpath.MaxSets {
		until, retired := id.retired[uint16(v)]
		if taken[uint16(v)] || (retired && now.Before(until)) {
			continue
		}
		if !found || (retired && until.Before(id.retired[best])) {
			best, found = uint16(v), true
		}
	}
	if !found {
		return 0, fmt.Errorf("every target set id is in use or quarantined for a removed set's delete age: %w", ErrNumbering)
	}
	return best, nil
}

// nextGen draws the next server generation from the daemon-wide counter,
// skipping, once it wrapped, those that present servers hold.
func (id *Identity) nextGen() (uint32, error) {
	var inUse map[uint32]bool
	for range maxGen {
		id.lastGen++
		if id.lastGen > maxGen {
			id.lastGen, id.wrapped = 1, true
		}
		if !id.wrapped {
			return id.lastGen, nil
		}
		if inUse == nil {
			inUse = id.gensInUse()
		}
		if !inUse[id.lastGen] {
			return id.lastGen, nil
		}
	}
	return 0, fmt.Errorf("every server generation is in use: %w", ErrNumbering)
}

func (id *Identity) gensInUse() map[uint32]bool {
	out := map[uint32]bool{}
	for _, st := range id.slots {
		for s := range st.used {
			if st.used[s] {
				out[st.gen[s]] = true
			}
		}
	}
	return out
}

func (id *Identity) buildSet(cs *config.TargetSet, in Inputs) (*fastpath.TargetSet, error) {
	ts := &fastpath.TargetSet{
		ID:        id.setIDs[cs.Name],
		Name:      cs.Name,
		VIP:       cs.Address.As16(),
		DeleteAge: uint32(min(cs.DeleteAge.Seconds(), assoc.MaxAge)),
		SynAge:    uint32(min(cs.EffectiveSynAge().Seconds(), assoc.MaxAge)),
		Seed:      in.Seed,
	}
	for _, p := range cs.Protocols {
		ts.Protos |= fastpath.ProtoBit(uint8(p))
	}
	for _, r := range cs.Ports {
		ts.Ports = append(ts.Ports, fastpath.PortRange{First: r.First, Last: r.Last})
	}
	ts.Method = methods[cs.Method]
	for g, pg := range cs.PeerGroups {
		for _, p := range pg.Prefixes {
			ts.PeerGroups = append(ts.PeerGroups, fastpath.PeerPrefix{Prefix: fastpath.MappedPrefix(p), Group: uint8(g)})
		}
	}
	if ts.Method != fastpath.MethodHash {
		if id.loads[cs.Name] == nil {
			id.loads[cs.Name] = new(fastpath.LoadCell)
		}
		ts.Load = id.loads[cs.Name]
	}
	ts.Forwarding = forwardings[cs.Forwarding]
	buildHelper(ts, cs)     // helper_build.go; after ts.Forwarding
	buildEncap(ts, cs)      // build_encap.go
	buildSignalling(ts, cs) // build_signalling.go
	st := id.slots[cs.Name]
	slotOf, err := id.place(&st, cs.Servers)
	if err != nil {
		return nil, err
	}
	id.slots[cs.Name] = st
	backends := make([]maglev.Backend, fastpath.MaxServers)
	for i := range backends {
		backends[i].Key = fmt.Sprintf("slot-%d", i) // unused slots: weight 0
	}
	for i := range cs.Servers {
		srv := &cs.Servers[i]
		slot := slotOf[i]
		s := &ts.Servers[slot]
		s.Name, s.Addr, s.Gen, s.Weight, s.Present = srv.Name, srv.Address, st.gen[slot], uint32(srv.Weight), true
		if in.Policy != nil {
			s.Weight, s.Reselect = in.Policy(cs, srv)
		}
		if ts.Forwarding != fastpath.FwdDSR {
			resolveNATServer(s, in) // route.go: NAT, IPIP and GUE servers are reached by routes
		} else {
			for ifc := 0; ifc < in.Interfaces; ifc++ {
				s.MAC[ifc], s.HasMAC[ifc] = in.MACs(ifc, srv.Address)
			}
		}
		backends[slot] = maglev.Backend{Key: srv.Address.String(), Weight: s.Weight}
	}
	holdUnresolved(ts, backends)
	id.persist.buildPersist(ts, cs, slotOf) // build_persist.go
	table, err := maglev.New(backends, cs.TableSize)
	if err != nil {
		return nil, err
	}
	ts.Maglev = table
	return ts, nil
}

// holdUnresolved keeps servers whose MAC (or next hop's) is not known yet
// out of the set's Maglev table while another weighted server's is: a
// server a reload adds would otherwise take its share of new flows at once
// and drop them as neighbor_unresolved until the kernel has resolved it
// (about a second). It joins at the next publication after it resolves,
// which the neighbour refresh triggers. With nothing resolved (at start) the
// weights stay, so the table does not change under the flows when the
// first server resolves.
func holdUnresolved(ts *fastpath.TargetSet, backends []maglev.Backend) {
	resolved := func(s *fastpath.Server) bool { return slices.Contains(s.HasMAC[:], true) }
	someResolved := false
	for i := range ts.Servers {
		if s := &ts.Servers[i]; s.Present && backends[i].Weight > 0 && resolved(s) {
			someResolved = true
		}
	}
	if !someResolved {
		return
	}
	for i := range ts.Servers {
		if s := &ts.Servers[i]; s.Present && !resolved(s) {
			backends[i].Weight = 0
		}
	}
}

var methods = map[string]uint8{
	config.MethodHash:      fastpath.MethodHash,
	config.MethodLeastLoad: fastpath.MethodLeastLoad,
	config.MethodPeerAware: fastpath.MethodPeerAware,
}

// LoadCell returns the least-load cell of a target set, or nil for a hash
// set or an unknown name.
func (id *Identity) LoadCell(set string) *fastpath.LoadCell { return id.loads[set] }

// place gives every server a slot of st: its old one if its address had
// one, else a free slot with a new generation. It returns the slot of each
// server.
func (id *Identity) place(st *slotState, servers []config.Server) ([]int, error) {
	slotOf := make([]int, len(servers))
	var keep [fastpath.MaxServers]bool
	for i, srv := range servers {
		slotOf[i] = -1
		for s := range st.addr {
			if st.used[s] && st.addr[s] == srv.Address {
				slotOf[i], keep[s] = s, true
			}
		}
	}
	st.used = keep
	for i, srv := range servers {
		if slotOf[i] >= 0 {
			continue
		}
		for s := range st.used {
			if !st.used[s] {
				g, err := id.nextGen()
				if err != nil {
					return nil, err
				}
				st.used[s], st.addr[s], st.gen[s] = true, srv.Address, g
				slotOf[i] = s
				break
			}
		}
	}
	return slotOf, nil
}
