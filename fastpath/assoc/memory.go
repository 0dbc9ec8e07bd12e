package assoc

import (
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// hugeThreshold is the table size from which slots are mapped outside the Go
// heap with transparent huge pages requested. A 1M-association shard is 64
// MiB: with 4 KiB pages nearly every lookup also misses the TLB and waits for
// a page walk, which costs as much as the cache miss itself.
const hugeThreshold = 4 << 20

// lineBytes is the cache-line size slots are aligned to.
const lineBytes = 64

// allocSlots returns n zeroed slots starting on a cache line, so that a
// line-aligned home slot and its neighbour share one line. Large tables are
// mmapped (page aligned) and advised MADV_HUGEPAGE (best effort: the kernel
// may decline); the mapping is released when the shard becomes unreachable.
// Small ones come from the heap, over-allocated by one line to align them.
func allocSlots(s *Shard, n int) []slot {
	size := n * SlotBytes
	if size >= hugeThreshold {
		mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err == nil {
			_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
			runtime.AddCleanup(s, func(m []byte) { _ = unix.Munmap(m) }, mem)
			return unsafe.Slice((*slot)(unsafe.Pointer(&mem[0])), n)
		}
	}
	extra := lineBytes / SlotBytes
	buf := make([]slot, n+extra)
	off := 0
	for uintptr(unsafe.Pointer(&buf[off]))%lineBytes != 0 {
		off++
	}
	return buf[off : off+n : off+n]
}
