//go:build linux

package xsk

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// HugePages says which pages Open may back the UMEM with.
//
// Every received frame's descriptor, header bytes and the frame the worker
// writes back are in the UMEM: at 4 KiB pages a 32 MiB UMEM spans 8192 pages,
// more than the data TLB holds, so under load a good part of the frame
// accesses also miss the TLB. 2 MiB pages cover it with 16 entries.
type HugePages int

const (
	// HugeAuto tries hugetlb pages (MAP_HUGETLB, from the pool reserved
	// with vm.nr_hugepages), then transparent huge pages (madvise
	// MADV_HUGEPAGE), then normal pages. UMEMInfo says which it got, and
	// why not better.
	HugeAuto HugePages = iota
	// HugeOn requires hugetlb pages: Open fails if the pool cannot supply
	// the UMEM.
	HugeOn
	// HugeOff maps normal pages and asks for nothing else (the system's
	// THP setting "always" may still give huge pages).
	HugeOff
)

// String returns the policy's configuration name.
func (h HugePages) String() string {
	switch h {
	case HugeAuto:
		return "auto"
	case HugeOn:
		return "on"
	case HugeOff:
		return "off"
	}
	return fmt.Sprintf("HugePages(%d)", int(h))
}

// PageKind is what backs a UMEM.
type PageKind int

const (
	// PagesNormal: base pages (4 KiB on x86-64).
	PagesNormal PageKind = iota
	// PagesTHP: transparent huge pages, requested with madvise and given
	// by the kernel for at least part of the UMEM (UMEMInfo.HugeBytes).
	PagesTHP
	// PagesHugeTLB: pages of the hugetlb pool (MAP_HUGETLB), all huge.
	PagesHugeTLB
)

// String names the kind as the start-up report does.
func (k PageKind) String() string {
	switch k {
	case PagesNormal:
		return "normal pages"
	case PagesTHP:
		return "transparent huge pages"
	case PagesHugeTLB:
		return "hugetlb pages"
	}
	return fmt.Sprintf("PageKind(%d)", int(k))
}

// UMEMInfo describes the memory of a socket's UMEM.
type UMEMInfo struct {
	Kind PageKind
	// Bytes is the UMEM's size (NumFrames * FrameSize); HugeBytes how much
	// of it is on huge pages: all of it with hugetlb pages, what
	// /proc/self/smaps reports (AnonHugePages) otherwise.
	Bytes, HugeBytes int
	// PageSize is the huge page size tried (Hugepagesize in /proc/meminfo).
	PageSize int
	// Fallback says why a better kind was not used: nil if the UMEM got
	// the first kind its policy allows.
	Fallback error
}

// String is the one-line report of the UMEM for a start-up log.
func (u UMEMInfo) String() string {
	s := fmt.Sprintf("%s, %d KiB", u.Kind, u.Bytes>>10)
	if u.Kind != PagesHugeTLB {
		s += fmt.Sprintf(", %d KiB of it on huge pages", u.HugeBytes>>10)
	}
	if u.Fallback != nil {
		s += fmt.Sprintf(" (%v)", u.Fallback)
	}
	return s
}

// mapping is an anonymous mapping Open made for a UMEM, for Close to unmap.
type mapping struct {
	addr   unsafe.Pointer
	length uintptr
}

func (m *mapping) unmap() error {
	if m.addr == nil {
		return nil
	}
	err := unix.MunmapPtr(m.addr, m.length)
	*m = mapping{}
	return err
}

// mmapFunc is unix.MmapPtr; tests replace it to make a kind fail.
var mmapFunc = unix.MmapPtr

// allocUMEM maps size bytes for a UMEM following policy and says what it got.
// The memory is faulted in (written once), so the first packets do not pay
// for page faults.
func allocUMEM(size int, policy HugePages) ([]byte, mapping, UMEMInfo, error) {
	hp := hugePageSize()
	info := UMEMInfo{Bytes: size, PageSize: hp}
	rounded := uintptr(roundUp(size, hp))
	var fallback []error
	if policy != HugeOff {
		p, err := mmapFunc(-1, 0, nil, rounded, unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_HUGETLB|unix.MAP_POPULATE)
		if err == nil {
			info.Kind, info.HugeBytes = PagesHugeTLB, size
			return unsafe.Slice((*byte)(p), size), mapping{p, rounded}, info, nil
		}
		hugeErr := fmt.Errorf("MAP_HUGETLB of %d KiB: %w; reserve %d pages of %d KiB with sysctl vm.nr_hugepages",
			rounded>>10, err, rounded/uintptr(hp), hp>>10)
		if policy == HugeOn {
			return nil, mapping{}, info, fmt.Errorf("xsk: UMEM on hugetlb pages: %w", hugeErr)
		}
		fallback = append(fallback, hugeErr)

		// THP: a mapping aligned to the huge page size, so every 2 MiB of
		// it can be one huge page; over-allocate and trim both ends.
		p, err = mmapFunc(-1, 0, nil, rounded+uintptr(hp), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			return nil, mapping{}, info, fmt.Errorf("xsk: mmap UMEM: %w", err)
		}
		m := trimAligned(p, rounded+uintptr(hp), rounded, uintptr(hp))
		mem := unsafe.Slice((*byte)(m.addr), size)
		if err := unix.Madvise(unsafe.Slice((*byte)(m.addr), rounded), unix.MADV_HUGEPAGE); err != nil {
			fallback = append(fallback, fmt.Errorf("madvise MADV_HUGEPAGE: %w", err))
		}
		touch(mem)
		info.HugeBytes = min(anonHugeBytes(uintptr(m.addr)), size)
		if info.HugeBytes > 0 {
			info.Kind = PagesTHP
		} else if len(fallback) == 1 {
			fallback = append(fallback, errors.New("no transparent huge page given (see /sys/kernel/mm/transparent_hugepage/enabled)"))
		}
		info.Fallback = errors.Join(fallback...)
		return mem, m, info, nil
	}
	p, err := mmapFunc(-1, 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return nil, mapping{}, info, fmt.Errorf("xsk: mmap UMEM: %w", err)
	}
	mem := unsafe.Slice((*byte)(p), size)
	info.HugeBytes = min(anonHugeBytes(uintptr(p)), size)
	if info.HugeBytes > 0 {
		info.Kind = PagesTHP // THP "always"
	}
	return mem, mapping{p, uintptr(size)}, info, nil
}

// trimAligned unmaps the parts of the mapping [p, p+total) before the first
// align boundary and after want bytes from it, and returns what is left.
func trimAligned(p unsafe.Pointer, total, want, align uintptr) mapping {
	start := (uintptr(p) + align - 1) &^ (align - 1)
	if head := start - uintptr(p); head > 0 {
		_ = unix.MunmapPtr(p, head)
	}
	if tail := uintptr(p) + total - (start + want); tail > 0 {
		_ = unix.MunmapPtr(unsafe.Add(p, start-uintptr(p)+want), tail)
	}
	return mapping{unsafe.Add(p, start-uintptr(p)), want}
}

// touch writes one byte per base page so the kernel faults the memory in
// now, as huge pages where it can.
func touch(mem []byte) {
	page := os.Getpagesize()
	for i := 0; i < len(mem); i += page {
		mem[i] = 0
	}
}

func roundUp(n, to int) int { return (n + to - 1) / to * to }

// hugePageSize returns the default huge page size (Hugepagesize in
// /proc/meminfo), 2 MiB if it cannot tell.
func hugePageSize() int {
	const def = 2 << 20
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return def
	}
	return parseHugePageSize(b, def)
}

func parseHugePageSize(meminfo []byte, def int) int {
	for _, line := range bytes.Split(meminfo, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("Hugepagesize:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 2 && string(f[1]) == "kB" {
			if kb, err := strconv.Atoi(string(f[0])); err == nil && kb > 0 {
				return kb << 10
			}
		}
	}
	return def
}

// anonHugeBytes returns AnonHugePages of the mapping of this process that
// contains addr, from /proc/self/smaps; 0 if it cannot tell.
func anonHugeBytes(addr uintptr) int {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0
	}
	defer f.Close()
	return parseAnonHuge(bufio.NewScanner(f), addr)
}

func parseAnonHuge(sc *bufio.Scanner, addr uintptr) int {
	in := false
	for sc.Scan() {
		line := sc.Text()
		if lo, hi, ok := smapsRange(line); ok {
			in = lo <= addr && addr < hi
			continue
		}
		if !in {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "AnonHugePages:"); ok {
			f := bytes.Fields([]byte(rest))
			if len(f) == 2 {
				kb, _ := strconv.Atoi(string(f[0]))
				return kb << 10
			}
			return 0
		}
	}
	return 0
}

// smapsRange parses the "lo-hi perms ..." header line of a smaps entry.
func smapsRange(line string) (lo, hi uintptr, ok bool) {
	dash, sp := -1, -1
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '-' && dash < 0 {
			dash = i
			continue
		}
		if c == ' ' {
			sp = i
			break
		}
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return 0, 0, false
		}
	}
	if dash <= 0 || sp <= dash+1 {
		return 0, 0, false
	}
	l, err1 := strconv.ParseUint(line[:dash], 16, 64)
	h, err2 := strconv.ParseUint(line[dash+1:sp], 16, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uintptr(l), uintptr(h), true
}
