package fastpath

import (
	"encoding/binary"
	"sync/atomic"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// Client next hops learned from the clients' own frames: the first of each
// flow (a new association, or a data connection's SYN).
//
// The slow path publishes the client-side routes and neighbours it reads
// from the kernel (Tables.Routes), but a client on ipfront's subnet can send
// its first packet before the kernel's entry for it (made by the client's
// own ARP or ND for ipfront's address) has reached the workers, and the
// server's answer would then be dropped. Every worker therefore remembers,
// for the NAT clients whose frames it receives, the interface and source
// MAC they came from, in a small direct-mapped table that it alone writes
// and every worker reads (a per-slot seqlock, bounded like assoc.Lookup). A
// reply whose route has no known next hop takes the learned one if it came
// in by the route's interface: with symmetric routing that is the client
// itself on its subnet, or the router it is behind. The table is a
// fallback, never consulted while the route's next hop is known, and an
// entry is simply overwritten by a later client with the same slot.

// learnSlots is the size of a worker's table; a power of two.
const learnSlots = 256

// learnSlot is one learned client: its address and, in hop, the MAC (bytes
// 0-5), the interface (byte 6) and a valid flag (byte 7).
type learnSlot struct {
	seq    atomic.Uint32
	lo, hi atomic.Uint64
	hop    atomic.Uint64
}

// learnTable is one worker's learned clients.
type learnTable struct {
	slots [learnSlots]learnSlot
}

func learnIndex(lo, hi uint64) int {
	h := (lo ^ hi) * 0x9E3779B97F4A7C15
	return int(h >> 56 & (learnSlots - 1))
}

// learn records that client src's frame came in by iface from mac. Owner
// only; a slot that already says so is not written.
func (l *learnTable) learn(src *[16]byte, iface int, mac [6]byte) {
	lo, hi := binary.LittleEndian.Uint64(src[:8]), binary.LittleEndian.Uint64(src[8:])
	var b [8]byte
	copy(b[:6], mac[:])
	b[6], b[7] = byte(iface), 1
	hop := binary.LittleEndian.Uint64(b[:])
	s := &l.slots[learnIndex(lo, hi)]
	if s.lo.Load() == lo && s.hi.Load() == hi && s.hop.Load() == hop {
		return
	}
	seq := s.seq.Load()
	s.seq.Store(seq + 1) // odd: being written
	s.lo.Store(lo)
	s.hi.Store(hi)
	s.hop.Store(hop)
	s.seq.Store(seq + 2)
}

// lookup returns what l learned about dst, if a consistent read finds it.
// Any goroutine.
func (l *learnTable) lookup(dst *[16]byte) (Hop, bool) {
	lo, hi := binary.LittleEndian.Uint64(dst[:8]), binary.LittleEndian.Uint64(dst[8:])
	s := &l.slots[learnIndex(lo, hi)]
	for range 4 {
		seq := s.seq.Load()
		if seq&1 == 1 {
			continue
		}
		slo, shi, hop := s.lo.Load(), s.hi.Load(), s.hop.Load()
		if s.seq.Load() != seq {
			continue
		}
		if slo != lo || shi != hi || hop>>56 != 1 {
			return Hop{}, false
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], hop)
		return Hop{Iface: b[6], MAC: [6]byte(b[:6])}, true
	}
	return Hop{}, false
}

// learnClient records the client of frame i, received by this engine.
func (e *Engine) learnClient(frame []byte, f *packet.Flow) {
	e.nat.learned.learn(&f.Src, e.iface, packet.Ethernet(frame).Src())
}

// learnedHop looks for what any worker learned about client dst arriving
// by interface iface.
func (e *Engine) learnedHop(dst *[16]byte, iface uint8) (Hop, bool) {
	if h, ok := e.nat.learned.lookup(dst); ok && h.Iface == iface {
		return h, true
	}
	for _, o := range e.nat.learners {
		if h, ok := o.lookup(dst); ok && h.Iface == iface {
			return h, true
		}
	}
	return Hop{}, false
}
