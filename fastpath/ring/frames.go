package ring

import (
	"sync"
	"sync/atomic"
)

// DefaultSlotSize fits any frame received into a 2048-byte UMEM frame.
const DefaultSlotSize = 2048

// Meta is what travels with a frame besides its bytes. The ring does not
// interpret it.
type Meta struct {
	Iface uint16 // the data plane's index of the interface the frame came in on
	Queue uint16 // its RX queue
	Set   uint16 // target set id, or NoSet
	Flags uint16 // for the user of the ring
	Hash  uint64 // association key hash, if the producer computed one
}

// NoSet is Meta.Set of a frame that belongs to no target set.
const NoSet = ^uint16(0)

// frameHdr is a slot's length and metadata; the bytes are in Frames.buf.
type frameHdr struct {
	n    uint32
	meta Meta
}

// Frames is a bounded single-producer/single-consumer ring of frame copies.
// Every slot is a preallocated buffer of SlotSize bytes: a push copies the
// frame into the next one, so the producer may reuse or free its own buffer
// at once and nothing allocates after NewFrames. The consumer reads the
// oldest frame in place (Peek) and then gives its slot back (Release).
//
// One goroutine produces (TryPush, Put, Flush), one consumes (Peek, Release,
// Wait); Len, Cap and the counters are safe from anywhere.
type Frames struct {
	core
	slotSize int
	// buf and hdrs are written by the producer between cons and head and
	// read by the consumer between cons and prod; the atomic stores of the
	// indices order one side's accesses before the other's.
	buf  []byte
	hdrs []frameHdr

	// oversize counts frames refused for being longer than a slot. Only the
	// producer adds to it; anyone reads it.
	oversize atomic.Uint64
}

// NewFrames returns an empty ring of capacity slots (rounded up to a power
// of two) of slotSize bytes each (DefaultSlotSize if slotSize <= 0). It
// allocates capacity*slotSize bytes once.
func NewFrames(capacity, slotSize int) *Frames {
	if slotSize <= 0 {
		slotSize = DefaultSlotSize
	}
	r := &Frames{slotSize: slotSize}
	r.init(capacity)
	r.buf = make([]byte, int(r.size)*slotSize)
	r.hdrs = make([]frameHdr, r.size)
	return r
}

// Put copies frame and m into the next free slot without making them visible
// to the consumer yet; Flush does, once for everything put since the last
// one. It returns false if the ring is full (counted in Overflows) or frame
// is longer than SlotSize (counted in Oversize). Producer only.
func (r *Frames) Put(frame []byte, m Meta) bool {
	if len(frame) > r.slotSize {
		r.oversize.Add(1)
		return false
	}
	i, ok := r.reserve()
	if !ok {
		return false
	}
	s := int(i & r.mask)
	copy(r.buf[s*r.slotSize:], frame)
	r.hdrs[s] = frameHdr{n: uint32(len(frame)), meta: m}
	r.head++
	return true
}

// Flush makes every frame Put so far visible to the consumer and wakes it if
// it sleeps in Wait. Producer only.
func (r *Frames) Flush() { r.commit() }

// TryPush is Put followed by Flush. It never blocks. Producer only.
func (r *Frames) TryPush(frame []byte, m Meta) bool {
	if !r.Put(frame, m) {
		return false
	}
	r.commit()
	return true
}

// Peek returns the oldest frame and its metadata without removing it, or
// false if the ring is empty. The bytes are the ring's slot: valid, and the
// consumer's to read or rewrite in place, until Release. Consumer only.
func (r *Frames) Peek() (frame []byte, m Meta, ok bool) {
	if r.avail() == 0 {
		return nil, Meta{}, false
	}
	s := int(r.tail & r.mask)
	h := &r.hdrs[s]
	off := s * r.slotSize
	return r.buf[off : off+int(h.n) : off+int(h.n)], h.meta, true
}

// Release gives the slot of the frame Peek returned back to the producer. It
// does nothing on an empty ring. Consumer only.
func (r *Frames) Release() {
	if r.avail() > 0 {
		r.release(1)
	}
}

// Wait blocks until the ring holds a frame or done is closed, without
// spinning (see the package comment), and reports whether a frame is there.
// Consumer only.
func (r *Frames) Wait(done <-chan struct{}) bool { return r.wait(done) }

// Len returns the number of frames pushed (and flushed) but not yet
// released (a snapshot from other goroutines).
func (r *Frames) Len() int { return r.length() }

// Cap returns the number of slots.
func (r *Frames) Cap() int { return int(r.size) }

// SlotSize returns the longest frame a slot holds.
func (r *Frames) SlotSize() int { return r.slotSize }

// Overflows returns how many frames the ring refused because it was full.
func (r *Frames) Overflows() uint64 { return r.overflows.Load() }

// Oversize returns how many frames the ring refused for being longer than
// SlotSize.
func (r *Frames) Oversize() uint64 { return r.oversize.Load() }

// MPFrames is a Frames ring with many producers, serialised by a mutex that
// only they take: the consumer (a worker) stays lock-free. Frames of one
// producer keep their order.
type MPFrames struct {
	// mu serialises producers; the consumer never takes it.
	mu sync.Mutex
	r  *Frames
}

// NewMPFrames returns an empty ring of capacity slots of slotSize bytes (see
// NewFrames).
func NewMPFrames(capacity, slotSize int) *MPFrames {
	return &MPFrames{r: NewFrames(capacity, slotSize)}
}

// TryPush copies frame and m into the ring, visible to the consumer when it
// returns true. It never waits for the consumer; a full ring or a frame
// longer than SlotSize returns false and is counted. Any goroutine.
func (q *MPFrames) TryPush(frame []byte, m Meta) bool {
	q.mu.Lock()
	ok := q.r.TryPush(frame, m)
	q.mu.Unlock()
	return ok
}

// Peek returns the oldest frame in place (see Frames.Peek). Consumer only.
func (q *MPFrames) Peek() ([]byte, Meta, bool) { return q.r.Peek() }

// Release frees the slot of the frame Peek returned. Consumer only.
func (q *MPFrames) Release() { q.r.Release() }

// Wait blocks until the ring holds a frame or done is closed. Consumer only.
func (q *MPFrames) Wait(done <-chan struct{}) bool { return q.r.Wait(done) }

// Len returns the number of frames waiting (a snapshot).
func (q *MPFrames) Len() int { return q.r.Len() }

// Cap returns the number of slots.
func (q *MPFrames) Cap() int { return q.r.Cap() }

// SlotSize returns the longest frame a slot holds.
func (q *MPFrames) SlotSize() int { return q.r.SlotSize() }

// Overflows returns how many frames the ring refused because it was full.
func (q *MPFrames) Overflows() uint64 { return q.r.Overflows() }

// Oversize returns how many frames the ring refused for being too long.
func (q *MPFrames) Oversize() uint64 { return q.r.Oversize() }
