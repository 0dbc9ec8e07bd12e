// Package hostcheck checks that a host is set up for the [dataplane] of an
// ipfront configuration, as `ipfront check --host` reports it: for each
// interface, its RX queues against the workers, the RSS indirection table
// and whether the hash is symmetric, the affinity of the queues' interrupts
// against the workers' CPUs, the offloads that get in an AF_XDP socket's
// way and the NAPI settings of the idle mode; for the host, the CPUs, huge
// pages, busy polling support and irqbalance. Every finding that is not ok
// carries the exact ethtool or sysfs command that fixes it.
//
// It only reads (ethtool queries, sysfs, procfs): it changes nothing.
package hostcheck

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/ipfront/ipfront/slowpath/config"
)

// Status grades a finding.
type Status string

// Finding statuses. Only problems fail the check: a problem is a setting
// under which ipfront does not start, loses packets or forwards to the wrong
// place; a warning costs performance or predictability.
const (
	OK      Status = "ok"
	Info    Status = "info"    // worth knowing, nothing to fix
	Warn    Status = "warn"    // works, slower or less predictable than it could be
	Problem Status = "problem" // breaks start-up or forwarding
	Skip    Status = "skip"    // could not be checked (not applicable, or the host would not say)
)

// Finding is the result of one check.
type Finding struct {
	Check   string   `json:"check"`
	Status  Status   `json:"status"`
	Message string   `json:"message"`
	Fix     []string `json:"fix,omitempty"` // commands, in order
}

// Worker is one worker the configuration asks for on an interface.
type Worker struct {
	Queue int `json:"queue"`
	CPU   int `json:"cpu"` // -1: not pinned
}

// Interface is the report of one configured interface.
type Interface struct {
	Name     string    `json:"name"`
	Driver   string    `json:"driver,omitempty"`
	RXQueues int       `json:"rx_queues"`
	Workers  []Worker  `json:"workers"`
	Findings []Finding `json:"findings"`
}

// Report is the whole check.
type Report struct {
	Config     string      `json:"config"`
	Interfaces []Interface `json:"interfaces"`
	Host       []Finding   `json:"host"`
	Problems   int         `json:"problems"`
	Warnings   int         `json:"warnings"`
}

// zeroCopyDrivers have AF_XDP zero-copy support in mainline Linux (6.x).
// Others run AF_XDP in copy mode (zero_copy = "auto" falls back to it).
var zeroCopyDrivers = map[string]bool{
	"i40e": true, "ice": true, "ixgbe": true, "igc": true, "igb": true, "mlx5_core": true,
	"stmmac": true, "gve": true, "virtio_net": true, "idpf": true, "txgbe": true,
}

// Recommended NAPI settings for preferred busy polling: interrupts stay
// masked for two empty NAPI polls and are re-armed by a 200 µs timer,
// longer than a worker's default idle spin.
const (
	napiDeferHardIRQs = 2
	groFlushTimeoutNs = 200000
)

// Check examines the host for spec's [dataplane] and target sets.
func Check(src Source, spec *config.Spec) *Report {
	c := &checker{src: src, spec: spec, dp: &spec.Dataplane, rep: &Report{Config: spec.Path}}
	c.run()
	for _, ifc := range c.rep.Interfaces {
		c.count(ifc.Findings)
	}
	c.count(c.rep.Host)
	return c.rep
}

type checker struct {
	src  Source
	spec *config.Spec
	dp   *config.Dataplane
	rep  *Report

	workers    int   // over all interfaces
	workerCPUs []int // the pinned ones
	online     []int
}

func (c *checker) count(fs []Finding) {
	for _, f := range fs {
		switch f.Status {
		case Problem:
			c.rep.Problems++
		case Warn:
			c.rep.Warnings++
		}
	}
}

func (c *checker) run() {
	if s, err := c.src.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		c.online, _ = parseCPUList(s)
	}
	for _, name := range c.dp.Interfaces {
		c.rep.Interfaces = append(c.rep.Interfaces, c.checkInterface(name))
	}
	c.rep.Host = append(c.rep.Host, c.checkCPUs(), c.checkHugePages(), c.checkBusyPollSupport(), c.checkIRQBalance())
}

// cpuOf returns the CPU of worker k, -1 when workers are not pinned or cpus
// is too short (reported by checkCPUs).
func (c *checker) cpuOf(k int) int {
	if k < len(c.dp.CPUs) {
		return c.dp.CPUs[k]
	}
	return -1
}

func (c *checker) checkInterface(name string) Interface {
	ifc := Interface{Name: name}
	add := func(f Finding) { ifc.Findings = append(ifc.Findings, f) }
	sys := "/sys/class/net/" + name
	rx, err := c.src.ReadDir(sys + "/queues")
	if err != nil {
		add(Finding{Check: "interface", Status: Problem,
			Message: fmt.Sprintf("no interface %s in this network namespace (%v)", name, err),
			Fix:     []string{"ip link show", "ip netns exec NAMESPACE ipfront check --host --config FILE"}})
		return ifc
	}
	for _, q := range rx {
		if strings.HasPrefix(q, "rx-") {
			ifc.RXQueues++
		}
	}
	queues := c.dp.Queues
	if queues == nil {
		for q := 0; q < ifc.RXQueues; q++ {
			queues = append(queues, q)
		}
	}
	for _, q := range queues {
		ifc.Workers = append(ifc.Workers, Worker{Queue: q, CPU: c.cpuOf(c.workers)})
		if cpu := c.cpuOf(c.workers); cpu >= 0 {
			c.workerCPUs = append(c.workerCPUs, cpu)
		}
		c.workers++
	}

	info, err := c.src.Ethtool("-i", name)
	if err == nil {
		ifc.Driver, _ = ethtoolField(info, "", "driver")
	}
	add(c.checkDriver(&ifc, err))
	add(c.checkQueues(&ifc))
	ifc.Findings = append(ifc.Findings, c.checkRSS(&ifc)...)
	add(c.checkIRQs(&ifc))
	add(c.checkOffloads(&ifc))
	add(c.checkNAPI(&ifc))
	return ifc
}

// zeroCopy tells whether the sockets on ifc will be in zero-copy mode.
func (c *checker) zeroCopy(ifc *Interface) bool {
	return c.dp.ZeroCopy != config.ZeroCopyOff && zeroCopyDrivers[ifc.Driver]
}

func (c *checker) checkDriver(ifc *Interface, err error) Finding {
	f := Finding{Check: "driver"}
	switch {
	case err != nil:
		f.Status, f.Message = Skip, fmt.Sprintf("driver unknown: %v", err)
	case zeroCopyDrivers[ifc.Driver]:
		f.Status, f.Message = OK, fmt.Sprintf("driver %s supports AF_XDP zero-copy", ifc.Driver)
		if c.dp.ZeroCopy == config.ZeroCopyOff {
			f.Status, f.Message = Warn, f.Message+`, but zero_copy = "off" copies every frame`
			f.Fix = []string{`set zero_copy = "auto" (or "on") in [dataplane]`}
		}
	case c.dp.ZeroCopy == config.ZeroCopyOn:
		f.Status = Problem
		f.Message = fmt.Sprintf(`driver %s has no AF_XDP zero-copy, and zero_copy = "on": ipfront will not start`, ifc.Driver)
		f.Fix = []string{`set zero_copy = "auto" in [dataplane] (copy mode), or use a NIC whose driver has zero-copy (ice, i40e, ixgbe, igc, mlx5)`}
	default:
		f.Status = Info
		f.Message = fmt.Sprintf("driver %s has no AF_XDP zero-copy: sockets run in copy mode (the kernel copies each frame into the UMEM)", ifc.Driver)
	}
	return f
}

func (c *checker) checkQueues(ifc *Interface) Finding {
	f := Finding{Check: "queues"}
	var missing []int
	for _, w := range ifc.Workers {
		if w.Queue >= ifc.RXQueues {
			missing = append(missing, w.Queue)
		}
	}
	chOut, chErr := c.src.Ethtool("-l", ifc.Name)
	ch, chOK := parseChannels(chOut)
	setQueues := func(n int) string {
		if chErr == nil && chOK && ch.maxCombined > 0 {
			return fmt.Sprintf("ethtool -L %s combined %d", ifc.Name, n)
		}
		return fmt.Sprintf("ethtool -L %s rx %d", ifc.Name, n)
	}
	switch {
	case len(missing) > 0:
		f.Status = Problem
		f.Message = fmt.Sprintf("%s has %d RX queues; queues %v in [dataplane] do not exist: ipfront will not start", ifc.Name, ifc.RXQueues, missing)
		f.Fix = []string{setQueues(slices.Max(missing) + 1)}
	case len(ifc.Workers) == 0:
		f.Status, f.Message = Problem, fmt.Sprintf("%s has no RX queue to serve", ifc.Name)
	case len(ifc.Workers) < ifc.RXQueues:
		// Whether the unserved queues get VIP traffic is the RSS table's
		// question (checkRSS); here it is only worth knowing.
		f.Status = Info
		f.Message = fmt.Sprintf("%d RX queues, workers on %d of them (queues %v)", ifc.RXQueues, len(ifc.Workers), c.dp.Queues)
	default:
		f.Status, f.Message = OK, fmt.Sprintf("%d RX queues, one worker each", ifc.RXQueues)
	}
	if f.Status == OK && len(c.online) > 0 && c.workers > len(c.online) {
		f.Status = Warn
		f.Message += fmt.Sprintf("; %d workers in all for %d online CPUs: workers share cores", c.workers, len(c.online))
		f.Fix = []string{setQueues(max(1, len(ifc.Workers)-(c.workers-len(c.online))))}
	}
	return f
}

func (c *checker) checkRSS(ifc *Interface) []Finding {
	out, err := c.src.Ethtool("-x", ifc.Name)
	var r rss
	if err == nil {
		r, err = parseRSS(out)
	}
	if err != nil {
		msg := fmt.Sprintf("RSS not readable: %v", err)
		if ifc.RXQueues <= 1 {
			msg = "single RX queue: no RSS to check"
		}
		return []Finding{{Check: "rss", Status: Skip, Message: msg}}
	}
	served := map[int]bool{}
	for _, w := range ifc.Workers {
		served[w.Queue] = true
	}
	var unserved []int
	for _, q := range r.table {
		if !served[q] && !slices.Contains(unserved, q) {
			unserved = append(unserved, q)
		}
	}
	slices.Sort(unserved)
	table := Finding{Check: "rss_table", Status: OK, Message: fmt.Sprintf("the indirection table (%d entries) spreads flows over served queues only", len(r.table))}
	if len(unserved) > 0 {
		table.Status = Problem
		table.Message = fmt.Sprintf("the RSS indirection table sends flows to queues %v, which no worker serves: their VIP packets are lost", unserved)
		table.Fix = []string{rssWeights(ifc.Name, ifc.RXQueues, served)}
	}

	sym := Finding{Check: "rss_symmetric"}
	ok, why := r.symmetric()
	needed := c.needSymmetric()
	switch {
	case ok:
		sym.Status, sym.Message = OK, "RSS hash is symmetric: "+why
	case needed != "":
		sym.Status = Problem
		sym.Message = fmt.Sprintf("RSS hash is not symmetric (%s): target set %q forwards return traffic through ipfront, whose packets must reach the worker that owns the flow", why, needed)
	default:
		sym.Status = Info
		sym.Message = fmt.Sprintf("RSS hash is not symmetric (%s); fine for DSR, where replies bypass ipfront", why)
	}
	if !ok && len(r.key) > 0 {
		sym.Fix = []string{
			fmt.Sprintf("ethtool -X %s hkey %s", ifc.Name, symmetricKey(len(r.key))),
			fmt.Sprintf("ethtool -X %s xfrm symmetric-xor   # or this, with Linux and ethtool 6.9+ and driver support", ifc.Name),
		}
	}
	return []Finding{table, sym}
}

// rssWeights is the ethtool command that spreads RSS over the served queues
// only.
func rssWeights(name string, queues int, served map[int]bool) string {
	contiguous := true
	n := 0
	for q := 0; q < queues; q++ {
		if served[q] {
			if q != n {
				contiguous = false
			}
			n++
		}
	}
	if contiguous {
		return fmt.Sprintf("ethtool -X %s equal %d", name, n)
	}
	w := make([]string, queues)
	for q := range w {
		w[q] = "0"
		if served[q] {
			w[q] = "1"
		}
	}
	return fmt.Sprintf("ethtool -X %s weight %s", name, strings.Join(w, " "))
}

// needSymmetric names a target set whose return traffic comes back through
// ipfront, or "" if every set uses DSR.
func (c *checker) needSymmetric() string {
	for _, ts := range c.spec.TargetSets {
		if ts.Forwarding != "" && ts.Forwarding != "dsr" {
			return ts.Name
		}
	}
	return ""
}

// irqOnWorkerCore says where a queue's interrupt should run: on its worker's
// own core, except for a busy-polling worker in copy mode, whose core is
// taken by the spinning worker while the kernel's copy into the UMEM happens
// in the interrupt's NAPI: that goes to another core (configs/tuning.md).
func (c *checker) irqOnWorkerCore(ifc *Interface) bool {
	return !c.dp.BusyPoll || c.zeroCopy(ifc)
}

func (c *checker) checkIRQs(ifc *Interface) Finding {
	f := Finding{Check: "irq_affinity"}
	// A PCI NIC's vectors are under its device; a virtio NIC's device is
	// the virtio device, whose parent is the PCI function.
	dir := "/sys/class/net/" + ifc.Name + "/device/msi_irqs"
	nums, err := c.src.ReadDir(dir)
	if err != nil || len(nums) == 0 {
		nums, err = c.src.ReadDir("/sys/class/net/" + ifc.Name + "/device/../msi_irqs")
	}
	if err != nil || len(nums) == 0 {
		f.Status = Skip
		f.Message = "no per-queue interrupts (a virtual device, or no MSI): nothing to pin"
		return f
	}
	procIRQs, err := c.src.ReadFile("/proc/interrupts")
	if err != nil {
		f.Status, f.Message = Skip, fmt.Sprintf("cannot read /proc/interrupts: %v", err)
		return f
	}
	names := parseInterrupts(procIRQs)
	byQueue := map[int]int{} // queue -> IRQ
	for _, s := range nums {
		n, err := strconv.Atoi(s)
		if err != nil {
			continue
		}
		it, ok := names[n]
		if !ok || it.name == ifc.Name {
			continue // ixgbe names its misc vector after the netdev
		}
		if q, ok := queueOfIRQ(it.name); ok {
			if _, dup := byQueue[q]; !dup {
				byQueue[q] = n
			}
		}
	}
	if len(byQueue) == 0 {
		f.Status = Skip
		f.Message = fmt.Sprintf("%d interrupts of the device, none named after an RX queue: check them by hand in /proc/interrupts", len(nums))
		return f
	}
	if len(c.dp.CPUs) == 0 {
		f.Status = Warn
		f.Message = "workers are not pinned (cpus is empty): the scheduler moves them away from their queues' interrupts"
		f.Fix = []string{"list one CPU per worker in [dataplane] cpus, then run this check again for the IRQ commands"}
		return f
	}
	same := c.irqOnWorkerCore(ifc)
	var bad []string
	for _, w := range ifc.Workers {
		n, ok := byQueue[w.Queue]
		if !ok || w.CPU < 0 {
			continue
		}
		aff, err := c.src.ReadFile(fmt.Sprintf("/proc/irq/%d/smp_affinity_list", n))
		if err != nil {
			bad = append(bad, fmt.Sprintf("queue %d: IRQ %d affinity unreadable: %v", w.Queue, n, err))
			continue
		}
		cpus, err := parseCPUList(aff)
		if err != nil {
			bad = append(bad, fmt.Sprintf("queue %d: IRQ %d: %v", w.Queue, n, err))
			continue
		}
		var want int
		switch {
		case same && !(len(cpus) == 1 && cpus[0] == w.CPU):
			want = w.CPU
			bad = append(bad, fmt.Sprintf("queue %d: IRQ %d may run on CPUs %s, its worker runs on CPU %d", w.Queue, n, formatCPUList(cpus), w.CPU))
		case !same && (len(cpus) != 1 || slices.Contains(c.dp.CPUs, cpus[0])):
			want = c.spareCPU(w.CPU)
			bad = append(bad, fmt.Sprintf("queue %d: IRQ %d may run on CPUs %s; with busy_poll = true in copy mode it belongs on one CPU that runs no worker", w.Queue, n, formatCPUList(cpus)))
		default:
			continue
		}
		f.Fix = append(f.Fix, fmt.Sprintf("echo %d > /proc/irq/%d/smp_affinity_list", want, n))
	}
	if len(bad) == 0 {
		f.Status = OK
		where := "its worker's CPU"
		if !same {
			where = "a CPU of its own, apart from the spinning workers"
		}
		f.Message = fmt.Sprintf("every served queue's interrupt is pinned to %s", where)
		return f
	}
	f.Status = Warn
	f.Message = strings.Join(bad, "; ")
	return f
}

// spareCPU suggests an online CPU that runs no worker, near cpu; cpu itself
// if there is none.
func (c *checker) spareCPU(cpu int) int {
	best := -1
	for _, o := range c.online {
		if slices.Contains(c.dp.CPUs, o) {
			continue
		}
		if best < 0 || abs(o-cpu) < abs(best-cpu) {
			best = o
		}
	}
	if best < 0 {
		return cpu
	}
	return best
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func (c *checker) checkOffloads(ifc *Interface) Finding {
	f := Finding{Check: "offloads"}
	out, err := c.src.Ethtool("-k", ifc.Name)
	if err != nil {
		f.Status, f.Message = Skip, fmt.Sprintf("features not readable: %v", err)
		return f
	}
	on := func(feature string) bool {
		v, ok := ethtoolField(out, "", feature)
		return ok && strings.HasPrefix(v, "on")
	}
	var bad []string
	if on("large-receive-offload") {
		bad = append(bad, "LRO merges frames in the NIC before XDP sees them (and most drivers refuse XDP with it)")
		f.Fix = append(f.Fix, fmt.Sprintf("ethtool -K %s lro off", ifc.Name))
	}
	if on("rx-gro-hw") {
		bad = append(bad, "hardware GRO merges frames before XDP sees them")
		f.Fix = append(f.Fix, fmt.Sprintf("ethtool -K %s rx-gro-hw off", ifc.Name))
	}
	if len(bad) > 0 {
		f.Status, f.Message = Problem, strings.Join(bad, "; ")
		return f
	}
	if on("generic-receive-offload") {
		switch c.dp.XDPMode {
		case config.XDPGeneric:
			f.Status = Problem
			f.Message = `GRO is on and xdp_mode = "generic": generic XDP runs after GRO, so the steering program sees merged super-frames, which do not fit a UMEM frame`
			f.Fix = []string{fmt.Sprintf("ethtool -K %s gro off", ifc.Name)}
		case config.XDPAuto:
			f.Status = Warn
			f.Message = `GRO is on: harmless in native XDP mode, but xdp_mode = "auto" falls back to generic mode on a driver without native XDP, where GRO merges frames before the steering program sees them`
			f.Fix = []string{fmt.Sprintf("ethtool -K %s gro off", ifc.Name), `or set xdp_mode = "native" in [dataplane]`}
		default:
			f.Status, f.Message = OK, "LRO and hardware GRO off; software GRO only touches traffic passed to the kernel in native XDP mode"
		}
		return f
	}
	f.Status, f.Message = OK, "LRO, hardware GRO and GRO off"
	return f
}

func (c *checker) checkNAPI(ifc *Interface) Finding {
	f := Finding{Check: "napi_defer"}
	if c.dp.BusyPoll || !c.dp.PreferBusyPoll {
		f.Status = Skip
		f.Message = "only for busy_poll = false with prefer_busy_poll"
		return f
	}
	sys := "/sys/class/net/" + ifc.Name
	read := func(name string) (int, error) {
		s, err := c.src.ReadFile(sys + "/" + name)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(strings.TrimSpace(s))
	}
	deferIRQs, err1 := read("napi_defer_hard_irqs")
	timeout, err2 := read("gro_flush_timeout")
	if err1 != nil || err2 != nil {
		f.Status, f.Message = Skip, "napi_defer_hard_irqs or gro_flush_timeout not readable (Linux before 5.11?)"
		return f
	}
	if deferIRQs > 0 && timeout > 0 {
		f.Status = OK
		f.Message = fmt.Sprintf("napi_defer_hard_irqs %d, gro_flush_timeout %d ns: a spinning worker keeps the queue's interrupt masked", deferIRQs, timeout)
		return f
	}
	f.Status = Warn
	f.Message = fmt.Sprintf("napi_defer_hard_irqs %d, gro_flush_timeout %d ns: with preferred busy polling the queue's interrupts still fire under load; deferring them lets the spinning worker run NAPI alone",
		deferIRQs, timeout)
	f.Fix = []string{
		fmt.Sprintf("echo %d > %s/napi_defer_hard_irqs", napiDeferHardIRQs, sys),
		fmt.Sprintf("echo %d > %s/gro_flush_timeout", groFlushTimeoutNs, sys),
	}
	return f
}

func (c *checker) checkCPUs() Finding {
	f := Finding{Check: "cpus"}
	cpus := c.dp.CPUs
	switch {
	case len(cpus) == 0:
		f.Status = Warn
		f.Message = fmt.Sprintf("%d workers, not pinned: pin each to the core of its queue's interrupt", c.workers)
		f.Fix = []string{"list one CPU per worker in [dataplane] cpus (in interface, queue order)"}
		return f
	case len(cpus) != c.workers:
		f.Status = Problem
		f.Message = fmt.Sprintf("cpus lists %d CPUs for %d workers: ipfront will not start", len(cpus), c.workers)
		f.Fix = []string{fmt.Sprintf("list exactly %d CPUs in [dataplane] cpus, or change queues", c.workers)}
		return f
	}
	var offline []int
	for _, cpu := range cpus {
		if len(c.online) > 0 && !slices.Contains(c.online, cpu) {
			offline = append(offline, cpu)
		}
	}
	if len(offline) > 0 {
		f.Status = Problem
		f.Message = fmt.Sprintf("CPUs %v are not online (online: %s): pinning those workers fails", offline, formatCPUList(c.online))
		f.Fix = []string{"list online CPUs in [dataplane] cpus (cat /sys/devices/system/cpu/online)"}
		return f
	}
	f.Status, f.Message = OK, fmt.Sprintf("%d workers pinned to CPUs %s", c.workers, formatCPUList(cpus))
	return f
}

func (c *checker) checkHugePages() Finding {
	f := Finding{Check: "huge_pages"}
	if c.dp.HugePages == config.HugePagesOff {
		f.Status, f.Message = Skip, `huge_pages = "off"`
		return f
	}
	mem, err := c.src.ReadFile("/proc/meminfo")
	if err != nil {
		f.Status, f.Message = Skip, fmt.Sprintf("cannot read /proc/meminfo: %v", err)
		return f
	}
	kb := func(key string) int {
		v, _ := ethtoolField(mem, "", key)
		n, _ := strconv.Atoi(strings.TrimSuffix(v, " kB"))
		return n
	}
	size := kb("Hugepagesize") << 10
	if size == 0 {
		f.Status, f.Message = Skip, "the kernel has no hugetlb pages"
		return f
	}
	perSocket := (c.dp.Frames*c.dp.FrameSize + size - 1) / size
	need, free, total := perSocket*c.workers, kb("HugePages_Free"), kb("HugePages_Total")
	if free >= need {
		f.Status = OK
		f.Message = fmt.Sprintf("%d free hugetlb pages of %d KiB, the UMEMs need %d", free, size>>10, need)
		return f
	}
	f.Status = Warn
	f.Message = fmt.Sprintf("%d free hugetlb pages of %d KiB, the UMEMs of %d workers need %d: they fall back to transparent huge pages", free, size>>10, c.workers, need)
	if c.dp.HugePages == config.HugePagesOn {
		f.Status = Problem
		f.Message = fmt.Sprintf(`%d free hugetlb pages of %d KiB, the UMEMs of %d workers need %d, and huge_pages = "on": ipfront will not start`, free, size>>10, c.workers, need)
	}
	f.Fix = []string{fmt.Sprintf("sysctl -w vm.nr_hugepages=%d", total+need-free)}
	return f
}

func (c *checker) checkBusyPollSupport() Finding {
	f := Finding{Check: "busy_poll"}
	if c.dp.BusyPoll || !c.dp.PreferBusyPoll {
		f.Status, f.Message = Skip, "only for busy_poll = false with prefer_busy_poll"
		return f
	}
	if _, err := c.src.ReadFile("/proc/sys/net/core/busy_poll"); err != nil {
		f.Status = Warn
		f.Message = "the kernel has no busy polling (CONFIG_NET_RX_BUSY_POLL): idle workers spin and sleep without running NAPI themselves"
		f.Fix = []string{"use a kernel built with CONFIG_NET_RX_BUSY_POLL=y", "or set prefer_busy_poll = false in [dataplane]"}
		return f
	}
	f.Status, f.Message = OK, "the kernel has busy polling (CONFIG_NET_RX_BUSY_POLL)"
	return f
}

func (c *checker) checkIRQBalance() Finding {
	f := Finding{Check: "irqbalance"}
	procs, err := c.src.ReadDir("/proc")
	if err != nil {
		f.Status, f.Message = Skip, fmt.Sprintf("cannot list /proc: %v", err)
		return f
	}
	for _, p := range procs {
		if _, err := strconv.Atoi(p); err != nil {
			continue
		}
		comm, err := c.src.ReadFile("/proc/" + p + "/comm")
		if err == nil && strings.TrimSpace(comm) == "irqbalance" {
			f.Status = Warn
			f.Message = fmt.Sprintf("irqbalance (pid %s) runs and moves interrupts, undoing their pinning to the workers' CPUs", p)
			f.Fix = []string{"systemctl disable --now irqbalance"}
			if len(c.workerCPUs) > 0 {
				f.Fix = append(f.Fix, fmt.Sprintf("or keep it off the workers' CPUs: IRQBALANCE_BANNED_CPULIST=%s in /etc/default/irqbalance", formatCPUList(c.workerCPUs)))
			}
			return f
		}
	}
	f.Status, f.Message = OK, "irqbalance is not running"
	return f
}

// WriteText writes the report for a terminal: one block per interface, then
// the host, each finding with its fixes, and a summary line.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "host check for %s\n", r.Config)
	for _, ifc := range r.Interfaces {
		fmt.Fprintf(w, "\ninterface %s", ifc.Name)
		if ifc.Driver != "" {
			fmt.Fprintf(w, " (driver %s)", ifc.Driver)
		}
		fmt.Fprintf(w, ": %d RX queues, %d workers\n", ifc.RXQueues, len(ifc.Workers))
		writeFindings(w, ifc.Findings)
	}
	fmt.Fprintf(w, "\nhost\n")
	writeFindings(w, r.Host)
	fmt.Fprintf(w, "\n%s, %s\n", plural(r.Problems, "problem"), plural(r.Warnings, "warning"))
}

func writeFindings(w io.Writer, fs []Finding) {
	for _, f := range fs {
		status := string(f.Status)
		if f.Status == Problem {
			status = "PROBLEM"
		}
		fmt.Fprintf(w, "  %-8s %-14s %s\n", status, f.Check, f.Message)
		for _, fix := range f.Fix {
			fmt.Fprintf(w, "  %-8s %-14s fix: %s\n", "", "", fix)
		}
	}
}

// plural is "1 problem", "2 problems".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
