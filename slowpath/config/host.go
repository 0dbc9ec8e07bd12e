package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Checks of a Spec against the machine it is to run on. Parse cannot make
// them (a Spec is the same wherever it is read); ipfront check and ipfront
// run make them after Load, before anything is mapped or attached, and
// report with the same file:line:column.

// Host is what CheckHost knows of the machine.
type Host struct {
	// RXQueues returns the number of RX queues of an interface, and false
	// when the interface does not exist here (ipfront check on another
	// machine than the one the file is for: its queues are not checked).
	RXQueues func(iface string) (int, bool)
	// MemAvailable is the memory, in bytes, that can be allocated without
	// swapping (/proc/meminfo MemAvailable); 0: unknown, not checked.
	MemAvailable uint64
	// HugeFree is the memory of free hugetlb pages, in bytes, which holds
	// the UMEMs unless huge_pages = "off" and is not in MemAvailable.
	HugeFree uint64
}

// ThisHost describes the machine (the network namespace) ipfront runs in:
// RX queues as the data plane counts them (the rx-N directories under
// /sys/class/net/IFACE/queues) and memory from /proc/meminfo.
func ThisHost() Host {
	h := Host{RXQueues: sysfsRXQueues}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		h.MemAvailable, h.HugeFree = parseMeminfo(data)
	}
	return h
}

// sysfsRXQueues counts an interface's RX queues the way fastpath.Start does
// (an interface without queue directories has one).
func sysfsRXQueues(iface string) (int, bool) {
	if _, err := os.Stat(filepath.Join("/sys/class/net", iface)); err != nil {
		return 0, false
	}
	rx, _ := filepath.Glob(filepath.Join("/sys/class/net", iface, "queues", "rx-*"))
	return max(len(rx), 1), true
}

// parseMeminfo returns MemAvailable and the free hugetlb memory in bytes.
func parseMeminfo(data []byte) (avail, hugeFree uint64) {
	kv := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err == nil {
			kv[k] = n
		}
	}
	return kv["MemAvailable"] << 10, kv["HugePages_Free"] * (kv["Hugepagesize"] << 10)
}

// CheckHost checks s against the machine h describes, as LoadOn does, but
// without positions: for a Spec built in code.
func (s *Spec) CheckHost(h Host) error {
	r := newReporter(s.Path, nil)
	s.checkHost(r, h)
	return r.result()
}

// checkHost checks s against the machine h describes: every listed queue
// exists, a list of queues covers every RX queue of its interface (unless
// partial_queues), each worker's table fits, and the association tables and
// UMEMs fit the available memory. The memory is allocated when the data
// plane starts but touched only as it fills, so a table too large for the
// machine would start and then, under a flood, bring in the OOM killer.
func (s *Spec) checkHost(r *reporter, h Host) {
	d := &s.Dataplane
	workers, known := 0, true
	for _, name := range d.Interfaces {
		n, ok := 0, false
		if h.RXQueues != nil {
			n, ok = h.RXQueues(name)
		}
		if !ok {
			known = false
			continue
		}
		if d.Queues == nil {
			workers += n
			continue
		}
		workers += len(d.Queues)
		d.checkQueues(r, name, n)
	}
	if known && workers > 0 {
		d.checkMemory(r, workers, h)
	}
}

// checkQueues checks the listed queues against an interface's n RX queues.
func (d *Dataplane) checkQueues(r *reporter, iface string, n int) {
	var missing []string
	served := make(map[int]bool)
	for _, q := range d.Queues {
		if q >= n {
			missing = append(missing, strconv.Itoa(q))
		}
		served[q] = true
	}
	if len(missing) > 0 {
		r.errorf("dataplane.queues", fmt.Sprintf("list queues 0..%d, or grow the NIC's queues (ethtool -L %s combined N)", n-1, iface),
			"%s has %d RX queues: queues %s do not exist", iface, n, strings.Join(missing, ", "))
		return
	}
	if d.PartialQueues {
		return
	}
	var unserved []string
	for q := range n {
		if !served[q] {
			unserved = append(unserved, strconv.Itoa(q))
		}
	}
	if len(unserved) > 0 {
		r.errorf("dataplane.queues",
			fmt.Sprintf(`write queues = "all"; or shrink the NIC to the served queues (ethtool -L %s combined %d); or, if its RSS table and flow rules send VIP traffic to the listed queues only (ipfront check --host shows the RSS table), set partial_queues = true`, iface, len(d.Queues)),
			"%s has %d RX queues and queues leaves out %s: VIP traffic the NIC delivers there would bypass ipfront and reach the kernel",
			iface, n, strings.Join(unserved, ", "))
	}
}

// checkMemory checks what the data plane allocates for workers workers.
func (d *Dataplane) checkMemory(r *reporter, workers int, h Host) {
	const path = "dataplane.max_associations"
	if r.muted(path) {
		return
	}
	per := d.WorkerRecords(workers)
	if per > MaxWorkerRecords {
		r.errorf(path, "lower max_associations / max_persistence_records, or serve more queues",
			"%d records per worker (%d workers) is more than one worker's table holds (%d)", per, workers, MaxWorkerRecords)
		return
	}
	if h.MemAvailable == 0 {
		return
	}
	tables := uint64(workers) * uint64(per) * RecordBytes
	umem := uint64(workers) * uint64(d.Frames) * uint64(d.FrameSize)
	need, avail := tables+umem, h.MemAvailable
	if d.HugePages != HugePagesOff && h.HugeFree >= umem {
		need = tables // the UMEMs go to reserved hugetlb pages
	}
	if need > avail {
		r.errorf(path, "lower max_associations or max_persistence_records (64 bytes a record), or frames; or free memory",
			"the association tables (%d MiB for %d workers) and UMEMs (%d MiB) need %d MiB, more than the %d MiB available (MemAvailable)",
			tables>>20, workers, umem>>20, need>>20, avail>>20)
	}
}
