package ring

import (
	"math/bits"
	"sync/atomic"
)

// cacheLine is the padding unit that keeps the producer's and the consumer's
// words on lines of their own.
const cacheLine = 64

// MaxCapacity is the largest number of entries a ring holds: indices are
// free-running uint32 counters, so a capacity must stay below 2^31 for
// prod-cons to be unambiguous.
const MaxCapacity = 1 << 30

// roundCapacity returns the power of two a ring asked to hold n entries gets:
// at least 1, at most MaxCapacity.
func roundCapacity(n int) uint32 {
	switch {
	case n <= 1:
		return 1
	case n >= MaxCapacity:
		return MaxCapacity
	}
	return 1 << bits.Len32(uint32(n-1))
}

// core is the index state every ring shares. Indices count entries ever
// pushed (prod) and popped (cons); an entry's slot is index & mask.
type core struct {
	// Producer's cache line.

	// prod is the published producer index: entries below it are readable
	// by the consumer. Only the producer writes it (atomic store on commit);
	// the consumer loads it when its cached copy shows the ring empty.
	prod atomic.Uint32
	// head is the producer's private next index; head-prod entries are
	// written but not yet committed (staged by Put). Producer only.
	head uint32
	// cachedCons is the producer's view of cons, refreshed only when the
	// ring looks full. Producer only.
	cachedCons uint32
	_          [cacheLine - 12]byte

	// Consumer's cache line.

	// cons is the published consumer index: slots below it may be
	// overwritten by the producer. Only the consumer writes it (atomic
	// store on release); the producer loads it when the ring looks full.
	cons atomic.Uint32
	// tail is the consumer's private next index (cons plus entries taken
	// but not yet released). Consumer only.
	tail uint32
	// cachedProd is the consumer's view of prod, refreshed only when the
	// ring looks empty. Consumer only.
	cachedProd uint32
	// sleeping is set by the consumer before it blocks in Wait and cleared
	// when it wakes; producers load it on commit.
	sleeping atomic.Bool
	_        [cacheLine - 13]byte

	// Read-only after construction.
	size, mask uint32
	// ready carries wake-ups from a committing producer to a consumer
	// blocked in Wait; capacity 1, sends never block.
	ready chan struct{}

	// overflows counts pushes refused because the ring was full. Only the
	// producer (or the producers, under their mutex) adds to it, with an
	// atomic add on the refusal path only; anyone reads it.
	overflows atomic.Uint64
}

func (c *core) init(capacity int) {
	c.size = roundCapacity(capacity)
	c.mask = c.size - 1
	c.ready = make(chan struct{}, 1)
}

// reserve returns the index of the next free slot, refreshing the cached
// consumer index only when the ring looks full. It counts a refusal.
// Producer only.
func (c *core) reserve() (uint32, bool) {
	if c.head-c.cachedCons == c.size {
		c.cachedCons = c.cons.Load()
		if c.head-c.cachedCons == c.size {
			c.overflows.Add(1)
			return 0, false
		}
	}
	return c.head, true
}

// commit publishes every staged entry and wakes a sleeping consumer.
// Producer only.
func (c *core) commit() {
	if c.head == c.prod.Load() {
		return
	}
	c.prod.Store(c.head)
	if c.sleeping.Load() {
		select {
		case c.ready <- struct{}{}:
		default:
		}
	}
}

// avail returns how many entries the consumer may take, refreshing the cached
// producer index only when the cached view shows none. Consumer only.
func (c *core) avail() uint32 {
	if c.cachedProd == c.tail {
		c.cachedProd = c.prod.Load()
	}
	return c.cachedProd - c.tail
}

// release hands n taken entries' slots back to the producer. Consumer only.
func (c *core) release(n uint32) {
	c.tail += n
	c.cons.Store(c.tail)
}

// wait blocks until the ring holds an entry or done is closed, and reports
// whether it holds one. Consumer only.
func (c *core) wait(done <-chan struct{}) bool {
	for {
		if c.avail() > 0 {
			return true
		}
		c.sleeping.Store(true)
		// Re-check after announcing: a producer that committed before it
		// could see the flag is seen here.
		c.cachedProd = c.prod.Load()
		if c.cachedProd != c.tail {
			c.sleeping.Store(false)
			return true
		}
		select {
		case <-c.ready:
			c.sleeping.Store(false)
		case <-done:
			c.sleeping.Store(false)
			return c.avail() > 0
		}
	}
}

// length returns the number of committed entries not yet released, from any
// goroutine. cons is loaded first: prod only grows, so a later load of it is
// never below the cons read; a release and push between the two loads can
// make the difference exceed the capacity, hence the clamp.
func (c *core) length() int {
	cons := c.cons.Load()
	n := c.prod.Load() - cons
	return int(min(n, c.size))
}
