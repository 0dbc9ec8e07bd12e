package fastpath

import (
	"net/netip"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/maglev"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// Persistence and port ownership: the two ways a high-speed file transfer's
// TCP control session and its UDP data flows (other source ports, sometimes
// other VIP ports or VIPs) all reach the server that holds the session.
//
// # Port ownership
//
// TargetSet.Owned maps destination port ranges to server slots. A packet to
// an owned port goes to the owner whatever the client, before persistence
// and the set's method, as long as the owner can take it; otherwise the
// flow is balanced as if the port were not owned.
//
// # Persistence records
//
// A set with Persist belongs to persistence group Persist.Group (a group of
// its own, or a [[persistence_group]] shared by several sets). The first
// flow of a client (its address masked to the group's prefix) chooses a
// server by the set's method and records it as an assoc.KindPersist record:
// key (masked address, group), value aux = the server's AddrID. Every later
// flow of that client to any set of the group goes to the member's server
// with that AddrID while the record lives.
//
// Records live in ordinary shards and, like everything in a shard, are
// written only by its owner. One client's flows hash to different queues,
// so a worker that finds no record of its own reads the other workers'
// shards (bounded, lock-free Lookup) and copies the record it finds into its
// own shard: from then on it refreshes its own copy with its own traffic. A
// client is pinned while any worker's copy lives; each copy expires after
// Persist.Timeout without a packet of the client on that worker. Two first
// flows of one client arriving on two queues at the same instant choose
// independently: with the hash method over the masked client address they
// choose alike; with a load method they may differ, and each worker then
// keeps its own choice until its copy expires.
//
// A record is refreshed whenever a member flow's association is touched
// (at most once a second per flow, when its last-seen second changes), so
// the record outlives a quiet control connection while its data flows. A
// flow association that expired while its client's record lived finds the
// record again on its next packet and returns to the same server: this is
// what keeps a control session alive through a long UDP transfer.

// Persistence is a target set's membership in a persistence group.
type Persistence struct {
	// Group numbers the group's records (the Set field of their keys):
	// stable across reloads like set ids, at most assoc.MaxSetID.
	Group uint16
	// Timeout is how long, in seconds, a client's record lives after its
	// last packet in any member flow.
	Timeout uint32
	// V4Bits and V6Bits are the prefix lengths that group clients: 32 and
	// 128 keep every address apart, 24 or 64 put a NAT pool or a /64 on
	// one server.
	V4Bits, V6Bits uint8
}

// OwnedRange is a destination port range that belongs to the server in Slot.
type OwnedRange struct {
	First, Last uint16
	Slot        uint8
}

// SetPersistLimit bounds the persistence records the engine keeps in its
// shard; beyond it a client's flow is balanced by its set's method and
// counted (PersistFull). Call before the engine processes frames.
func (e *Engine) SetPersistLimit(n int) { e.persist.limit = n }

// persistState is an engine's persistence bookkeeping.
type persistState struct {
	limit int // records this shard may hold
	live  int // records it holds
}

// persistKey is the key of the persistence record of client src in group p.
func persistKey(p *Persistence, src *[16]byte) assoc.Packed {
	a := netip.AddrFrom16(*src)
	bits := int(p.V6Bits)
	if a.Is4In6() {
		bits = 96 + int(p.V4Bits)
	}
	masked, _ := a.Prefix(bits)
	k := assoc.Key{Addr: masked.Addr().As16(), Set: p.Group, Kind: assoc.KindPersist}
	return k.Pack()
}

// slotOfAddr returns the slot of the server with address id id in ts, or
// maglev.NoBackend.
func slotOfAddr(ts *TargetSet, id uint32) uint8 {
	for s := range ts.Servers {
		if srv := &ts.Servers[s]; srv.Present && srv.AddrID == id {
			return uint8(s)
		}
	}
	return maglev.NoBackend
}

// keepsClients reports whether slot can keep serving the clients recorded
// for it: present and not being left. A drained server (weight 0) keeps
// its clients; it only gets no new ones.
func keepsClients(ts *TargetSet, slot uint8) bool {
	srv := &ts.Servers[slot&(MaxServers-1)]
	return srv.Present && !srv.Reselect
}

// pin is what port ownership or a persistence record decides for a new
// association: the slot (maglev.NoBackend when neither decides) and, for a
// persistence set, the record's slot in the engine's shard to write the
// method's choice into (-1 when there is none to overwrite).
type pin struct {
	slot   uint8
	record int
	key    assoc.Packed // the client's persistence key; zero without persistence
}

// ownedSlot is the owner of destination port port in ts, if its owner can
// take clients, else NoBackend. Every packet to an owned port goes to its
// owner without an association: the port says where it belongs, and one
// peer address and port may answer several servers' connections from their
// own ranges (initiator mode), which one association per peer port could
// not tell apart. While the owner cannot take clients its port is balanced
// like any other, with associations, and goes back to the owner when it can
// again.
func ownedSlot(ts *TargetSet, port uint16) uint8 {
	for _, r := range ts.Owned {
		if port >= r.First && port <= r.Last && keepsClients(ts, r.Slot) {
			return r.Slot
		}
	}
	return maglev.NoBackend
}

// pinned decides a new association of flow f of ts by the client's
// persistence record: its own shard's copy, else another worker's (copied
// into its own shard).
func (e *Engine) pinned(ts *TargetSet, f *packet.Flow, now uint32) pin {
	p := ts.Persist
	if p == nil {
		return pin{slot: maglev.NoBackend, record: -1}
	}
	key := persistKey(p, &f.Src)
	h := key.Hash()
	idx, found := e.shard.FindPacked(&key, h)
	stale := -1 // this shard's record, if it is stale or names a server being left
	if found {
		if assoc.Age(now, e.shard.Meta(idx).LastSeen()) <= p.Timeout {
			if slot := slotOfAddr(ts, e.shard.Aux(idx)); slot < MaxServers && keepsClients(ts, slot) {
				e.shard.Touch(idx, now)
				e.local.PersistFound++
				return pin{slot: slot, record: -1, key: key}
			}
		}
		stale = idx
	}
	for _, peer := range e.nat.peers {
		v, r := peer.LookupPacked(&key, h)
		if r != assoc.Found || assoc.Age(now, v.LastSeen) > p.Timeout {
			continue
		}
		slot := slotOfAddr(ts, v.Tag)
		if slot >= MaxServers || !keepsClients(ts, slot) {
			continue
		}
		e.local.PersistFound++
		copied := assoc.Value{Tag: v.Tag, LastSeen: now}
		switch {
		case stale >= 0:
			e.shard.PutPacked(stale, &key, copied)
			e.emit(ChangeUpsert, stale)
		case idx >= 0 && e.persist.live < e.persist.limit:
			e.shard.PutPacked(idx, &key, copied)
			e.emit(ChangeUpsert, idx)
			e.persist.live++
		}
		return pin{slot: slot, record: -1, key: key}
	}
	return pin{slot: maglev.NoBackend, record: stale, key: key}
}

// persistHashSlot is the hash method's choice for the first flow of a client
// of a persistence set: by the masked client address alone (the key pinned
// made), so that a client's first flows arriving on two queues at once
// choose alike.
func persistHashSlot(ts *TargetSet, key *assoc.Packed) uint8 {
	k := key.Key()
	return ts.Maglev.Lookup(ts.Seed.Hash(k.Addr, 0, 0))
}

// recordPersist records the method's choice slot for the client pn names
// in ts's persistence group: in the record slot pinned found (stale, or
// pointing at a server being left), else in a new record if the shard has
// room for one.
func (e *Engine) recordPersist(ts *TargetSet, pn pin, slot uint8, now uint32) {
	if ts.Persist == nil {
		return
	}
	key := pn.key
	v := assoc.Value{Tag: ts.Servers[slot].AddrID, LastSeen: now}
	idx, found := pn.record, true
	if idx < 0 {
		idx, found = e.shard.FindPacked(&key, key.Hash())
	}
	switch {
	case found:
		e.shard.PutPacked(idx, &key, v)
		e.emit(ChangeUpsert, idx)
	case idx >= 0 && e.persist.live < e.persist.limit:
		e.shard.PutPacked(idx, &key, v)
		e.emit(ChangeUpsert, idx)
		e.persist.live++
	default:
		e.local.PersistFull++
		return
	}
	e.local.PersistMade++
}

// refreshPersist keeps the client's persistence record alive while one of
// its flows talks: called when that flow's association is touched in a new
// second.
func (e *Engine) refreshPersist(ts *TargetSet, f *packet.Flow, now uint32) {
	key := persistKey(ts.Persist, &f.Src)
	// A record past its timeout but not swept yet stays dead: the flow's
	// next new sibling chooses again, as after the sweep.
	if idx, found := e.shard.FindPacked(&key, key.Hash()); found && assoc.Age(now, e.shard.Meta(idx).LastSeen()) <= ts.Persist.Timeout {
		e.shard.Touch(idx, now)
	}
}

// persistAges are the record ages of the persistence groups of sets, by
// group: the longest timeout of the group's members.
func persistAges(sets []*TargetSet) []uint32 {
	var ages []uint32
	for _, ts := range sets {
		p := ts.Persist
		if p == nil || p.Group > assoc.MaxSetID {
			continue
		}
		for len(ages) <= int(p.Group) {
			ages = append(ages, 0)
		}
		ages[p.Group] = max(ages[p.Group], min(p.Timeout, assoc.MaxAge))
	}
	return ages
}
