package assoc

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"runtime"
	"sync/atomic"
)

// Key identifies an association: one client flow towards one target set.
// Addresses are 16 bytes; IPv4 clients use the IPv4-mapped form so both
// families share one key type.
type Key struct {
	Addr  [16]byte // client address
	Port  uint16   // client port
	Proto uint8    // IANA protocol number: TCP, UDP or SCTP
	Set   uint16   // target set id, stable across reloads
}

// Value is what an association records about its flow.
type Value struct {
	Server   uint8  // server slot within the target set (0..15)
	Gen      uint16 // generation of that slot when chosen; a reused slot has a new one
	Flags    uint8  // FlagFIN, FlagRST, FlagShutdown, FlagTagLearned
	Tag      uint32 // SCTP verification tag seen from the client, once learned
	LastSeen uint32 // clock reading (see Clock) of the last packet
}

// Flags an association carries about the connection it records. Only four bits
// are stored.
const (
	FlagFIN        uint8 = 1 << iota // a TCP FIN was seen from the client
	FlagRST                          // a TCP RST was seen from the client
	FlagShutdown                     // an SCTP SHUTDOWN, SHUTDOWN ACK or ABORT was seen
	FlagTagLearned                   // Tag holds the flow's SCTP verification tag
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

// Layout of the meta word (word 3 of a slot). The sequence number is bumped
// to odd before and to even after the key words change, so readers can detect
// a torn read; updates that touch only the meta word need no sequence bump
// because one atomic store is already indivisible.
const (
	stateBits   = 0
	protoShift  = 2
	serverShift = 4
	flagShift   = 8
	genShift    = 12
	seenShift   = 28
	seqShift    = 50

	seenMask = 1<<22 - 1
	seqMask  = 1<<14 - 1
)

// slot holds one association in 32 bytes: two cache-line halves, so most
// probe chains touch one line.
//
//	w[0] client address bytes 0-7     w[1] client address bytes 8-15
//	w[2] port | set<<16 | tag<<32     w[3] meta (state, proto, server, flags, gen, seen, seq)
type slot struct{ w [4]uint64 }

// Shard is one worker's association table.
//
// Concurrency contract: exactly one goroutine, the owner, calls Find, Put,
// Touch, Mark and Sweep; it reads slots with plain loads (nobody else writes
// them) and writes every shared word with an atomic store. Any goroutine may
// call Get, Range and Live at any time; they never block the owner.
type Shard struct {
	slots  []slot
	limit  int
	live   int          // owner's count of live entries
	shared atomic.Int64 // live, published for readers
	cursor int          // next slot Sweep examines
}

// NewShard returns a shard that holds up to limit live associations. It
// allocates 2*limit slots of 32 bytes up front and never grows.
func NewShard(limit int) (*Shard, error) {
	if limit < 1 || limit > 1<<30 {
		return nil, ErrLimit
	}
	s := &Shard{limit: limit}
	s.slots = allocSlots(s, 2*limit)
	return s, nil
}

// SlotBytes is the memory cost of one slot; a shard has two per association.
const SlotBytes = 32

// Bytes is the shard's memory footprint in bytes.
func (s *Shard) Bytes() int { return len(s.slots) * SlotBytes }

// Limit is the number of live associations the shard holds at most.
func (s *Shard) Limit() int { return s.limit }

// Live is the number of live associations. Safe from any goroutine.
func (s *Shard) Live() int { return int(s.shared.Load()) }

// Hash mixes a key into the 64-bit hash Find expects. Callers compute it once
// per packet (and may use it to touch the slot early, see Prefetch).
func (k *Key) Hash() uint64 {
	a, b, c := k.words()
	h := a*0x9E3779B97F4A7C15 ^ bits.RotateLeft64(b*0xC2B2AE3D27D4EB4F, 31) ^ (c|uint64(k.Proto)<<48)*0x165667B19E3779F9
	h ^= h >> 33
	h *= 0xFF51AFD7ED558CCD
	h ^= h >> 33
	h *= 0xC4CEB9FE1A85EC53
	h ^= h >> 33
	return h
}

func (k *Key) words() (a, b, c uint64) {
	return binary.LittleEndian.Uint64(k.Addr[0:8]), binary.LittleEndian.Uint64(k.Addr[8:16]),
		uint64(k.Port) | uint64(k.Set)<<16
}

// home maps a hash onto the slot array without a division (Lemire's fastrange).
func (s *Shard) home(h uint64) int {
	hi, _ := bits.Mul64(h, uint64(len(s.slots)))
	return int(hi)
}

// Prefetch reads the first word of k's home slot and returns it. Callers
// processing a batch touch every packet's slot first, so the cache misses of
// a batch overlap instead of being paid one after another; the result only
// needs to be kept somewhere so the load is not optimised away.
func (s *Shard) Prefetch(h uint64) uint64 {
	return s.slots[s.home(h)].w[3]
}

func matches(sl *slot, a, b, c uint64, proto uint64, meta uint64) bool {
	return meta&3 == stateLive && sl.w[0] == a && sl.w[1] == b && uint32(sl.w[2]) == uint32(c) &&
		(meta>>protoShift)&3 == proto
}

// Find looks k up. If found, idx is its slot. If not, idx is the slot a new
// association for k should take, or -1 when the shard is full or the probe
// chain is exhausted (the caller then forwards statelessly). Owner only.
func (s *Shard) Find(k *Key, h uint64) (idx int, found bool) {
	a, b, c := k.words()
	pc := protoCode(k.Proto)
	n := len(s.slots)
	i := s.home(h)
	free := -1
	for p := 0; p < MaxProbe; p++ {
		sl := &s.slots[i]
		meta := sl.w[3]
		switch meta & 3 {
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
			if matches(sl, a, b, c, pc, meta) {
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

// Value returns the association in slot idx, which Find reported found. Owner only.
func (s *Shard) Value(idx int) Value {
	sl := &s.slots[idx]
	return decode(sl.w[2], sl.w[3])
}

func decode(w2, meta uint64) Value {
	return Value{
		Server:   uint8(meta>>serverShift) & 0xF,
		Gen:      uint16(meta >> genShift),
		Flags:    uint8(meta>>flagShift) & 0xF,
		Tag:      uint32(w2 >> 32),
		LastSeen: uint32(meta>>seenShift) & seenMask,
	}
}

func encodeMeta(state uint64, proto uint8, v Value, seq uint64) uint64 {
	return state | protoCode(proto)<<protoShift | uint64(v.Server&0xF)<<serverShift |
		uint64(v.Flags&0xF)<<flagShift | uint64(v.Gen)<<genShift |
		uint64(v.LastSeen&seenMask)<<seenShift | (seq&seqMask)<<seqShift
}

// Put writes k -> v into slot idx: a new association (idx from a failed Find)
// or a re-selected one (idx from a successful Find). Owner only.
func (s *Shard) Put(idx int, k *Key, v Value) {
	sl := &s.slots[idx]
	old := sl.w[3]
	seq := old >> seqShift
	atomic.StoreUint64(&sl.w[3], old&^(seqMask<<seqShift)|((seq+1)&seqMask)<<seqShift)
	a, b, c := k.words()
	atomic.StoreUint64(&sl.w[0], a)
	atomic.StoreUint64(&sl.w[1], b)
	atomic.StoreUint64(&sl.w[2], c|uint64(v.Tag)<<32)
	atomic.StoreUint64(&sl.w[3], encodeMeta(stateLive, k.Proto, v, seq+2))
	if old&3 != stateLive {
		s.live++
		s.shared.Store(int64(s.live))
	}
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

// Mark sets flags on slot idx (the TCP and SCTP teardown evidence). Owner only.
func (s *Shard) Mark(idx int, flags uint8) {
	sl := &s.slots[idx]
	meta := sl.w[3]
	if next := meta | uint64(flags&0xF)<<flagShift; next != meta {
		atomic.StoreUint64(&sl.w[3], next)
	}
}

// Sweep examines the next budget slots, turns live associations idle for
// longer than their target set's delete age into tombstones, and returns how
// many it expired. ages[set] is the delete age in clock seconds; an
// association whose set is no longer in ages is expired at once. onExpire, if
// not nil, hears the set and server slot of each expired association (the
// owner keeps per-server counts with it). Owner only; workers call it with a
// small budget every loop so the whole table is visited continuously at no
// per-packet cost.
func (s *Shard) Sweep(budget int, now uint32, ages []uint32, onExpire func(set uint16, server uint8)) (expired int) {
	n := len(s.slots)
	for ; budget > 0; budget-- {
		i := s.cursor
		if s.cursor++; s.cursor == n {
			s.cursor = 0
		}
		sl := &s.slots[i]
		meta := sl.w[3]
		switch meta & 3 {
		case stateLive:
			set := int(uint16(sl.w[2] >> 16))
			if set < len(ages) && Age(now, uint32(meta>>seenShift)) <= ages[set] {
				continue
			}
			atomic.StoreUint64(&sl.w[3], meta&^3|stateTomb)
			s.live--
			expired++
			if onExpire != nil {
				onExpire(uint16(set), uint8(meta>>serverShift)&0xF)
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
	if s.slots[next].w[3]&3 != stateEmpty {
		return
	}
	for p := 0; p < MaxProbe; p++ {
		meta := s.slots[i].w[3]
		if meta&3 != stateTomb {
			return
		}
		atomic.StoreUint64(&s.slots[i].w[3], meta&^3|stateEmpty)
		if i--; i < 0 {
			i = n - 1
		}
	}
}

// Get looks k up from any goroutine without blocking the owner.
func (s *Shard) Get(k *Key) (Value, bool) {
	a, b, c := k.words()
	pc := protoCode(k.Proto)
	n := len(s.slots)
	i := s.home(k.Hash())
	for p := 0; p < MaxProbe; p++ {
		w0, w1, w2, meta, ok := s.read(i)
		if !ok {
			return Value{}, false
		}
		if meta&3 == stateEmpty {
			return Value{}, false
		}
		if meta&3 == stateLive && w0 == a && w1 == b && uint32(w2) == uint32(c) && (meta>>protoShift)&3 == pc {
			return decode(w2, meta), true
		}
		if i++; i == n {
			i = 0
		}
	}
	return Value{}, false
}

// read takes a consistent snapshot of slot i with the seqlock protocol. While
// the owner is mid-write it spins, yielding to the scheduler because the owner
// may have been descheduled inside its write. It always returns: the owner
// finishes every write it starts. ok is kept for a later bounded variant that
// other workers will use, which must never wait.
func (s *Shard) read(i int) (w0, w1, w2, meta uint64, ok bool) {
	sl := &s.slots[i]
	for try := 1; ; try++ {
		m1 := atomic.LoadUint64(&sl.w[3])
		if (m1>>seqShift)&1 == 1 {
			if try%8 == 0 {
				runtime.Gosched()
			}
			continue
		}
		w0 = atomic.LoadUint64(&sl.w[0])
		w1 = atomic.LoadUint64(&sl.w[1])
		w2 = atomic.LoadUint64(&sl.w[2])
		meta = atomic.LoadUint64(&sl.w[3])
		if m1>>seqShift == meta>>seqShift {
			return w0, w1, w2, meta, true
		}
	}
}

// Range calls fn for every live association until fn returns false. Safe from
// any goroutine; associations created or removed during the walk may or may
// not be seen.
func (s *Shard) Range(fn func(Key, Value) bool) {
	for i := range s.slots {
		w0, w1, w2, meta, ok := s.read(i)
		if !ok || meta&3 != stateLive {
			continue
		}
		var k Key
		binary.LittleEndian.PutUint64(k.Addr[0:8], w0)
		binary.LittleEndian.PutUint64(k.Addr[8:16], w1)
		k.Port = uint16(w2)
		k.Set = uint16(w2 >> 16)
		k.Proto = protoNumber((meta >> protoShift) & 3)
		if !fn(k, decode(w2, meta)) {
			return
		}
	}
}

// protoCode packs the three protocols an association can carry into two bits.
func protoCode(p uint8) uint64 {
	switch p {
	case 6:
		return 1
	case 17:
		return 2
	case 132:
		return 3
	}
	return 0
}

func protoNumber(c uint64) uint8 {
	return [4]uint8{0, 6, 17, 132}[c&3]
}
