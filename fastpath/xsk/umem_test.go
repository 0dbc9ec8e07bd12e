//go:build linux

package xsk

import (
	"bufio"
	"errors"
	"os"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// withMmap replaces mmapFunc for the test: calls with MAP_HUGETLB get
// hugeErr, or, if hugeErr is nil, a normal mapping (so the code path that
// takes hugetlb pages runs without a reserved pool).
func withMmap(t *testing.T, hugeErr error) {
	t.Helper()
	real := mmapFunc
	t.Cleanup(func() { mmapFunc = real })
	mmapFunc = func(fd int, off int64, addr unsafe.Pointer, length uintptr, prot, flags int) (unsafe.Pointer, error) {
		if flags&unix.MAP_HUGETLB != 0 {
			if hugeErr != nil {
				return nil, hugeErr
			}
			flags &^= unix.MAP_HUGETLB
		}
		return real(fd, off, addr, length, prot, flags)
	}
}

// thpEnabled reports whether the kernel may give transparent huge pages to a
// mapping advised MADV_HUGEPAGE.
func thpEnabled() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err == nil && !strings.Contains(string(b), "[never]")
}

// freeHugePages returns HugePages_Free from /proc/meminfo.
func freeHugePages() int {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "HugePages_Free:"); ok {
			var n int
			for _, c := range strings.TrimSpace(rest) {
				n = n*10 + int(c-'0')
			}
			return n
		}
	}
	return 0
}

func TestAllocUMEM(t *testing.T) {
	const size = 8 << 20
	enomem := unix.ENOMEM
	cases := []struct {
		name     string
		policy   HugePages
		hugeErr  error // nil: MAP_HUGETLB "succeeds" (faked with normal pages)
		want     PageKind
		fallback string // in Fallback's text; "" means Fallback is nil
	}{
		{"auto with a hugetlb pool", HugeAuto, nil, PagesHugeTLB, ""},
		{"auto without", HugeAuto, enomem, PagesTHP, "MAP_HUGETLB"},
		{"off", HugeOff, nil, PagesNormal, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want == PagesTHP && !thpEnabled() {
				t.Skip("transparent huge pages are disabled on this machine")
			}
			withMmap(t, c.hugeErr)
			mem, m, info, err := allocUMEM(size, c.policy)
			if err != nil {
				t.Fatalf("allocUMEM(%d, %v) = %v", size, c.policy, err)
			}
			defer m.unmap()
			if len(mem) != size || info.Bytes != size {
				t.Errorf("len(mem), Bytes = %d, %d, want %d", len(mem), info.Bytes, size)
			}
			if info.Kind != c.want {
				t.Errorf("Kind = %v, want %v (info %v)", info.Kind, c.want, info)
			}
			switch {
			case c.fallback == "" && info.Fallback != nil:
				t.Errorf("Fallback = %v, want nil", info.Fallback)
			case c.fallback != "" && (info.Fallback == nil || !strings.Contains(info.Fallback.Error(), c.fallback)):
				t.Errorf("Fallback = %v, want it to mention %q", info.Fallback, c.fallback)
			}
			if uintptr(unsafe.Pointer(&mem[0]))%uintptr(info.PageSize) != 0 && c.policy != HugeOff {
				t.Errorf("UMEM at %p is not aligned to the huge page size %d", &mem[0], info.PageSize)
			}
			if c.want == PagesTHP {
				// What the report says is what the kernel reports.
				if got := min(anonHugeBytes(uintptr(unsafe.Pointer(&mem[0]))), size); got != info.HugeBytes || got == 0 {
					t.Errorf("HugeBytes = %d, smaps AnonHugePages = %d, want them equal and > 0", info.HugeBytes, got)
				}
			}
			mem[0], mem[size-1] = 1, 2 // the whole UMEM is usable
		})
	}

	t.Run("on without a pool", func(t *testing.T) {
		withMmap(t, enomem)
		_, _, _, err := allocUMEM(size, HugeOn)
		if err == nil || !errors.Is(err, unix.ENOMEM) || !strings.Contains(err.Error(), "vm.nr_hugepages") {
			t.Errorf("allocUMEM(HugeOn) without huge pages = %v, want ENOMEM with the vm.nr_hugepages hint", err)
		}
	})

	t.Run("real hugetlb pool", func(t *testing.T) {
		if freeHugePages()*hugePageSize() < size {
			t.Skipf("needs %d MiB of free hugetlb pages (sysctl vm.nr_hugepages); have %d pages", size>>20, freeHugePages())
		}
		mem, m, info, err := allocUMEM(size, HugeOn)
		if err != nil {
			t.Fatalf("allocUMEM(HugeOn) = %v", err)
		}
		defer m.unmap()
		if info.Kind != PagesHugeTLB || len(mem) != size {
			t.Errorf("got %v, %d bytes; want hugetlb pages, %d bytes", info, len(mem), size)
		}
	})
}

// TestUnmapTrimmedUMEM: the THP path maps more than it keeps (to align) and
// Close unmaps what it kept: no part of either stays mapped.
func TestUnmapTrimmedUMEM(t *testing.T) {
	withMmap(t, unix.ENOMEM)
	mem, m, _, err := allocUMEM(4<<20, HugeAuto)
	if err != nil {
		t.Fatal(err)
	}
	lo := uintptr(unsafe.Pointer(&mem[0]))
	if err := m.unmap(); err != nil {
		t.Fatalf("unmap: %v", err)
	}
	if m.addr != nil {
		t.Errorf("mapping not cleared after unmap")
	}
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if a, b, ok := smapsRange(sc.Text()); ok && a < lo+4<<20 && lo < b {
			t.Errorf("after unmap, %s still overlaps the UMEM at %#x", sc.Text(), lo)
		}
	}
}

func TestParseHugePageSize(t *testing.T) {
	meminfo := "MemTotal:       24522820 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\nHugetlb:               0 kB\n"
	if got := parseHugePageSize([]byte(meminfo), 1); got != 2<<20 {
		t.Errorf("parseHugePageSize(2048 kB) = %d, want %d", got, 2<<20)
	}
	if got := parseHugePageSize([]byte("Hugepagesize:    1048576 kB\n"), 1); got != 1<<30 {
		t.Errorf("parseHugePageSize(1 GiB) = %d, want %d", got, 1<<30)
	}
	if got := parseHugePageSize([]byte("MemTotal: 1 kB\n"), 77); got != 77 {
		t.Errorf("parseHugePageSize(no line) = %d, want the default 77", got)
	}
}

func TestParseAnonHuge(t *testing.T) {
	// Captured from /proc/self/smaps on the lab VM (6.18), shortened.
	const smaps = `7f3a40000000-7f3a40800000 rw-p 00000000 00:00 0 
Size:               8192 kB
KernelPageSize:        4 kB
Rss:                8192 kB
AnonHugePages:      6144 kB
THPeligible:    1
VmFlags: rd wr mr mw me ac hg 
7f3a40800000-7f3a40a00000 rw-p 00000000 00:00 0 
Size:               2048 kB
AnonHugePages:         0 kB
VmFlags: rd wr mr mw me ac 
`
	for _, c := range []struct {
		addr uintptr
		want int
	}{
		{0x7f3a40000000, 6144 << 10},
		{0x7f3a40400000, 6144 << 10}, // inside the first mapping
		{0x7f3a40800000, 0},
		{0x7f3a40a00000, 0}, // in neither
	} {
		if got := parseAnonHuge(bufio.NewScanner(strings.NewReader(smaps)), c.addr); got != c.want {
			t.Errorf("parseAnonHuge(%#x) = %d, want %d", c.addr, got, c.want)
		}
	}
	for _, bad := range []string{"Size: 1 kB", "VmFlags: rd wr", "zz-10 rw-p", "10- rw-p", ""} {
		if _, _, ok := smapsRange(bad); ok {
			t.Errorf("smapsRange(%q) ok, want not a header line", bad)
		}
	}
}
