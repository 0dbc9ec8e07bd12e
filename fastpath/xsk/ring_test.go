//go:build linux

package xsk

import (
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel lays a ring out as producer, consumer and flags words, each on
// its own cache line, then the slots. These tests build the same layout in
// ordinary memory and play the kernel's side by writing the shared words
// directly, so the ring arithmetic runs without a socket or root.
var testRingOff = unix.XDPRingOffset{Producer: 0, Consumer: 64, Flags: 128, Desc: 192}

// testRingMem returns zeroed memory for a ring of n 8-byte slots, 8-byte
// aligned like the kernel's mapping (the slots are uint64).
func testRingMem(n uint32) []byte {
	words := make([]uint64, ringBytes(testRingOff, n, 8)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
}

// newTestRing returns an address ring of size slots whose shared producer
// and consumer indices both start at start, as if that many entries had
// already passed through it.
func newTestRing(t *testing.T, size, start uint32) *addrRing {
	t.Helper()
	mem := testRingMem(size)
	r := &addrRing{}
	// The kernel's words hold start before we map the ring: init must
	// pick them up rather than assume 0.
	*(*uint32)(unsafe.Pointer(&mem[testRingOff.Producer])) = start
	*(*uint32)(unsafe.Pointer(&mem[testRingOff.Consumer])) = start
	r.init(mem, testRingOff, size)
	if r.cachedProd != start || r.cachedCons != start {
		t.Fatalf("after init cachedProd, cachedCons = %#x, %#x, want %#x, %#x", r.cachedProd, r.cachedCons, start, start)
	}
	if r.size != size || r.mask != size-1 || len(r.slots) != int(size) {
		t.Fatalf("after init size, mask, len(slots) = %d, %#x, %d, want %d, %#x, %d", r.size, r.mask, len(r.slots), size, size-1, size)
	}
	return r
}

// TestRingProducerWrapAndCache plays a fill (or TX) ring: we produce, the
// kernel consumes. The indices start 3 below 2^32 so they wrap while the
// ring holds entries.
func TestRingProducerWrapAndCache(t *testing.T) {
	const size = 8
	start := ^uint32(0) - 2
	r := newTestRing(t, size, start)

	if got := r.prodFree(1); got != size {
		t.Fatalf("prodFree(1) on an empty ring = %d, want %d", got, size)
	}
	// Produce 6 entries: slots start&7 .. (start+5)&7, across the wrap.
	for i := range uint32(6) {
		r.slots[(r.cachedProd+i)&r.mask] = uint64(100 + i)
	}
	r.cachedProd += 6
	if got := atomic.LoadUint32(r.producer); got != start {
		t.Fatalf("shared producer before prodSubmit = %#x, want %#x (entries are not visible until submitted)", got, start)
	}
	r.prodSubmit()
	if got, want := atomic.LoadUint32(r.producer), start+6; got != want || want != 3 {
		t.Fatalf("shared producer after prodSubmit = %#x, want %#x (wrapped to 3)", got, want)
	}
	// The kernel reads the entries from the slots the producer index names.
	for i := range uint32(6) {
		if got := r.slots[(start+i)&r.mask]; got != uint64(100+i) {
			t.Errorf("slot of entry %d = %d, want %d", i, got, 100+i)
		}
	}
	if got := r.prodPending(); got != 6 {
		t.Errorf("prodPending() = %d, want 6", got)
	}

	// The kernel consumes 4. Our cached consumer still says 2 free, which
	// is enough for a request of 2: the shared word is not read.
	atomic.StoreUint32(r.consumer, start+4)
	if got := r.prodFree(2); got != 2 {
		t.Errorf("prodFree(2) = %d, want 2 from the cached consumer index", got)
	}
	if r.cachedCons != start {
		t.Errorf("prodFree(2) refreshed cachedCons to %#x; want it left at %#x while the cache suffices", r.cachedCons, start)
	}
	// A request for more than the cache shows refreshes it.
	if got := r.prodFree(3); got != 6 {
		t.Errorf("prodFree(3) = %d, want 6 after reading the kernel's consumer index", got)
	}
	if r.cachedCons != start+4 {
		t.Errorf("cachedCons after prodFree(3) = %#x, want %#x", r.cachedCons, start+4)
	}

	// Fill the ring completely: no free slot, even after a refresh.
	r.cachedProd += 6
	r.prodSubmit()
	if got := r.prodFree(1); got != 0 {
		t.Errorf("prodFree(1) on a full ring = %d, want 0", got)
	}
	if got := r.prodPending(); got != size {
		t.Errorf("prodPending() on a full ring = %d, want %d", got, size)
	}
}

// TestRingConsumerWrapAndCache plays an RX (or completion) ring: the kernel
// produces, we consume, across the wrap of the indices.
func TestRingConsumerWrapAndCache(t *testing.T) {
	const size = 4
	start := ^uint32(0) - 1
	r := newTestRing(t, size, start)

	if got := r.consAvail(1); got != 0 {
		t.Fatalf("consAvail(1) on an empty ring = %d, want 0", got)
	}
	// The kernel writes 3 entries and then publishes its producer index.
	kernelProduce := func(prod uint32, vals ...uint64) uint32 {
		for _, v := range vals {
			r.slots[prod&r.mask] = v
			prod++
		}
		atomic.StoreUint32(r.producer, prod)
		return prod
	}
	prod := kernelProduce(start, 7, 8, 9)

	if got := r.consAvail(2); got != 3 {
		t.Fatalf("consAvail(2) = %d, want 3", got)
	}
	for i, want := range []uint64{7, 8, 9} {
		if got := r.slots[(r.cachedCons+uint32(i))&r.mask]; got != want {
			t.Errorf("entry %d = %d, want %d", i, got, want)
		}
	}
	// Release two: the kernel sees the consumer index move past the wrap.
	r.consRelease(2)
	if got := atomic.LoadUint32(r.consumer); got != start+2 || got != 0 {
		t.Errorf("shared consumer after consRelease(2) = %#x, want 0 (wrapped)", got)
	}

	// The kernel adds two more. One entry is still cached as available, so
	// consAvail(1) answers from the cache and does not see them ...
	prod = kernelProduce(prod, 10, 11)
	if got := r.consAvail(1); got != 1 {
		t.Errorf("consAvail(1) = %d, want 1 from the cached producer index", got)
	}
	if r.cachedProd != start+3 {
		t.Errorf("consAvail(1) refreshed cachedProd to %#x; want it left at %#x while the cache suffices", r.cachedProd, start+3)
	}
	// ... and consAvail(2) reads the kernel's index.
	if got := r.consAvail(2); got != 3 {
		t.Errorf("consAvail(2) = %d, want 3 after reading the kernel's producer index", got)
	}
	if r.cachedProd != prod {
		t.Errorf("cachedProd after consAvail(2) = %#x, want %#x", r.cachedProd, prod)
	}
	for i, want := range []uint64{9, 10, 11} {
		if got := r.slots[(r.cachedCons+uint32(i))&r.mask]; got != want {
			t.Errorf("entry %d after the wrap = %d, want %d", i, got, want)
		}
	}
	r.consRelease(3)
	if got := r.consAvail(1); got != 0 {
		t.Errorf("consAvail(1) after releasing everything = %d, want 0", got)
	}
	if got := atomic.LoadUint32(r.consumer); got != prod {
		t.Errorf("shared consumer = %#x, want %#x", got, prod)
	}
}

// TestRingNeedWakeup: the flag is the kernel's XDP_RING_NEED_WAKEUP bit and
// nothing else in the flags word.
func TestRingNeedWakeup(t *testing.T) {
	r := newTestRing(t, 8, 0)
	for _, tt := range []struct {
		flags uint32
		want  bool
	}{
		{0, false},
		{unix.XDP_RING_NEED_WAKEUP, true},
		{^uint32(unix.XDP_RING_NEED_WAKEUP), false},
		{0xffffffff, true},
	} {
		atomic.StoreUint32(r.flags, tt.flags)
		if got := r.needWakeup(); got != tt.want {
			t.Errorf("needWakeup() with flags %#x = %v, want %v", tt.flags, got, tt.want)
		}
	}
}

// TestRingModel runs a producer and a consumer side against each other in
// random steps, from indices just below 2^32, and checks what the rings
// promise: entries come out in the order they went in, the producer never
// has more free slots than the consumer has released (so it never
// overwrites an entry not yet read), and free + pending is always the size.
func TestRingModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 3))
	for _, size := range []uint32{1, 2, 8, 64} {
		start := ^uint32(0) - size*3
		// prod plays our fill ring; cons plays the kernel reading it,
		// sharing the same memory and so the same words.
		prod := newTestRing(t, size, start)
		cons := &addrRing{}
		cons.init(prod.mem, testRingOff, size)

		var next, want uint64 // next value to produce, next to consume
		for step := range 20000 {
			if rng.IntN(2) == 0 {
				ask := uint32(rng.IntN(int(size)) + 1)
				trueFree := size - uint32(next-want)
				free := prod.prodFree(ask)
				switch {
				case free > trueFree:
					t.Fatalf("size %d step %d: prodFree(%d) = %d, but only %d are free", size, step, ask, free, trueFree)
				case free < ask && free != trueFree:
					// Too few in the cache: it must have re-read the
					// consumer index and so see everything released.
					t.Fatalf("size %d step %d: prodFree(%d) = %d after a refresh, want %d", size, step, ask, free, trueFree)
				}
				n := min(free, ask)
				for i := range n {
					prod.slots[(prod.cachedProd+i)&prod.mask] = next
					next++
				}
				prod.cachedProd += n
				prod.prodSubmit()
				if p := prod.prodPending(); p != uint32(next-want) {
					t.Fatalf("size %d step %d: prodPending() = %d, want %d", size, step, p, next-want)
				}
			} else {
				ask := uint32(rng.IntN(int(size)) + 1)
				n := min(cons.consAvail(ask), uint32(rng.IntN(int(size))+1))
				for i := range n {
					if got := cons.slots[(cons.cachedCons+i)&cons.mask]; got != want {
						t.Fatalf("size %d step %d: consumed %d, want %d", size, step, got, want)
					}
					want++
				}
				cons.consRelease(n)
			}
		}
		if want < uint64(size)*4 {
			t.Errorf("size %d: only %d entries passed through the ring; the indices did not wrap", size, want)
		}
	}
}
