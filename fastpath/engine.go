package fastpath

import (
	"encoding/binary"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/maglev"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// MaxBatch is the largest batch a worker processes at once.
const MaxBatch = 1024

// Action is the engine's verdict on a frame.
type Action uint8

// Verdicts.
const (
	Drop     Action = iota // return the frame to the free pool
	Transmit               // send the rewritten frame out of the interface it came in on
	// Punt hands a copy of the frame to the slow path through the worker's
	// punt ring (a helper that must see or rewrite the payload); the frame
	// itself goes back to the free pool. The slow path may send it on
	// through the inject ring.
	Punt
)

// Engine is the per-packet logic of one worker, apart from any I/O: parse,
// find the target set, find or make the association, rewrite for L2 DSR.
// Tests and benchmarks drive it with plain byte slices.
//
// An Engine belongs to one goroutine. Its shard is readable by others (see
// assoc.Shard); its counters are published for readers by Publish.
type Engine struct {
	shard  *assoc.Shard
	tables *Tables
	iface  int
	srcMAC [6]byte

	local, last Counters
	shared      sharedCounters
	dirty       []uint16 // server counter indices touched since the last Publish
	dirtyMark   [MaxSets * MaxServers]uint32
	epoch       uint32

	sel [MaxSets]selState // least-load bookkeeping by set id (select.go)

	// Per-batch scratch, filled by the first pass over a batch.
	flows   [MaxBatch]packet.Flow
	reasons [MaxBatch]packet.Reason
	sets    [MaxBatch]*TargetSet
	keys    [MaxBatch]assoc.Packed
	hashes  [MaxBatch]uint64
	homes   [MaxBatch]int   // first slot of each key's home line
	hits    [MaxBatch]int32 // slot found in the home line by the resolving pass, or -1
	// deleted is set when this batch deleted a record: the resolving
	// pass's hits may then name a freed slot and are looked up again.
	deleted bool
	sink    uint64 // keeps the prefetching loads alive

	onExpire func(idx int, kind assoc.Kind, set uint16, server uint8) // made once: Sweep's callback

	// noPunt is set while the engine processes a frame the slow path
	// injected: it has been through the slow path already and is forwarded
	// whatever its set's helper would say.
	noPunt bool

	nat natState // NAT: peers' shards, interface MACs, egress (forward_nat.go)

	encap encapState // IPIP/GUE: the batch's grown frames (forward_encap.go)

	persist persistState // persistence records (persist.go)

	replica replicaState // change reports for mated instances (replicate.go)

	// flowsLive counts the shard's flow records (kept with the per-server
	// gauges in countAssoc); flowLimit, when not 0, bounds them, so that
	// flows cannot take the room the shard keeps for persistence records
	// (max_associations is the flows' share, SetFlowLimit).
	flowsLive, flowLimit int64

	// batches counts MaybePublish calls since the last publication.
	batches int

	// Last VIP lookup: consecutive packets mostly go to the same VIP and
	// port, so one comparison usually replaces the VIP index probe.
	lastTables     *Tables
	lastLo, lastHi uint64
	lastPort       uint16
	lastProto      uint8
	lastSet        *TargetSet
}

// NewEngine returns an engine that records associations in shard and
// rewrites frames to leave interface number iface (an index into the
// per-interface MACs of Server) with source MAC srcMAC.
func NewEngine(shard *assoc.Shard, iface int, srcMAC [6]byte) *Engine {
	e := &Engine{shard: shard, iface: iface, srcMAC: srcMAC, dirty: make([]uint16, 0, MaxSets*MaxServers), epoch: 1}
	e.onExpire = func(idx int, kind assoc.Kind, set uint16, server uint8) {
		e.emit(ChangeDelete, idx)
		if kind == assoc.KindFlow && e.tables != nil && e.tables.sets[set&(MaxSets-1)] != nil &&
			e.tables.sets[set&(MaxSets-1)].Diameter && !e.shard.App(idx) {
			e.local.DiameterStale++
		}
		switch kind {
		case assoc.KindFlow:
			e.countAssoc(set, server, -1)
		case assoc.KindPersist:
			e.persist.live--
			e.local.PersistExpired++
		}
	}
	return e
}

// SetTables switches the engine to a new generation of tables. Workers call
// it between batches only.
func (e *Engine) SetTables(t *Tables) {
	e.resetReassignedServers(e.tables, t)
	e.tables = t
	e.allocGroups(t)
}

// resetReassignedServers zeroes the traffic counters of every server slot
// that now holds a different server than in old (a set id reused by another
// set, or a slot given to a new address), so a new server never inherits its
// predecessor's packets. The association gauge is kept: it counts the
// associations that still point at the slot until they re-select.
func (e *Engine) resetReassignedServers(old, next *Tables) {
	if old == nil || next == nil {
		return
	}
	for id := range MaxSets {
		was, now := old.sets[id], next.sets[id]
		if was == nil {
			continue
		}
		for slot := range MaxServers {
			a := &was.Servers[slot]
			if !a.Present {
				continue
			}
			if now != nil && now.Name == was.Name {
				if b := &now.Servers[slot]; b.Present && b.Gen == a.Gen && b.Addr == a.Addr {
					continue
				}
			}
			j := uint16(id)*MaxServers + uint16(slot)
			if e.local.ServerPackets[j] != 0 || e.local.ServerBytes[j] != 0 {
				e.local.ServerPackets[j], e.local.ServerBytes[j] = 0, 0
				e.markDirty(j)
			}
		}
	}
}

// Tables returns the generation in use.
func (e *Engine) Tables() *Tables { return e.tables }

// Shard returns the engine's association shard.
func (e *Engine) Shard() *assoc.Shard { return e.shard }

// Process decides every frame of a batch (len(frames) <= MaxBatch) and
// rewrites the ones to transmit in place. now is the association clock.
//
// The batch is walked twice: the first pass parses every frame, resolves its
// target set and reads its association slot, so the cache misses of the whole
// batch are in flight together; the second pass does the work.
func (e *Engine) Process(frames [][]byte, acts []Action, now uint32) {
	n := min(len(frames), len(acts), MaxBatch)
	t := e.tables
	for i := 0; i < n; i++ {
		f := &e.flows[i]
		r := packet.Parse(frames[i], f)
		e.reasons[i] = r
		e.sets[i] = nil
		if r != packet.OK || t == nil {
			continue
		}
		ts := e.lookupSet(t, f)
		e.sets[i] = ts
		if ts == nil {
			if t.nat.slots != nil {
				e.natPrepare(t, f, i) // a NAT server's frame: key of its client's flow (forward_nat.go)
			}
			continue
		}
		e.keys[i] = assoc.PackFlow(&f.Src, f.SrcPort, f.Proto, ts.ID)
		h := e.keys[i].Hash()
		e.hashes[i] = h
		e.homes[i] = e.shard.Home(h)
	}
	// The slot loads get a loop of their own: with nothing else between
	// them, the CPU keeps many misses in flight at once (measured: 285 ->
	// 112 ns/packet over 1M flows, BenchmarkProcess).
	var sink uint64
	for i := 0; i < n; i++ {
		if e.sets[i] != nil {
			sink += e.shard.Prefetch(e.homes[i])
		}
	}
	sink += e.natPrefetch(n) // NAT replies' home lines (forward_nat.go)
	// By now the home lines have arrived: resolve every lookup they
	// answer, and load the next line of those that continue, again with
	// the misses overlapping instead of stalling inside Find one by one.
	for i := 0; i < n; i++ {
		if e.sets[i] != nil {
			hit, next := e.shard.ResolveHome(&e.keys[i], e.homes[i])
			e.hits[i] = int32(hit)
			sink += next
		}
	}
	e.sink += sink
	e.deleted = false
	for i := 0; i < n; i++ {
		acts[i] = e.forward(frames[i], i, now)
	}
	if e.encap.n > 0 {
		e.encap.resize(frames) // encapsulated frames are longer (forward_encap.go)
	}
	e.flushChanges()
}

// lookupSet is Tables.lookup behind a one-entry cache.
func (e *Engine) lookupSet(t *Tables, f *packet.Flow) *TargetSet {
	lo, hi := binary.LittleEndian.Uint64(f.Dst[:8]), binary.LittleEndian.Uint64(f.Dst[8:])
	if lo == e.lastLo && hi == e.lastHi && f.DstPort == e.lastPort && f.Proto == e.lastProto && t == e.lastTables {
		return e.lastSet
	}
	ts := t.lookup(&f.Dst, ProtoBit(f.Proto), f.DstPort)
	e.lastTables, e.lastLo, e.lastHi, e.lastPort, e.lastProto, e.lastSet = t, lo, hi, f.DstPort, f.Proto, ts
	return ts
}

func (e *Engine) forward(frame []byte, i int, now uint32) Action {
	e.local.RxPackets++
	e.local.RxBytes += uint64(len(frame))
	if r := e.reasons[i]; r != packet.OK {
		e.local.Drops[r]++
		return Drop
	}
	ts := e.sets[i]
	if ts == nil {
		if e.tables != nil && e.tables.nat.slots != nil {
			return e.forwardNATOther(frame, i, now) // replies, data connections (forward_nat.go)
		}
		e.local.Drops[DropNoTargetSet]++
		return Drop
	}
	f := &e.flows[i]
	if f.VLAN != 0 && !e.tables.vlanAllowed(f.VLAN) {
		e.local.Drops[DropVLANNotConfigured]++
		return Drop
	}
	var slot uint8
	if f.ICMPError {
		slot = e.quotedServer(ts, f, i)
	} else {
		slot = e.associate(ts, f, frame, i, now)
	}
	if slot >= MaxServers {
		e.local.Drops[DropNoServer]++
		return Drop
	}
	var act Action
	switch ts.Forwarding {
	case FwdDSR:
		act = e.forwardDSR(frame, ts, slot)
	case FwdNAT:
		act = e.forwardNAT(frame, ts, slot, i)
	case FwdIPIP, FwdGUE:
		act = e.forwardEncap(frame, ts, slot, i)
	default:
		e.local.Drops[DropNoForwarding]++
		return Drop
	}
	if act != Transmit {
		return act
	}
	j := uint16(ts.ID)*MaxServers + uint16(slot)
	e.local.ServerPackets[j]++
	e.local.ServerBytes[j] += uint64(len(frame))
	if f.ICMPError {
		e.local.ICMPForwarded++
	}
	e.markDirty(j)
	return Transmit
}

// usable reports whether an association's server (meta's slot and
// generation) still holds it: present, the same server, not being left.
func usable(ts *TargetSet, m assoc.Meta) bool {
	srv := &ts.Servers[m.Server()&(MaxServers-1)]
	return srv.Present && srv.Gen == m.Gen() && !srv.Reselect
}

// quotedServer picks the server for an ICMP error about one of our flows:
// the flow's association if its server still holds it, else the server a
// new flow would get, which is where a stateless flow went.
func (e *Engine) quotedServer(ts *TargetSet, f *packet.Flow, i int) uint8 {
	if idx, found := e.find(i); found {
		if m := e.shard.Meta(idx); usable(ts, m) {
			return m.Server()
		}
	}
	return hashSlot(ts, f)
}

// associate returns the server slot of the flow (frame i of the batch),
// creating or re-selecting its association as the IPFE staleness rules say,
// with the flood and teardown defences of engine_guard.go.
func (e *Engine) associate(ts *TargetSet, f *packet.Flow, frame []byte, i int, now uint32) uint8 {
	if ts.Owned != nil {
		if slot := ownedSlot(ts, f.DstPort); slot < MaxServers {
			e.local.OwnedPort++ // persist.go
			return slot
		}
	}
	k := &e.keys[i]
	idx, found := e.find(i)
	if found {
		m := e.shard.Meta(idx)
		if e.stillValid(ts, f, m, now) {
			if f.Proto == packet.ProtoSCTP && m.Flags()&assoc.FlagTagLearned == 0 && learnableTag(f) {
				// The first tag after INIT: learned, not yet checkable, so
				// no teardown is taken from this packet.
				v := e.shard.Value(idx)
				v.Tag, v.Flags, v.LastSeen = f.SCTPTag, v.Flags|assoc.FlagTagLearned, now
				e.shard.PutPacked(idx, k, v)
				e.emit(ChangeUpsert, idx)
				e.indexTag(ts, f.SCTPTag, v.Server, v.Gen, now) // signalling.go
				return m.Server()
			}
			if f.Proto == packet.ProtoTCP && f.TCPFlags&(packet.TCPFlagFIN|packet.TCPFlagRST) == 0 &&
				m.Flags()&assoc.FlagProven != 0 && ts.Helper == HelperNone {
				// Most packets: a proven connection's data or ACK, which
				// only moves the sequence mark (engine_guard.go).
				e.followMark(frame, f, idx)
			} else if fl := e.evidence(ts, f, frame, idx, m); fl&^m.Flags() != 0 {
				e.shard.Mark(idx, fl)
				e.emit(ChangeUpsert, idx)
			}
			if ts.Diameter && !e.shard.App(idx) {
				// Only an application message keeps a Diameter flow
				// alive (signalling.go).
				if !diameterApp(frame, f) {
					return m.Server()
				}
				e.shard.MarkApp(idx)
				e.emit(ChangeUpsert, idx)
			}
			if m.LastSeen() != now&assoc.ClockMask {
				if ts.Persist != nil {
					e.refreshPersist(ts, f, now)
				}
				e.shard.Touch(idx, now)
				e.maybeRefresh(i, idx, now) // replicate.go
				if m.Flags()&assoc.FlagTagLearned != 0 && f.Proto == packet.ProtoSCTP {
					e.indexTag(ts, e.shard.Aux(idx), m.Server(), m.Gen(), now)
				}
			}
			return m.Server()
		}
		e.local.Reselected++
		e.countAssoc(ts.ID, m.Server(), -1)
		if ts.Diameter && !e.shard.App(idx) && assoc.Age(now, m.LastSeen()) > idleLimit(ts, m) {
			e.local.DiameterStale++
		}
		if f.Proto == packet.ProtoSCTP && m.Flags()&assoc.FlagTagLearned != 0 {
			e.unindexTag(ts, e.shard.Aux(idx))
		}
	} else if m, ok := e.adoptImported(ts, k, e.hashes[i], idx, now); ok {
		return m.Server() // a mate's flow, after a failover (replicate.go)
	}
	// A flow without an association (idx < 0) must land where its next
	// packet will: only the hash is stateless. So must a connection whose
	// first packet here is not its opening one (it predates a restart, or
	// was forwarded statelessly while the table had no room): the hash is
	// where it went before. An association being re-selected (its server
	// failed or left) has to move anyway and goes by the set's method.
	if packet.PartialChecksum(frame, f) {
		e.local.PartialChecksum++
	}
	// Openings while unproven associations hold their share go without
	// one, by the hash, like any flow without an association.
	if !found && e.flowLimit > 0 && e.flowsLive >= e.flowLimit {
		idx = -1 // the flows' share of the shard is full: as if the shard were
	}
	flooded := idx >= 0 && e.flooded()
	stateless := idx < 0 || flooded && opening(f)
	var slot uint8
	pn := pin{slot: maglev.NoBackend, record: -1}
	if ts.Persist != nil {
		pn = e.pinned(ts, f, now)
	}
	tagged := noSlot
	if !found {
		tagged = e.taggedServer(ts, f) // another path of a known SCTP association (signalling.go)
	}
	switch {
	case tagged < MaxServers:
		slot = tagged
	case pn.slot < MaxServers:
		slot = pn.slot
	case ts.Method == MethodHash && ts.Persist != nil:
		slot = persistHashSlot(ts, &pn.key)
	case ts.Method == MethodHash || stateless || !found && !opening(f):
		slot = hashSlot(ts, f)
	default:
		slot = e.selectServer(ts, f, i)
	}
	if slot < MaxServers && pn.slot >= MaxServers && ts.Persist != nil {
		e.recordPersist(ts, pn, slot, now)
	}
	if slot >= MaxServers {
		if found {
			// Its server is gone and no other can take it: forget it, so
			// the gauge, already decremented, is not decremented again.
			e.emit(ChangeDelete, idx)
			e.shard.Delete(idx)
			e.deleted = true
		}
		return maglev.NoBackend
	}
	if stateless {
		if found {
			// Re-selected under a flood: the old record must not keep
			// the flow's next packets on its old server.
			e.emit(ChangeDelete, idx)
			e.shard.Delete(idx)
			e.deleted = true
		}
		if idx >= 0 {
			e.local.FloodStateless++
		}
		e.local.Stateless++
		return slot
	}
	if !found && ts.Persist != nil {
		// pinned or recordPersist may have written a persistence record
		// into the free slot find chose for this flow (both keys can
		// share a home line): look again rather than overwrite it.
		if idx, _ = e.shard.FindPacked(k, e.hashes[i]); idx < 0 {
			e.local.Stateless++
			return slot
		}
	}
	v := assoc.Value{Server: slot, Gen: ts.Servers[slot].Gen, Flags: teardownFlags(f), LastSeen: now, NAT: ts.Forwarding == FwdNAT}
	if flooded {
		v.Flags |= assoc.FlagProven // a connection past its opening while the unproven share is full
	}
	if f.Proto == packet.ProtoTCP && ts.Helper == HelperNone {
		v.Tag = tcpSeq(frame, f) // the sequence mark (engine_guard.go)
	}
	if tagged < MaxServers {
		v.Tag, v.Flags = f.SCTPTag, v.Flags|assoc.FlagTagLearned
	}
	if ts.Diameter {
		v.App = diameterApp(frame, f)
	}
	e.shard.PutPacked(idx, k, v)
	e.emit(ChangeUpsert, idx)
	e.local.NewAssociations++
	e.countAssoc(ts.ID, slot, 1)
	return slot
}

// SetFlowLimit bounds the flow records of the engine's shard (0: only the
// shard's own limit). Call before the engine processes frames.
func (e *Engine) SetFlowLimit(n int) { e.flowLimit = int64(n) }

// find looks up the record of frame i of the batch: the resolving pass's
// hit if it had one, else a walk of the chain from the home line.
func (e *Engine) find(i int) (idx int, found bool) {
	if hit := e.hits[i]; hit >= 0 && !e.deleted {
		return int(hit), true
	}
	return e.shard.FindAt(&e.keys[i], e.homes[i])
}

// opening reports whether f can be the first packet of its connection: a TCP
// SYN without ACK, an SCTP INIT, any UDP datagram.
func opening(f *packet.Flow) bool {
	switch f.Proto {
	case packet.ProtoTCP:
		return f.TCPFlags&(packet.TCPFlagSYN|packet.TCPFlagACK) == packet.TCPFlagSYN
	case packet.ProtoSCTP:
		return f.SCTPChunk == packet.SCTPChunkInit
	}
	return true
}

// countAssoc moves a server's association gauge and marks it for Publish.
func (e *Engine) countAssoc(set uint16, server uint8, delta int64) {
	j := set*MaxServers + uint16(server&(MaxServers-1))
	e.local.ServerAssociations[j] += delta
	e.flowsLive += delta
	e.markDirty(j)
}

// markDirty queues a server's counters for the next Publish.
func (e *Engine) markDirty(j uint16) {
	if e.dirtyMark[j] != e.epoch {
		e.dirtyMark[j] = e.epoch
		e.dirty = append(e.dirty, j)
	}
}

// stillValid applies the staleness rules to an existing association: idle
// past the delete age (syn_age until it proved its connection); a TCP SYN
// after the client's FIN or RST; an SCTP INIT after a SHUTDOWN or ABORT
// with the association's tag (an INIT alone, which anyone can forge, does
// not move it: the server handles a peer's restart); or its server is gone
// or must be left.
func (e *Engine) stillValid(ts *TargetSet, f *packet.Flow, m assoc.Meta, now uint32) bool {
	if !usable(ts, m) {
		return false
	}
	if assoc.Age(now, m.LastSeen()) > idleLimit(ts, m) {
		e.local.Expired++
		return false
	}
	switch f.Proto {
	case packet.ProtoTCP:
		syn := f.TCPFlags&(packet.TCPFlagSYN|packet.TCPFlagACK) == packet.TCPFlagSYN
		return !(syn && m.Flags()&(assoc.FlagFIN|assoc.FlagRST) != 0)
	case packet.ProtoSCTP:
		return !(f.SCTPChunk == packet.SCTPChunkInit && m.Flags()&assoc.FlagShutdown != 0)
	}
	return true
}

// idleLimit is how long an association of ts with meta m may be idle:
// delete_age, or syn_age until it proved its connection.
func idleLimit(ts *TargetSet, m assoc.Meta) uint32 {
	if m.Flags()&assoc.FlagProven == 0 {
		return ts.SynAge
	}
	return ts.DeleteAge
}

// teardownFlags is the evidence of a closing connection this packet carries.
func teardownFlags(f *packet.Flow) uint8 {
	switch f.Proto {
	case packet.ProtoTCP:
		var fl uint8
		if f.TCPFlags&packet.TCPFlagFIN != 0 {
			fl |= assoc.FlagFIN
		}
		if f.TCPFlags&packet.TCPFlagRST != 0 {
			fl |= assoc.FlagRST
		}
		return fl
	case packet.ProtoSCTP:
		switch f.SCTPChunk {
		case packet.SCTPChunkShutdown, packet.SCTPChunkShutdownAck, packet.SCTPChunkShutdownComplete, packet.SCTPChunkAbort:
			return assoc.FlagShutdown
		}
	}
	return 0
}

// learnableTag: INIT carries tag 0 (the peer's tag is not known yet); every
// later client packet carries the tag the server chose.
func learnableTag(f *packet.Flow) bool {
	return f.SCTPChunk != packet.SCTPChunkInit && f.SCTPTag != 0
}

// Sweep expires up to budget association slots; workers call it once per
// loop iteration.
func (e *Engine) Sweep(budget int, now uint32) {
	if e.tables == nil {
		return
	}
	e.local.Expired += uint64(e.shard.Sweep(budget, now, &e.tables.ages, e.onExpire))
	e.flushChanges()
}

// countTx records frames the TX ring accepted and drops it refused.
func (e *Engine) countTx(sent, bytes, refused uint64) {
	e.local.TxPackets += sent
	e.local.TxBytes += bytes
	e.local.Drops[DropTxRingFull] += refused
}

// drop counts a frame dropped outside Process.
func (e *Engine) drop(r Reason) { e.local.Drops[r]++ }

// publishEvery is how many busy batches MaybePublish lets pass between
// publications: counters readers see are at most this many batches old (well
// under a millisecond under load), and the copy costs a fraction per packet.
const publishEvery = 8

// MaybePublish publishes every publishEvery-th call. Workers call it after
// each batch they forward, and Publish when idle.
func (e *Engine) MaybePublish() {
	if e.batches++; e.batches >= publishEvery {
		e.Publish()
	}
}

// Publish makes the counters of everything processed so far visible to
// Snapshot.
func (e *Engine) Publish() {
	e.batches = 0
	e.local.Unproven = uint64(e.shard.Unproven())
	e.shared.publish(&e.local, &e.last, e.dirty)
	e.dirty = e.dirty[:0]
	if e.epoch++; e.epoch == 0 {
		// Wrapped (minutes at busy-poll rates): a mark left 2^32 batches
		// ago, or the zero of one never set, would pass for this batch's.
		clear(e.dirtyMark[:])
		e.epoch = 1
	}
}

// Snapshot copies the published counters into out. Safe from any goroutine.
func (e *Engine) Snapshot(out *Counters) { e.shared.snapshot(out) }
