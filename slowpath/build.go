package slowpath

import (
	"fmt"
	"net/netip"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/maglev"
	"github.com/ipfront/ipfront/slowpath/config"
)

// Identity keeps the numbering that associations depend on stable across
// reloads: a target set keeps its id as long as its name exists, and a server
// keeps its slot as long as its address stays in the set. A slot given to a
// different server gets a new generation, so associations made for the old
// one are re-selected instead of silently following the slot.
//
// Identity is owned by the slow path's single control goroutine.
type Identity struct {
	setIDs map[string]uint16
	slots  map[string]*slotState
	loads  map[string]*fastpath.LoadCell // least-load snapshots, kept across generations
}

type slotState struct {
	addr [fastpath.MaxServers]netip.Addr // current or last occupant
	used [fastpath.MaxServers]bool
	gen  [fastpath.MaxServers]uint16
}

// NewIdentity returns an empty numbering.
func NewIdentity() *Identity {
	return &Identity{setIDs: map[string]uint16{}, slots: map[string]*slotState{}, loads: map[string]*fastpath.LoadCell{}}
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
}

// Build turns a validated spec into one generation of fast-path tables,
// numbering sets and servers through id. It is a pure function of its
// inputs apart from id's bookkeeping.
func Build(spec *config.Spec, id *Identity, in Inputs) (*fastpath.Tables, error) {
	if len(spec.TargetSets) > fastpath.MaxSets {
		return nil, fmt.Errorf("%d target sets; at most %d are supported", len(spec.TargetSets), fastpath.MaxSets)
	}
	id.assignSetIDs(spec)
	sets := make([]*fastpath.TargetSet, 0, len(spec.TargetSets))
	for i := range spec.TargetSets {
		cs := &spec.TargetSets[i]
		ts, err := id.buildSet(cs, in)
		if err != nil {
			return nil, fmt.Errorf("target set %q: %w", cs.Name, err)
		}
		sets = append(sets, ts)
	}
	return fastpath.NewTables(in.Generation, sets)
}

// assignSetIDs keeps ids of surviving names and gives new names the lowest
// free ids, so removing a set never renumbers the others.
func (id *Identity) assignSetIDs(spec *config.Spec) {
	keep := map[string]bool{}
	for _, ts := range spec.TargetSets {
		keep[ts.Name] = true
	}
	for name := range id.setIDs {
		if !keep[name] {
			delete(id.setIDs, name)
			delete(id.slots, name)
			delete(id.loads, name)
		}
	}
	taken := map[uint16]bool{}
	for _, v := range id.setIDs {
		taken[v] = true
	}
	next := uint16(0)
	for _, ts := range spec.TargetSets {
		if _, ok := id.setIDs[ts.Name]; ok {
			continue
		}
		for taken[next] {
			next++
		}
		id.setIDs[ts.Name] = next
		taken[next] = true
	}
}

func (id *Identity) buildSet(cs *config.TargetSet, in Inputs) (*fastpath.TargetSet, error) {
	ts := &fastpath.TargetSet{
		ID:        id.setIDs[cs.Name],
		Name:      cs.Name,
		VIP:       cs.Address.As16(),
		DeleteAge: uint32(min(cs.DeleteAge.Seconds(), assoc.MaxAge)),
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
	st := id.slots[cs.Name]
	if st == nil {
		st = &slotState{}
		id.slots[cs.Name] = st
	}
	slotOf := st.place(cs.Servers)
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
		for ifc := 0; ifc < in.Interfaces; ifc++ {
			s.MAC[ifc], s.HasMAC[ifc] = in.MACs(ifc, srv.Address)
		}
		backends[slot] = maglev.Backend{Key: srv.Address.String(), Weight: s.Weight}
	}
	table, err := maglev.New(backends, cs.TableSize)
	if err != nil {
		return nil, err
	}
	ts.Maglev = table
	return ts, nil
}

var methods = map[string]uint8{
	config.MethodHash:      fastpath.MethodHash,
	config.MethodLeastLoad: fastpath.MethodLeastLoad,
	config.MethodPeerAware: fastpath.MethodPeerAware,
}

// LoadCell returns the least-load cell of a target set, or nil for a hash
// set or an unknown name.
func (id *Identity) LoadCell(set string) *fastpath.LoadCell { return id.loads[set] }

// place gives every server a slot: its old one if its address had one, else
// a free slot whose generation is bumped. It returns the slot of each server.
func (st *slotState) place(servers []config.Server) []int {
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
				st.used[s], st.addr[s] = true, srv.Address
				st.gen[s]++
				slotOf[i] = s
				break
			}
		}
	}
	return slotOf
}
