package fastpath

import (
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/ring"
)

// ControlOp is what a control message does to a record of a worker's shard.
type ControlOp uint8

// Control operations. Each applies only where it makes sense, so that a
// message never silently clobbers a record the worker made meanwhile: an
// insert does not replace, an update does not create.
const (
	// ControlInsert adds the record; rejected if the key is already there
	// or the shard is full.
	ControlInsert ControlOp = iota + 1
	// ControlUpdate replaces the value of an existing record; rejected if
	// the key is not there.
	ControlUpdate
	// ControlDelete removes the record; rejected if the key is not there.
	ControlDelete
	// ControlImport writes a mate's record (replicate.go) with
	// Value.Origin = OriginImported: added if the key is absent, replacing
	// an earlier import; a record this instance made stays (ControlExists),
	// since its own packets are the later word on the flow.
	ControlImport
	// ControlUnimport removes an imported record; a local one stays
	// (ControlExists).
	ControlUnimport
)

// ControlMsg is one change to a worker's shard, sent by the slow path over
// the worker's control ring (Dataplane.PushControl) and applied by the worker
// at the top of its loop, in the order sent.
//
// Value.LastSeen is an assoc.Now reading: a record is as old as the sender
// says (an imported association keeps its age), so a sender making a fresh
// record sets it to assoc.Now().
type ControlMsg struct {
	Op    ControlOp
	Key   assoc.Key
	Value assoc.Value
}

// ControlResult is the outcome of applying a control message.
type ControlResult uint8

// Control outcomes. Every outcome but ControlApplied counts as
// ControlRejected.
const (
	ControlApplied ControlResult = iota // the shard holds the change
	ControlExists                       // insert of a key already there
	ControlMissing                      // update or delete of a key not there
	ControlFull                         // insert into a full shard or probe chain
	ControlInvalid                      // an unknown operation, kind, set id above assoc.MaxSetID or server slot above MaxServers-1
)

// ApplyControl applies m to the engine's shard and counts the outcome. Owner
// goroutine only: the worker calls it for each message it takes off its
// control ring.
//
// Flow records (assoc.KindFlow) keep the per-server association gauge as
// the engine's own do: an insert counts for its server, a delete against
// it, an update moves it.
func (e *Engine) ApplyControl(m *ControlMsg) ControlResult {
	r := e.applyControl(m)
	if r == ControlApplied {
		e.local.ControlApplied++
	} else {
		e.local.ControlRejected++
	}
	return r
}

func (e *Engine) applyControl(m *ControlMsg) ControlResult {
	k := &m.Key
	if k.Kind >= assoc.NumKinds || k.Set > assoc.MaxSetID || int(k.Set) >= MaxSets || m.Value.Server >= MaxServers {
		return ControlInvalid
	}
	idx, found := e.shard.Find(k, k.Hash())
	flow := k.Kind == assoc.KindFlow
	switch m.Op {
	case ControlInsert:
		if found {
			return ControlExists
		}
		if idx < 0 {
			return ControlFull
		}
		e.shard.Put(idx, k, m.Value)
		if flow {
			e.countAssoc(k.Set, m.Value.Server, 1)
		}
	case ControlUpdate:
		if !found {
			return ControlMissing
		}
		old := e.shard.Meta(idx).Server()
		e.shard.Put(idx, k, m.Value)
		if flow && old != m.Value.Server {
			e.countAssoc(k.Set, old, -1)
			e.countAssoc(k.Set, m.Value.Server, 1)
		}
	case ControlDelete:
		if !found {
			return ControlMissing
		}
		old := e.shard.Meta(idx).Server()
		e.shard.Delete(idx)
		if flow {
			e.countAssoc(k.Set, old, -1)
		}
	case ControlImport:
		if found && e.shard.Value(idx).Origin != assoc.OriginImported {
			return ControlExists
		}
		v := m.Value
		v.Origin = assoc.OriginImported
		if found {
			m := *m
			m.Op, m.Value = ControlUpdate, v
			return e.applyControl(&m)
		}
		m := *m
		m.Op, m.Value = ControlInsert, v
		return e.applyControl(&m)
	case ControlUnimport:
		if !found {
			return ControlMissing
		}
		if e.shard.Value(idx).Origin != assoc.OriginImported {
			return ControlExists
		}
		m := *m
		m.Op = ControlDelete
		return e.applyControl(&m)
	default:
		return ControlInvalid
	}
	return ControlApplied
}

// ProcessInjected runs one frame the slow path injected through the engine
// as a one-frame batch, with punting disabled (the frame has been through the
// slow path already), and returns the verdict: Transmit with the frame
// rewritten by its set's forwarding, or Drop (counted under its reason). The
// frame does not count as received (RxPackets, RxBytes). Owner goroutine
// only.
func (e *Engine) ProcessInjected(frame []byte, now uint32) Action {
	frames := [1][]byte{frame}
	var acts [1]Action
	rx, rxBytes := e.local.RxPackets, e.local.RxBytes
	e.noPunt = true
	e.Process(frames[:], acts[:], now)
	e.noPunt = false
	e.local.RxPackets, e.local.RxBytes = rx, rxBytes
	if acts[0] == Punt {
		// Cannot happen while Process honours noPunt; never loop a frame
		// back to the slow path.
		return Drop
	}
	return acts[0]
}

// puntMeta describes frame i of the batch last processed for the punt ring:
// its interface and, if it reached a target set, the set and key hash.
func (e *Engine) puntMeta(i int, queue int) ring.Meta {
	m := ring.Meta{Iface: uint16(e.iface), Queue: uint16(queue), Set: ring.NoSet}
	if ts := e.sets[i]; ts != nil {
		m.Set, m.Hash = ts.ID, e.hashes[i]
	}
	return m
}

// countPunted records frames copied into the punt ring.
func (e *Engine) countPunted(n uint64) { e.local.Punted += n }

// countInjected records injected frames sent and those taken off the inject
// ring but not sent.
func (e *Engine) countInjected(sent, dropped uint64) {
	e.local.Injected += sent
	e.local.InjectDropped += dropped
}

// setRingOverflows copies the refusals the inject and control rings counted
// on the slow path's side into the counters, so they are published with the
// rest.
func (e *Engine) setRingOverflows(inject, control uint64) {
	e.local.InjectOverflow, e.local.ControlOverflow = inject, control
}
