//go:build linux

package xsk

import (
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ringHeader is the part every AF_XDP ring shares: the two indices that live
// in memory mapped from the kernel, the flags word, and our cached views.
//
// Indices are free-running uint32 counters; a slot is index&mask. The shared
// words are only accessed with sync/atomic (an atomic load has acquire
// semantics, an atomic store release semantics; Go's are sequentially
// consistent, which is stronger).
type ringHeader struct {
	// mem is the mapping shared with the kernel; producer, consumer, flags
	// and the slots all point into it.
	mem []byte

	// producer is the shared producer index. For the fill and TX rings only
	// we write it; for the RX and completion rings only the kernel does.
	producer *uint32

	// consumer is the shared consumer index. For the fill and TX rings only
	// the kernel writes it; for the RX and completion rings only we do.
	consumer *uint32

	// flags is the shared flags word (XDP_RING_NEED_WAKEUP). Only the
	// kernel writes it.
	flags *uint32

	// mask is size-1; size is a power of two.
	mask uint32
	size uint32

	// cachedProd and cachedCons are our views of the indices, private to
	// the owning goroutine. The one for the index we own is the truth and
	// is published with an atomic store; the one for the kernel's index is
	// refreshed with an atomic load only when the cached view does not
	// suffice.
	cachedProd uint32
	cachedCons uint32
}

func (r *ringHeader) init(mem []byte, off unix.XDPRingOffset, size uint32) {
	r.mem = mem
	r.producer = (*uint32)(unsafe.Pointer(&mem[off.Producer]))
	r.consumer = (*uint32)(unsafe.Pointer(&mem[off.Consumer]))
	r.flags = (*uint32)(unsafe.Pointer(&mem[off.Flags]))
	r.size = size
	r.mask = size - 1
	r.cachedProd = atomic.LoadUint32(r.producer)
	r.cachedCons = atomic.LoadUint32(r.consumer)
}

// needWakeup reports whether the kernel set XDP_RING_NEED_WAKEUP.
func (r *ringHeader) needWakeup() bool {
	return atomic.LoadUint32(r.flags)&unix.XDP_RING_NEED_WAKEUP != 0
}

// prodFree returns how many slots a producer ring (fill, TX) has free, at
// least want if that many are free. The kernel's consumer index is loaded
// only when the cached view shows fewer than want.
func (r *ringHeader) prodFree(want uint32) uint32 {
	free := r.size - (r.cachedProd - r.cachedCons)
	if free >= want {
		return free
	}
	r.cachedCons = atomic.LoadUint32(r.consumer)
	return r.size - (r.cachedProd - r.cachedCons)
}

// prodSubmit publishes everything written up to cachedProd (release).
func (r *ringHeader) prodSubmit() {
	atomic.StoreUint32(r.producer, r.cachedProd)
}

// prodPending returns how many submitted entries the kernel has not consumed
// yet (one atomic load).
func (r *ringHeader) prodPending() uint32 {
	r.cachedCons = atomic.LoadUint32(r.consumer)
	return r.cachedProd - r.cachedCons
}

// consAvail returns how many entries a consumer ring (RX, completion) holds
// for us, at least want if that many are there. The kernel's producer index
// is loaded (acquire) only when the cached view shows fewer than want.
func (r *ringHeader) consAvail(want uint32) uint32 {
	avail := r.cachedProd - r.cachedCons
	if avail >= want {
		return avail
	}
	r.cachedProd = atomic.LoadUint32(r.producer)
	return r.cachedProd - r.cachedCons
}

// consRelease hands n consumed entries back to the kernel (release): after
// it the kernel may overwrite their slots.
func (r *ringHeader) consRelease(n uint32) {
	r.cachedCons += n
	atomic.StoreUint32(r.consumer, r.cachedCons)
}

// addrRing is the fill or completion ring: slots are UMEM addresses.
type addrRing struct {
	ringHeader
	// slots are written by the producer side only (fill: us, completion:
	// the kernel) between the consumer and producer indices' view.
	slots []uint64
}

func (r *addrRing) init(mem []byte, off unix.XDPRingOffset, size uint32) {
	r.ringHeader.init(mem, off, size)
	r.slots = unsafe.Slice((*uint64)(unsafe.Pointer(&mem[off.Desc])), size)
}

// descRing is the RX or TX ring: slots are descriptors.
type descRing struct {
	ringHeader
	// slots are written by the producer side only (RX: the kernel, TX: us).
	slots []unix.XDPDesc
}

func (r *descRing) init(mem []byte, off unix.XDPRingOffset, size uint32) {
	r.ringHeader.init(mem, off, size)
	r.slots = unsafe.Slice((*unix.XDPDesc)(unsafe.Pointer(&mem[off.Desc])), size)
}

// ringBytes is the length to map for a ring of n slots of slotSize bytes.
func ringBytes(off unix.XDPRingOffset, n uint32, slotSize uintptr) int {
	return int(off.Desc + uint64(n)*uint64(slotSize))
}
