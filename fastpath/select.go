package fastpath

import (
	"errors"
	"math/bits"
	"net/netip"
	"sync/atomic"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/maglev"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// Selection methods (TargetSet.Method): how a new association picks its
// server. Whatever the method, an association once made is never moved by
// it; only the staleness rules (see Engine) re-select.
const (
	// MethodHash is Maglev consistent hashing of the client address, port
	// and protocol. The zero value.
	MethodHash uint8 = iota
	// MethodLeastLoad gives a new association to the eligible server with
	// the lowest load score (see LoadSnapshot). Without a snapshot yet it
	// hashes like MethodHash.
	MethodLeastLoad
	// MethodPeerAware gives a new association of a client in a peer group
	// (TargetSet.PeerGroups) to the eligible server holding the fewest of
	// that group's associations for its weight, ties broken by load, so
	// that one server failing never takes all of a peer's connections.
	// Clients in no group are balanced as by MethodLeastLoad.
	MethodPeerAware
)

// MaxPeerGroups is the most peer groups a target set may have; groups are
// numbered 0..MaxPeerGroups-1.
const MaxPeerGroups = 64

// PeerPrefix puts the clients in Prefix into peer group Group.
type PeerPrefix struct {
	// Prefix is an IPv6 prefix; IPv4 prefixes go in IPv4-mapped form
	// (::ffff:198.51.100.0/120, see MappedPrefix) so they match the
	// IPv4-mapped client addresses of packet.Flow.
	Prefix netip.Prefix
	Group  uint8 // below MaxPeerGroups
}

// MappedPrefix returns p in the form PeerPrefix needs: an IPv4 prefix as
// the equivalent IPv4-mapped IPv6 prefix, anything else unchanged.
func MappedPrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() || !p.Addr().Is4() {
		return p
	}
	return netip.PrefixFrom(netip.AddrFrom16(p.Addr().As16()), p.Bits()+96)
}

// PeerGroup returns the peer group of client address src (IPv4 in
// IPv4-mapped form, as in packet.Flow.Src): the group of the first entry of
// PeerGroups whose prefix contains it. ok is false for a client in no
// group. Safe from any goroutine; the slow path uses it to count
// associations by group exactly as workers classify them.
func (ts *TargetSet) PeerGroup(src *[16]byte) (group uint8, ok bool) {
	a := netip.AddrFrom16(*src)
	for k := range ts.PeerGroups {
		if ts.PeerGroups[k].Prefix.Contains(a) {
			return ts.PeerGroups[k].Group, true
		}
	}
	return 0, false
}

// NumPeerGroups is one more than the highest group number in PeerGroups,
// 0 without groups: the length LoadSnapshot.GroupAssoc needs.
func (ts *TargetSet) NumPeerGroups() int {
	n := 0
	for _, p := range ts.PeerGroups {
		n = max(n, int(p.Group)+1)
	}
	return n
}

var (
	errBadMethod    = errors.New("unknown selection method")
	errBadPeerGroup = errors.New("peer group number not below MaxPeerGroups")
	errBadPrefix    = errors.New("peer prefix invalid, zoned, or IPv4 not in IPv4-mapped form")
)

// selIndex is what selectServer reads of the servers, packed into two
// cache lines instead of sixteen; NewTables fills it.
type selIndex struct {
	// eligible has bit s set if server s can take new associations from
	// interface i: present, not being left, weighted, MAC resolved there.
	eligible [MaxInterfaces]uint16
	weight   [MaxServers]uint32
}

// prepareSelection validates the selection fields and fills ts.sel, for
// NewTables.
func (ts *TargetSet) prepareSelection() error {
	ts.sel = selIndex{}
	for s := range ts.Servers {
		srv := &ts.Servers[s]
		ts.sel.weight[s] = srv.Weight
		if !srv.Present || srv.Reselect || srv.Weight == 0 {
			continue
		}
		for i, ok := range srv.HasMAC {
			if ok {
				ts.sel.eligible[i] |= 1 << s
			}
		}
	}
	if ts.Method > MethodPeerAware {
		return errBadMethod
	}
	for _, p := range ts.PeerGroups {
		if p.Group >= MaxPeerGroups {
			return errBadPeerGroup
		}
		// An IPv4 prefix would silently match nothing: Flow.Src is
		// always 16 bytes.
		if !p.Prefix.IsValid() || p.Prefix.Addr().Is4() || p.Prefix.Addr().Zone() != "" {
			return errBadPrefix
		}
	}
	return nil
}

// LoadCell is where the slow path publishes the load of one target set for
// the least-load methods. The slow path keeps one cell per set across table
// generations (every generation's TargetSet points to the same cell) and
// stores a new snapshot every sampling period; workers read it with one
// atomic load per new association and never wait.
//
// One goroutine stores (the slow path's control goroutine); any number
// load. The zero LoadCell is empty and ready to use.
type LoadCell struct {
	p   atomic.Pointer[LoadSnapshot]
	seq atomic.Uint64
}

// Store publishes s, numbering it (s.Seq) one past the snapshot it
// replaces. s must not be modified afterwards: workers read it without
// synchronisation beyond the pointer.
func (c *LoadCell) Store(s *LoadSnapshot) {
	s.Seq = c.seq.Add(1)
	c.p.Store(s)
}

// Load returns the latest snapshot, or nil before the first Store.
func (c *LoadCell) Load() *LoadSnapshot { return c.p.Load() }

// LoadSnapshot is the load of a target set's servers at one sampling
// period, indexed by server slot. Immutable once stored in a LoadCell.
type LoadSnapshot struct {
	// Seq numbers snapshots of one cell (LoadCell.Store sets it). A worker
	// forgets the associations it made since the previous snapshot when it
	// sees a new Seq: the new one counts them.
	Seq uint64
	// Score is the load of each server per unit of its weight; lower is
	// better. The slow path computes it (slowpath/balance: packet share over
	// weight share, 1<<20 for exactly the weight share).
	Score [MaxServers]uint32
	// NewPenalty is how much one association a worker makes adds to a
	// server's Score until the next snapshot counts it. It keeps the herd
	// of new associations that arrive between snapshots from all going to
	// the one server that was least loaded when the snapshot was taken. A
	// worker sees only its own new associations, so the slow path should
	// scale the per-association figure by the number of workers. 0 counts
	// as 1.
	NewPenalty [MaxServers]uint32
	// GroupAssoc is, for MethodPeerAware, the live associations of each
	// peer group (by group number) on each server. A group beyond its
	// length counts as holding none yet.
	GroupAssoc [][MaxServers]uint32
}

// selState is one worker's memory of a least-load set since the snapshot
// it last saw: the associations it made, which that snapshot does not count.
type selState struct {
	cell  *LoadCell // the cell seq belongs to: an id reused by another set starts afresh
	seq   uint64
	added [MaxServers]uint32 // new associations per server
	// group counts them by peer group as well; allocated by SetTables for
	// a peer-aware set, kept for the id after that. touched has bit g set
	// for every row g written since the last reset.
	group   *[MaxPeerGroups][MaxServers]uint32
	touched uint64
}

// allocGroups allocates the per-group counters of every peer-aware set of t
// that has none yet. It runs when the worker switches tables, so Process
// never allocates.
func (e *Engine) allocGroups(t *Tables) {
	if t == nil {
		return
	}
	for _, ts := range t.sets {
		if ts != nil && ts.Method == MethodPeerAware && e.sel[ts.ID].group == nil {
			e.sel[ts.ID].group = new([MaxPeerGroups][MaxServers]uint32)
		}
	}
}

// hashSlot is MethodHash's choice for flow f.
func hashSlot(ts *TargetSet, f *packet.Flow) uint8 {
	return ts.Maglev.Lookup(ts.Seed.Hash(f.Src, f.SrcPort, f.Proto))
}

// selectServer picks the server of a new association for flow i of ts, a
// least-load or peer-aware set, and counts it as made. It falls back to
// Maglev without a snapshot or without an eligible server (so that the drop,
// if any, is counted as for MethodHash).
//
// An eligible server is present, not being left (Reselect), weighted, and
// has a MAC on this interface. Among them it takes the lowest
//
//	Score[s] + added[s]*NewPenalty[s]
//
// where added counts this worker's new associations on s since the snapshot.
// For a peer-aware set and a client in a peer group g, the lowest
// (GroupAssoc[g][s] + groupAdded[g][s]) / Weight[s] comes first and the cost
// above breaks ties. Remaining ties go to the first server at or after a
// position taken from the flow's hash, so equal servers share the flows
// instead of all going to slot 0.
func (e *Engine) selectServer(ts *TargetSet, f *packet.Flow, i int) uint8 {
	var snap *LoadSnapshot
	if ts.Load != nil {
		snap = ts.Load.Load()
	}
	if snap == nil {
		return hashSlot(ts, f)
	}
	st := &e.sel[ts.ID]
	if st.seq != snap.Seq || st.cell != ts.Load {
		st.cell, st.seq = ts.Load, snap.Seq
		st.added = [MaxServers]uint32{}
		for m := st.touched; m != 0; m &= m - 1 {
			st.group[bits.TrailingZeros64(m)] = [MaxServers]uint32{}
		}
		st.touched = 0
	}
	var (
		group   *[MaxServers]uint32 // this worker's counts for the client's group; nil: no group
		inSnap  *[MaxServers]uint32 // the snapshot's counts for the group
		none    [MaxServers]uint32  // inSnap when the snapshot has none for it yet
		g       uint8
		grouped bool
	)
	if ts.Method == MethodPeerAware && st.group != nil {
		if g, grouped = ts.PeerGroup(&f.Src); grouped {
			group, inSnap = &st.group[g], &none
			if int(g) < len(snap.GroupAssoc) {
				inSnap = &snap.GroupAssoc[g]
			}
		}
	}
	best := uint8(maglev.NoBackend)
	var bestCost, bestCnt, bestW uint64
	// Visit the eligible servers from a position taken from the flow's hash.
	start := uint8(e.hashes[i] >> 60) // MaxServers == 16
	for m := bits.RotateLeft16(ts.sel.eligible[e.iface&(MaxInterfaces-1)], -int(start)); m != 0; m &= m - 1 {
		s := (start + uint8(bits.TrailingZeros16(m))) & (MaxServers - 1)
		cost := uint64(snap.Score[s]) + uint64(st.added[s])*uint64(max(snap.NewPenalty[s], 1))
		if group != nil {
			cnt, w := uint64(inSnap[s])+uint64(group[s]), uint64(ts.sel.weight[s])
			if best != maglev.NoBackend {
				// cnt/w against bestCnt/bestW, exactly.
				lh, ll := bits.Mul64(cnt, bestW)
				rh, rl := bits.Mul64(bestCnt, w)
				if lh > rh || lh == rh && (ll > rl || ll == rl && cost >= bestCost) {
					continue
				}
			}
			bestCnt, bestW = cnt, w
		} else if best != maglev.NoBackend && cost >= bestCost {
			continue
		}
		best, bestCost = s, cost
	}
	if best == maglev.NoBackend {
		return hashSlot(ts, f)
	}
	st.added[best]++
	if group != nil {
		group[best]++
		st.touched |= 1 << g
	}
	return best
}

// Associations counts the live associations of one target set, as
// CountAssociations returns them.
type Associations struct {
	Server [MaxServers]uint64 // by server slot
	// Group is, for a set with peer groups, the count by group number and
	// slot: LoadSnapshot.GroupAssoc. Clients in no group are not in it.
	Group [][MaxServers]uint32
}

// CountAssociations counts the associations in shards (every worker's
// Engine.Shard) that still hold their server in t: its slot is present with
// the association's generation and not being left. The result is indexed by
// set id, nil where t has no set. For the slow path: it allocates and walks
// every slot of every shard (tens of milliseconds for millions of
// associations), never blocking a worker.
func CountAssociations(t *Tables, shards []*assoc.Shard) []*Associations {
	out := make([]*Associations, len(t.ages.Kind[assoc.KindFlow]))
	for _, ts := range t.sets {
		if ts != nil {
			out[ts.ID] = &Associations{Group: make([][MaxServers]uint32, ts.NumPeerGroups())}
		}
	}
	for _, sh := range shards {
		sh.Range(func(k assoc.Key, v assoc.Value) bool {
			if k.Kind != assoc.KindFlow || int(k.Set) >= len(out) || out[k.Set] == nil {
				return true
			}
			ts, a := t.sets[k.Set], out[k.Set]
			s := v.Server & (MaxServers - 1)
			if srv := &ts.Servers[s]; !srv.Present || srv.Gen != v.Gen || srv.Reselect {
				return true
			}
			a.Server[s]++
			if len(a.Group) > 0 {
				if g, ok := ts.PeerGroup(&k.Addr); ok {
					a.Group[g][s]++
				}
			}
			return true
		})
	}
	return out
}
