package ring

import "sync"

// SPSC is a bounded single-producer/single-consumer ring of values of type T.
// Values are copied in and out; nothing allocates after NewSPSC.
//
// One goroutine produces (TryPush, Put, Flush), one consumes (TryPop,
// PopBatch, Wait); Len, Cap and Overflows are safe from anywhere.
type SPSC[T any] struct {
	core
	// slots are written by the producer between cons and head, and read by
	// the consumer between cons and prod; the atomic store of prod (or of
	// cons) orders the slot accesses of one side before the other's.
	slots []T
}

// NewSPSC returns an empty ring holding capacity values, rounded up to a
// power of two (at most MaxCapacity).
func NewSPSC[T any](capacity int) *SPSC[T] {
	r := &SPSC[T]{}
	r.init(capacity)
	r.slots = make([]T, r.size)
	return r
}

// Put copies v into the next free slot without making it visible to the
// consumer yet: Flush does, once for everything put since the last one. A
// producer that pushes several values per round (a worker, once per batch)
// pays one atomic store and at most one wake-up per round this way. It
// returns false, and counts an overflow, if the ring is full (staged values
// count). Producer only.
func (r *SPSC[T]) Put(v T) bool {
	i, ok := r.reserve()
	if !ok {
		return false
	}
	r.slots[i&r.mask] = v
	r.head++
	return true
}

// Flush makes every value Put so far visible to the consumer and wakes it if
// it sleeps in Wait. Producer only.
func (r *SPSC[T]) Flush() { r.commit() }

// TryPush is Put followed by Flush: v is visible to the consumer when it
// returns true. It never blocks; a full ring returns false and counts an
// overflow. Producer only.
func (r *SPSC[T]) TryPush(v T) bool {
	if !r.Put(v) {
		return false
	}
	r.commit()
	return true
}

// TryPop removes and returns the oldest value, or reports false if the ring
// is empty. Consumer only.
func (r *SPSC[T]) TryPop() (v T, ok bool) {
	if r.avail() == 0 {
		return v, false
	}
	s := &r.slots[r.tail&r.mask]
	v = *s
	var zero T
	*s = zero // drop references the value may hold, for the garbage collector
	r.release(1)
	return v, true
}

// PopBatch moves up to len(out) of the oldest values into out and returns how
// many; the slots go back to the producer with one atomic store. Consumer
// only.
func (r *SPSC[T]) PopBatch(out []T) int {
	n := min(r.avail(), uint32(min(len(out), MaxCapacity)))
	var zero T
	for i := uint32(0); i < n; i++ {
		s := &r.slots[(r.tail+i)&r.mask]
		out[i] = *s
		*s = zero
	}
	if n > 0 {
		r.release(n)
	}
	return int(n)
}

// Wait blocks until the ring holds a value or done is closed, without
// spinning (see the package comment), and reports whether a value is there.
// Consumer only.
func (r *SPSC[T]) Wait(done <-chan struct{}) bool { return r.wait(done) }

// Len returns the number of values pushed (and flushed) but not yet popped.
// From any goroutine it is a snapshot.
func (r *SPSC[T]) Len() int { return r.length() }

// Cap returns the number of values the ring holds.
func (r *SPSC[T]) Cap() int { return int(r.size) }

// Overflows returns how many pushes the ring refused because it was full.
func (r *SPSC[T]) Overflows() uint64 { return r.overflows.Load() }

// MPSC is a bounded ring of values with many producers and one consumer:
// producers are serialised by a mutex that only they take, so the consumer (a
// worker) stays lock-free and never waits for a producer. Values from one
// producer keep their order; values of different producers are ordered by
// who took the mutex first.
type MPSC[T any] struct {
	// mu serialises producers; the consumer never takes it.
	mu sync.Mutex
	r  SPSC[T]
}

// NewMPSC returns an empty ring holding capacity values, rounded up to a
// power of two.
func NewMPSC[T any](capacity int) *MPSC[T] {
	q := &MPSC[T]{}
	q.r.init(capacity)
	q.r.slots = make([]T, q.r.size)
	return q
}

// TryPush appends v, visible to the consumer when it returns true. It never
// waits for the consumer; a full ring returns false and counts an overflow.
// Any goroutine.
func (q *MPSC[T]) TryPush(v T) bool {
	q.mu.Lock()
	ok := q.r.TryPush(v)
	q.mu.Unlock()
	return ok
}

// TryPop removes and returns the oldest value. Consumer only.
func (q *MPSC[T]) TryPop() (T, bool) { return q.r.TryPop() }

// PopBatch moves up to len(out) of the oldest values into out and returns how
// many. Consumer only.
func (q *MPSC[T]) PopBatch(out []T) int { return q.r.PopBatch(out) }

// Wait blocks until the ring holds a value or done is closed, and reports
// whether a value is there. Consumer only.
func (q *MPSC[T]) Wait(done <-chan struct{}) bool { return q.r.wait(done) }

// Len returns the number of values pushed but not yet popped (a snapshot).
func (q *MPSC[T]) Len() int { return q.r.length() }

// Cap returns the number of values the ring holds.
func (q *MPSC[T]) Cap() int { return int(q.r.size) }

// Overflows returns how many pushes the ring refused because it was full.
func (q *MPSC[T]) Overflows() uint64 { return q.r.overflows.Load() }
