package assoc

import (
	"errors"
	"math/bits"
	"sync/atomic"
)

// MaxProbe bounds a probe chain. At a load factor of one half the expected
// chain is under two slots; a chain this long means the hash is being attacked
// or the table is full of tombstones, and the flow is then handled statelessly.
const MaxProbe = 64

// ErrLimit is returned by NewShard for a limit the table cannot hold.
var ErrLimit = errors.New("association limit must be between 1 and 2^30")

// slot states, stored in the low two bits of the meta word.
const (
	stateEmpty = 0 // never used since the last cleanup: ends every probe chain
	stateLive  = 1
	stateTomb  = 2 // was live; skipped by lookups, reusable by inserts
)

// slot is one record (see record.go for the byte map). The meta word's
// sequence number is bumped to odd before and to even after the key words
// change, so readers can detect a torn read; updates that touch only the meta
// word need no sequence bump because one atomic store is already indivisible.
type slot struct{ w [4]uint64 }

// SlotBytes is the memory cost of one slot; a shard has two per association.
const SlotBytes = 32

// slotsPerLine is how many slots share a 64-byte cache line. A key's home is
// the first slot of a line, so the line one load brings in answers most
// lookups.
const slotsPerLine = 2

// Shard is one worker's record table.
//
// Concurrency contract: exactly one goroutine, the owner, calls Find, Put,
// Touch, Mark, Delete and Sweep; it reads slots with plain loads (nobody else
// writes them) and writes every shared word with an atomic store. Any
// goroutine may call Lookup, Get, Range and Live at any time; they never block
// the owner and never wait on it without bound.
type Shard struct {
	slots    []slot // 64-byte aligned, even length
	lines    uint64 // len(slots) / slotsPerLine
	limit    int
	live     int          // owner's count of live entries
	unproven int          // owner's count of live flow records without FlagProven
	shared   atomic.Int64 // live, published for readers
	cursor   int          // next slot Sweep examines
}

// NewShard returns a shard that holds up to limit live records. It allocates
// 2*limit slots of 32 bytes up front and never grows.
func NewShard(limit int) (*Shard, error) {
	if limit < 1 || limit > 1<<30 {
		return nil, ErrLimit
	}
	s := &Shard{limit: limit}
	s.slots = allocSlots(s, 2*limit)
	s.lines = uint64(len(s.slots) / slotsPerLine)
	return s, nil
}

// Bytes is the shard's memory footprint in bytes.
func (s *Shard) Bytes() int { return len(s.slots) * SlotBytes }

// Limit is the number of live records the shard holds at most.
func (s *Shard) Limit() int { return s.limit }

// Live is the number of live records. Safe from any goroutine.
func (s *Shard) Live() int { return int(s.shared.Load()) }

// home maps a hash onto the first slot of a cache line without a division
// (Lemire's fastrange).
func (s *Shard) home(h uint64) int {
	hi, _ := bits.Mul64(h, s.lines)
	return int(hi) * slotsPerLine
}

// Home returns the first slot of the line where the probe chain of hash h
// starts. The forwarding path computes it once per packet and hands it to
// Prefetch, ResolveHome and FindAt.
func (s *Shard) Home(h uint64) int { return s.home(h) }

// Prefetch reads the meta word of the line at home (from Home) and returns
// it. Callers processing a batch touch every packet's line first, so the
// cache misses of a batch overlap instead of being paid one after another;
// the result only needs to be kept somewhere so the load is not optimised
// away.
func (s *Shard) Prefetch(home int) uint64 {
	return s.slots[home&^(slotsPerLine-1)].w[3]
}

// ResolveHome looks p up within its home line (home from Home), which a
// Prefetch has brought in: idx is p's slot if one of the line's two slots
// holds it, else -1. When the line is full and holds another key, the chain
// continues: it then reads the next line, so that, called for a whole batch
// after Prefetch, it loads only the lines a lookup still needs, with their
// misses in flight together. Owner only; sink as for Prefetch.
func (s *Shard) ResolveHome(p *Packed, home int) (idx int, sink uint64) {
	home &^= slotsPerLine - 1
	line := (*[slotsPerLine]slot)(s.slots[home : home+slotsPerLine])
	m0, m1 := line[0].w[3], line[1].w[3]
	if m0&stateMask == stateLive && line[0].w[0] == p.a && line[0].w[1] == p.b && line[0].w[2]&keyMaskW2 == p.c {
		return home, 0
	}
	if m1&stateMask == stateLive && line[1].w[0] == p.a && line[1].w[1] == p.b && line[1].w[2]&keyMaskW2 == p.c {
		return home + 1, 0
	}
	if m0&stateMask == stateEmpty || m1&stateMask == stateEmpty {
		return -1, 0
	}
	next := home + slotsPerLine
	if next == len(s.slots) {
		next = 0
	}
	return -1, s.slots[next].w[3]
}

// Find looks k up. If found, idx is its slot. If not, idx is the slot a new
// record for k should take, or -1 when the shard is full or the probe chain is
// exhausted (the caller then forwards statelessly). Owner only.
func (s *Shard) Find(k *Key, h uint64) (idx int, found bool) {
	p := k.Pack()
	return s.FindPacked(&p, h)
}

// FindPacked is Find of a packed key. Owner only.
func (s *Shard) FindPacked(p *Packed, h uint64) (idx int, found bool) {
	return s.FindAt(p, s.home(h))
}

// FindAt is FindPacked with the home slot already computed (Home). Owner
// only.
func (s *Shard) FindAt(p *Packed, home int) (idx int, found bool) {
	a, b, c := p.a, p.b, p.c
	n := len(s.slots)
	i := home
	if i < 0 || i >= n {
		i = 0
	}
	free := -1
	for p := 0; p < MaxProbe; p++ {
		sl := &s.slots[i]
		meta := sl.w[3]
		switch meta & stateMask {
		case stateEmpty:
			if free < 0 {
				free = i
			}
			return s.admit(free), false
		case stateTomb:
			if free < 0 {
				free = i
			}
		default:
			if sl.w[0] == a && sl.w[1] == b && sl.w[2]&keyMaskW2 == c {
				return i, true
			}
		}
		if i++; i == n {
			i = 0
		}
	}
	return s.admit(free), false
}

// admit refuses an insert position once the shard holds its limit.
func (s *Shard) admit(free int) int {
	if s.live >= s.limit {
		return -1
	}
	return free
}

// Meta returns the meta word of slot idx, which Find reported found: the
// forwarding decision in one register. Owner only.
func (s *Shard) Meta(idx int) Meta { return Meta(s.slots[idx].w[3]) }

// Aux returns the aux field (see Value.Tag) of slot idx. Owner only.
func (s *Shard) Aux(idx int) uint32 { return uint32(s.slots[idx].w[2] >> auxShift) }

// Value returns the record in slot idx, which Find reported found. Owner only.
func (s *Shard) Value(idx int) Value {
	sl := &s.slots[idx]
	return decode(sl.w[2], Meta(sl.w[3]))
}

// Put writes k -> v into slot idx: a new record (idx from a failed Find) or a
// replaced one (idx from a successful Find). Owner only.
func (s *Shard) Put(idx int, k *Key, v Value) {
	p := k.Pack()
	s.PutPacked(idx, &p, v)
}

// PutPacked is Put of a packed key. Owner only.
func (s *Shard) PutPacked(idx int, p *Packed, v Value) {
	sl := &s.slots[idx]
	old := sl.w[3]
	seq := Meta(old).seq()
	atomic.StoreUint64(&sl.w[3], old&^(seqMask<<seqShift)|((seq+1)&seqMask)<<seqShift)
	atomic.StoreUint64(&sl.w[0], p.a)
	if testHookMidWrite != nil {
		testHookMidWrite()
	}
	atomic.StoreUint64(&sl.w[1], p.b)
	oldW2 := sl.w[2]
	atomic.StoreUint64(&sl.w[2], valueW2(p.c, &v))
	atomic.StoreUint64(&sl.w[3], uint64(encodeMeta(stateLive, &v, seq+2)))
	if old&stateMask != stateLive {
		s.live++
		s.shared.Store(int64(s.live))
	} else if unprovenFlow(oldW2, old) {
		s.unproven--
	}
	if unprovenFlow(p.c, uint64(encodeMeta(stateLive, &v, 0))) {
		s.unproven++
	}
}

// unprovenFlow reports whether a live record with key word w2 and meta
// word meta is a flow without FlagProven.
func unprovenFlow(w2, meta uint64) bool {
	return Kind(w2>>kindShift)&3 == KindFlow && Meta(meta).Flags()&FlagProven == 0
}

// App reports whether slot idx's record has Value.App. Owner only.
func (s *Shard) App(idx int) bool { return s.slots[idx].w[2]>>appShift&1 == 1 }

// MarkApp sets Value.App on slot idx: one atomic store. Owner only.
func (s *Shard) MarkApp(idx int) {
	sl := &s.slots[idx]
	atomic.StoreUint64(&sl.w[2], sl.w[2]|1<<appShift)
}

// KeyAt returns the key of slot idx: a live record, or one Sweep or Delete
// has just turned into a tombstone (its key words stay until the slot is
// reused). Owner only.
func (s *Shard) KeyAt(idx int) Key {
	sl := &s.slots[idx]
	return decodeKey(sl.w[0], sl.w[1], sl.w[2])
}

// Unproven is the number of live flow records without FlagProven. Owner
// only.
func (s *Shard) Unproven() int { return s.unproven }

// SetAux rewrites the aux field (Value.Tag) of slot idx in place: one atomic
// store, like Touch, so readers see the old or the new value whole. Owner
// only.
func (s *Shard) SetAux(idx int, aux uint32) {
	sl := &s.slots[idx]
	atomic.StoreUint64(&sl.w[2], sl.w[2]&(1<<auxShift-1)|uint64(aux)<<auxShift)
}

// Touch records that slot idx saw a packet at clock reading now. It writes
// only when the reading changed, so a busy flow costs one store per second.
// Owner only.
func (s *Shard) Touch(idx int, now uint32) {
	sl := &s.slots[idx]
	meta := sl.w[3]
	if uint32(meta>>seenShift)&seenMask == now&seenMask {
		return
	}
	atomic.StoreUint64(&sl.w[3], meta&^(seenMask<<seenShift)|uint64(now&seenMask)<<seenShift)
}

// Mark sets flags on slot idx (the TCP and SCTP teardown evidence,
// FlagProven). Owner only.
func (s *Shard) Mark(idx int, flags uint8) {
	sl := &s.slots[idx]
	meta := sl.w[3]
	if next := meta | uint64(flags&0xF)<<flagShift; next != meta {
		if unprovenFlow(sl.w[2], meta) && !unprovenFlow(sl.w[2], next) {
			s.unproven--
		}
		atomic.StoreUint64(&sl.w[3], next)
	}
}

// Delete removes the live record in slot idx (from a successful Find). Owner
// only.
func (s *Shard) Delete(idx int) {
	sl := &s.slots[idx]
	meta := sl.w[3]
	if meta&stateMask != stateLive {
		return
	}
	atomic.StoreUint64(&sl.w[3], meta&^stateMask|stateTomb)
	s.live--
	if unprovenFlow(sl.w[2], meta) {
		s.unproven--
	}
	s.shared.Store(int64(s.live))
	s.cleanup(idx)
}

// Ages are the idle times after which Sweep expires records, in clock
// seconds, by the key's Set. A record whose set has no entry (a removed
// target set) expires at once.
type Ages struct {
	Kind     [NumKinds][]uint32 // by kind, then set
	Unproven []uint32           // flow records without FlagProven, by set (syn_age)
}

// Sweep examines the next budget slots, turns live records idle for longer
// than their age into tombstones, and returns how many it expired. onExpire,
// if not nil, hears the slot (KeyAt still reads its key), kind, set and
// server slot of each expired record (the owner keeps per-server counts and
// reports deletions with it). Owner only; workers call it with a
// small budget every loop so the whole table is visited continuously at no
// per-packet cost.
func (s *Shard) Sweep(budget int, now uint32, ages *Ages, onExpire func(idx int, kind Kind, set uint16, server uint8)) (expired int) {
	n := len(s.slots)
	for ; budget > 0; budget-- {
		i := s.cursor
		if s.cursor++; s.cursor == n {
			s.cursor = 0
		}
		sl := &s.slots[i]
		meta := sl.w[3]
		switch meta & stateMask {
		case stateLive:
			w2 := sl.w[2]
			kind, set := Kind(w2>>kindShift)&3, int(uint16(w2>>setShift)&MaxSetID)
			byKind, unproven := ages.Kind[kind], unprovenFlow(w2, meta)
			if unproven {
				byKind = ages.Unproven
			}
			if set < len(byKind) && Age(now, Meta(meta).LastSeen()) <= byKind[set] {
				continue
			}
			atomic.StoreUint64(&sl.w[3], meta&^stateMask|stateTomb)
			s.live--
			if unproven {
				s.unproven--
			}
			expired++
			if onExpire != nil {
				onExpire(i, kind, uint16(set), Meta(meta).Server())
			}
			s.cleanup(i)
		case stateTomb:
			s.cleanup(i)
		}
	}
	if expired > 0 {
		s.shared.Store(int64(s.live))
	}
	return expired
}

// cleanup turns tombstones back into empty slots where that cannot cut a probe
// chain: a tombstone followed by an empty slot ends every chain through it
// anyway, and so does each tombstone run directly before it.
func (s *Shard) cleanup(i int) {
	n := len(s.slots)
	next := i + 1
	if next == n {
		next = 0
	}
	if s.slots[next].w[3]&stateMask != stateEmpty {
		return
	}
	for p := 0; p < MaxProbe; p++ {
		meta := s.slots[i].w[3]
		if meta&stateMask != stateTomb {
			return
		}
		atomic.StoreUint64(&s.slots[i].w[3], meta&^stateMask|stateEmpty)
		if i--; i < 0 {
			i = n - 1
		}
	}
}
