package slowpath

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/slowpath/config"
)

// persistIdentity is the numbering persistence records depend on, kept
// stable across reloads like set ids (see Identity):
//
//   - a persistence group keeps its id as long as it exists: a set with
//     persistence = "client" outside any [[persistence_group]] has a group
//     of its own (keyed by the set's name), a [[persistence_group]] one for
//     all its members (keyed by the group's name). Group ids are the Set
//     field of assoc.KindPersist keys, an id space of their own
//     (0..assoc.MaxSetID). A removed group's id is quarantined for its
//     timeout, so no new group adopts the records of an old one;
//   - every server address gets an id (fastpath.Server.AddrID) the first
//     time any set lists it, the same in every set, and keeps it for the
//     daemon's life: a persistence record names its server by this id, so
//     it means "the same machine" in every set of its group and across
//     reloads that move the server to another slot.
type persistIdentity struct {
	groups   map[string]uint16        // group key (groupKey) -> id
	timeouts map[string]time.Duration // each group's timeout when last built, for its quarantine
	ever     [assoc.MaxSetID + 1]bool // ids ever handed out; new groups prefer the others
	retired  map[uint16]time.Time     // ids of removed groups, quarantined until the time given
	addrs    map[netip.Addr]uint32    // server address -> AddrID, never removed
	lastAddr uint32                   // last AddrID handed out
}

// clone returns a copy Build may change.
func (p *persistIdentity) clone() persistIdentity {
	c := *p
	c.groups = maps.Clone(p.groups)
	c.timeouts = maps.Clone(p.timeouts)
	c.retired = maps.Clone(p.retired)
	c.addrs = maps.Clone(p.addrs)
	return c
}

// groupKey names the persistence group of a persistent set: its
// [[persistence_group]], or the set itself. The prefixes keep a set's own
// group apart from a [[persistence_group]] that later takes the name of a
// removed set.
func groupKey(cs *config.TargetSet) string {
	if g := cs.Persistence.Group; g != "" {
		return "group/" + g
	}
	return "set/" + cs.Name
}

// assign numbers the persistence groups and server addresses of spec: ids
// of surviving groups and known addresses are kept, removed groups' ids are
// quarantined, new groups and addresses get fresh ids.
func (p *persistIdentity) assign(spec *config.Spec, now time.Time) error {
	if p.groups == nil {
		p.groups, p.timeouts, p.retired, p.addrs = map[string]uint16{}, map[string]time.Duration{}, map[uint16]time.Time{}, map[netip.Addr]uint32{}
	}
	var keys []string // in file order, so numbering does not depend on map order
	timeouts := map[string]time.Duration{}
	for i := range spec.TargetSets {
		cs := &spec.TargetSets[i]
		for _, srv := range cs.Servers {
			if _, ok := p.addrs[srv.Address]; !ok {
				if p.lastAddr == ^uint32(0) {
					return fmt.Errorf("every server address id is used: %w", ErrNumbering)
				}
				p.lastAddr++
				p.addrs[srv.Address] = p.lastAddr
			}
		}
		if cs.Persistence == nil {
			continue
		}
		k := groupKey(cs)
		if _, seen := timeouts[k]; !seen {
			keys = append(keys, k)
		}
		timeouts[k] = cs.Persistence.Timeout
	}
	for k, v := range p.groups {
		if _, keep := timeouts[k]; !keep {
			p.retired[v] = now.Add(p.timeouts[k] + quarantineSlack)
			delete(p.groups, k)
			delete(p.timeouts, k)
		}
	}
	taken := map[uint16]bool{}
	for _, v := range p.groups {
		taken[v] = true
	}
	for _, k := range keys {
		if _, ok := p.groups[k]; !ok {
			v, err := p.freeGroupID(taken, now)
			if err != nil {
				return fmt.Errorf("persistence group %s: %w", k, err)
			}
			p.groups[k], p.ever[v], taken[v] = v, true, true
			delete(p.retired, v)
		}
		p.timeouts[k] = timeouts[k]
	}
	return nil
}

// freeGroupID returns the lowest group id never handed out or, when every
// id has been, the one whose quarantine ended first.
func (p *persistIdentity) freeGroupID(taken map[uint16]bool, now time.Time) (uint16, error) {
	for v := range assoc.MaxSetID + 1 {
		if !p.ever[v] && !taken[uint16(v)] {
			return uint16(v), nil
		}
	}
	best, found := uint16(0), false
	for v := range assoc.MaxSetID + 1 {
		until, retired := p.retired[uint16(v)]
		if taken[uint16(v)] || (retired && now.Before(until)) {
			continue
		}
		if !found || (retired && until.Before(p.retired[best])) {
			best, found = uint16(v), true
		}
	}
	if !found {
		return 0, fmt.Errorf("every persistence group id is in use or quarantined for a removed group's timeout: %w", ErrNumbering)
	}
	return best, nil
}

// buildPersist fills in the persistence and port ownership of ts from cs:
// every server's address id, the set's persistence group and the owned
// port ranges by slot. slotOf gives the slot of each of cs.Servers. Build
// calls it once the servers are placed.
func (p *persistIdentity) buildPersist(ts *fastpath.TargetSet, cs *config.TargetSet, slotOf []int) {
	for i := range cs.Servers {
		ts.Servers[slotOf[i]].AddrID = p.addrs[cs.Servers[i].Address]
	}
	if c := cs.Persistence; c != nil {
		ts.Persist = &fastpath.Persistence{
			Group:   p.groups[groupKey(cs)],
			Timeout: uint32(min(max(c.Timeout/time.Second, 1), assoc.MaxAge)),
			V4Bits:  uint8(c.IPv4Prefix),
			V6Bits:  uint8(c.IPv6Prefix),
		}
	}
	for i := range cs.Servers {
		for _, r := range cs.Servers[i].OwnedPorts {
			ts.Owned = append(ts.Owned, fastpath.OwnedRange{First: r.First, Last: r.Last, Slot: uint8(slotOf[i])})
		}
	}
	slices.SortFunc(ts.Owned, func(a, b fastpath.OwnedRange) int { return int(a.First) - int(b.First) })
}
