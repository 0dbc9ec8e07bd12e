package fastpath

import (
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/ring"
)

// Association changes for replication to mated instances.
//
// With replication on (StartConfig.Replicate), each worker reports what its
// own packets did to its shard through a change ring the slow path drains:
// records made or re-selected, teardown flags and proof learned, the SCTP
// tag learned, records deleted or expired, persistence records written, and
// now and then a refresh of a flow that keeps sending (refreshEvery), so a
// mate's copy, which ages by its own clock, outlives a long-lived flow's
// delete age. A full ring drops the change and counts it (ChangesDropped):
// the slow path notices the gap and repairs it by a bulk resync. Nothing is
// reported for records the slow path itself wrote through the control ring
// (imports, expectations), so imports never echo back.
//
// Imported records carry assoc.OriginImported. The slow path writes each into
// the shard of Dataplane.Owner(key); a worker whose packet misses its own
// shard then looks for an imported record in the others' (adoptImported) and
// copies it in as its own, so a flow arriving after a failover finds its
// server whichever queue RSS gives it. That read happens for a new flow only
// (a miss), never for a packet of a known one.

// ChangeOp says what happened to a record.
type ChangeOp uint8

// Change operations.
const (
	ChangeUpsert ChangeOp = iota // the record is now Value
	ChangeDelete                 // the record is gone (deleted or expired)
)

// Change is one record event of a worker's shard. Value names the server by
// the slot and generation of the tables in force when it was made; the slow
// path translates them into something a mate can resolve (set and server
// identities), since generations are this instance's own.
type Change struct {
	Op    ChangeOp
	Key   assoc.Key
	Value assoc.Value
}

// changeSlots is each worker's change ring: a few milliseconds of new flows
// at a million per second, for a slow path that drains it continuously.
const changeSlots = 1 << 14

// refreshEvery is the period, in clock seconds, at which a flow that keeps
// sending is reported again: each flow in its own phase (from its key's
// hash), once in every refreshEvery seconds in which it sent a packet.
const refreshEvery = 16

// replicaState is the engine's side of replication.
type replicaState struct {
	changes *ring.SPSC[Change] // nil: replication off
	pending bool               // changes Put since the last Flush
}

// enableChanges turns the engine's change reports on.
func (e *Engine) enableChanges() *ring.SPSC[Change] {
	e.replica.changes = ring.NewSPSC[Change](changeSlots)
	return e.replica.changes
}

// emit reports the record in slot idx. Owner only; a no-op without
// replication.
func (e *Engine) emit(op ChangeOp, idx int) {
	if e.replica.changes == nil {
		return
	}
	e.emitSlow(op, idx)
}

func (e *Engine) emitSlow(op ChangeOp, idx int) {
	c := Change{Op: op, Key: e.shard.KeyAt(idx)}
	if op == ChangeUpsert {
		c.Value = e.shard.Value(idx)
	}
	if e.replica.changes.Put(c) {
		e.replica.pending = true
	} else {
		e.local.ChangesDropped++
	}
}

// maybeRefresh reports flow i's record idx again if this second is its
// phase (see refreshEvery). Called where the record's clock was just moved.
func (e *Engine) maybeRefresh(i, idx int, now uint32) {
	if e.replica.changes != nil && uint32(e.hashes[i]>>40)%refreshEvery == now%refreshEvery {
		e.emitSlow(ChangeUpsert, idx)
	}
}

// flushChanges makes the batch's changes visible to the slow path: one
// atomic store per batch.
func (e *Engine) flushChanges() {
	if e.replica.pending {
		e.replica.changes.Flush()
		e.replica.pending = false
	}
}

// adoptImported looks for an imported record of flow key p in the other
// workers' shards after a miss in this one, and copies it into slot idx of
// this shard as this worker's own. It reports the record's meta, or false.
func (e *Engine) adoptImported(ts *TargetSet, p *assoc.Packed, h uint64, idx int, now uint32) (assoc.Meta, bool) {
	if e.replica.changes == nil || idx < 0 || len(e.nat.peers) == 0 {
		return 0, false
	}
	for _, peer := range e.nat.peers {
		v, r := peer.LookupPacked(p, h)
		if r != assoc.Found || v.Origin != assoc.OriginImported {
			continue
		}
		srv := &ts.Servers[v.Server&(MaxServers-1)]
		if !srv.Present || srv.Gen != v.Gen || srv.Reselect {
			return 0, false
		}
		v.Origin, v.LastSeen = assoc.OriginLocal, now
		e.shard.PutPacked(idx, p, v)
		e.local.Adopted++
		e.countAssoc(ts.ID, v.Server, 1)
		return e.shard.Meta(idx), true
	}
	return 0, false
}
