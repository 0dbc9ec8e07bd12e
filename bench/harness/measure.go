//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/bench/pktgen/gen"
	"github.com/ipfront/ipfront/internal/lab"
)

// clkTck is USER_HZ, the unit of /proc/stat and /proc/PID/stat times.
const clkTck = 100

// cpuTimes are busy ticks per CPU (user+nice+system+irq+softirq: idle,
// iowait and steal excluded) and in total, from /proc/stat.
type cpuTimes struct {
	perCPU []uint64
	total  uint64
}

func readCPUTimes() (cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}, err
	}
	var ct cpuTimes
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.HasPrefix(f[0], "cpu") {
			continue
		}
		var v [7]uint64
		for i := range v {
			v[i], _ = strconv.ParseUint(f[i+1], 10, 64)
		}
		busy := v[0] + v[1] + v[2] + v[5] + v[6] // user nice system irq softirq
		if f[0] == "cpu" {
			ct.total = busy
		} else {
			ct.perCPU = append(ct.perCPU, busy)
		}
	}
	return ct, nil
}

// procTicks returns utime+stime of a process (all its threads) or a kernel
// thread, from /proc/PID/stat; 0 if it is gone.
func procTicks(pid int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// Fields after the command: state(3) ... utime(14) stime(15), so
	// f[11] and f[12].
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	return u + st
}

// usage is CPU time used over a measurement window.
type usage struct {
	Seconds float64 // wall-clock
	DUT     float64 // CPU seconds of the DUT's process(es) and its receive NAPI threads
	DUTProc float64 // of the DUT's process(es) only
	Core    float64 // busy CPU seconds of the DUT's core (dutCPU)
	Machine float64 // busy CPU seconds of all CPUs
	Gen     float64 // of the generator (the harness process)
}

// sampler takes the "before" readings of a window; end takes the "after".
type sampler struct {
	start    time.Time
	cpu      cpuTimes
	procs    []int
	napis    []int
	procT    map[int]uint64
	self     uint64
	napiBase uint64
}

func startSample(procs, napis []int) (*sampler, error) {
	s := &sampler{procs: procs, napis: napis, procT: map[int]uint64{}}
	for _, p := range append(append([]int(nil), procs...), napis...) {
		s.procT[p] = procTicks(p)
	}
	s.self = procTicks(os.Getpid())
	var err error
	s.cpu, err = readCPUTimes()
	s.start = time.Now()
	return s, err
}

func (s *sampler) end() (usage, error) {
	cpu, err := readCPUTimes()
	u := usage{Seconds: time.Since(s.start).Seconds()}
	if err != nil {
		return u, err
	}
	var proc, napi uint64
	for _, p := range s.procs {
		proc += procTicks(p) - s.procT[p]
	}
	for _, p := range s.napis {
		napi += procTicks(p) - s.procT[p]
	}
	u.DUTProc = float64(proc) / clkTck
	u.DUT = float64(proc+napi) / clkTck
	if dutCPU < len(cpu.perCPU) {
		u.Core = float64(cpu.perCPU[dutCPU]-s.cpu.perCPU[dutCPU]) / clkTck
	}
	u.Machine = float64(cpu.total-s.cpu.total) / clkTck
	u.Gen = float64(procTicks(os.Getpid())-s.self) / clkTck
	return u, nil
}

// pin sets the CPU affinity of a thread or process (pid) to one CPU, or to
// every CPU when cpu < 0.
func pin(pid, cpu int) error {
	var set unix.CPUSet
	if cpu < 0 {
		for c := 0; c < numCPU(); c++ {
			set.Set(c)
		}
	} else {
		set.Set(cpu)
	}
	return unix.SchedSetaffinity(pid, &set)
}

func numCPU() int {
	ct, err := readCPUTimes()
	if err != nil || len(ct.perCPU) == 0 {
		return 1
	}
	return len(ct.perCPU)
}

// realtime makes a NAPI thread SCHED_FIFO, so that it preempts the
// application on its core the way softirq processing preempts a task when a
// NIC interrupts: without it a busy-polling DUT on the same core starves the
// kernel thread that fills its ring.
func realtime(pid int) error {
	return unix.SchedSetAttr(pid, &unix.SchedAttr{Policy: unix.SCHED_FIFO, Priority: 50}, 0)
}

// place is where the DUT's kernel work runs during a packet run.
type place int

const (
	// placeDUTCore (the forwarding table's method, see BENCHMARKS.md,
	// "Method"): the DUT's receive NAPI threads and the bridge's egress
	// NAPI threads (towards the sinks) both on the DUT's core, SCHED_FIFO,
	// so the "DUT core" column holds the DUT plus an egress cost that is the
	// same for every peer per delivered frame, and the DUT CPU column can
	// bill the DUT's receive work to it.
	placeDUTCore place = iota
	// placeSpread: threaded NAPI as above, nothing pinned: the scheduler
	// places the kernel threads.
	placeSpread
	// placeRPS is how a user gives each side a core (issue 14): NAPI runs
	// in softirq context where it was raised (the DUT's receive NAPI on the
	// generator's core, raised by the bridge's transmit there), and RPS
	// hands the kernel peers' packets to the DUT's core for the IP stack;
	// an AF_XDP peer's worker is pinned there by its configuration.
	placeRPS
	// placeRPS2 is placeRPS with RPS over both cores (the kernel peer's
	// answer to two workers on two cores).
	placeRPS2
)

// placement puts the kernel's share of the DUT's work where p says and
// returns the DUT's receive NAPI threads (none without threaded NAPI).
func (t *topo) placement(p place) (dutNAPI []int, err error) {
	threaded := p == placeDUTCore || p == placeSpread
	if err := t.setThreaded(threaded); err != nil {
		return nil, err
	}
	rps := 0
	switch p {
	case placeRPS:
		rps = 1 << dutCPU
	case placeRPS2:
		rps = 1<<dutCPU | 1<<genCPU
	}
	if err := t.setRPS(rps); err != nil {
		return nil, err
	}
	if !threaded {
		return nil, nil
	}
	dutNAPI = napiThreads(t.lb.ifname)
	egress := napiThreads(t.lb.port)
	if len(dutNAPI) == 0 || len(egress) == 0 {
		return nil, fmt.Errorf("no NAPI threads for %s (%v) or %s (%v)", t.lb.ifname, dutNAPI, t.lb.port, egress)
	}
	c := dutCPU
	if p == placeSpread {
		c = -1
	}
	for _, pid := range slices.Concat(dutNAPI, egress) {
		if err := pin(pid, c); err != nil {
			return nil, fmt.Errorf("pin NAPI thread %d: %w", pid, err)
		}
		if err := realtime(pid); err != nil {
			return nil, fmt.Errorf("NAPI thread %d SCHED_FIFO: %w", pid, err)
		}
	}
	return dutNAPI, nil
}

// load is what the generator sends in a packet run.
type load struct {
	proto    gen.Proto
	srcCount int // client addresses from 10.64.0.0
	sports   int // ports per address
	dport    uint16
	warm     int           // passes over every flow before measuring (stateful peers)
	duration time.Duration // measured run; 0: one pass over the flows (count)
	queues   int           // generator queues (one Generator each, on CPUs genCPU, dutCPU)
	place    place         // where the DUT's kernel work runs (see placement)
	rate     float64       // offered load in pps over all queues, 0 for as fast as possible
	// onStart, if set, runs after the warm-up, just before the window.
	onStart func() error
}

func (l load) flows() int { return l.srcCount * l.sports }

// pktResult is one packet run of one peer.
type pktResult struct {
	Key      string // for lookups: "ceiling", "ipfront-busy", ...
	Cfg      ipfCfg // ipfront runs only
	Flows    int
	Dur      time.Duration
	Warm     int
	Peer     string
	Workload string
	Sent     uint64
	Deliv    uint64
	Elapsed  float64 // generator's elapsed time, seconds
	Use      usage
	Skipped  string    // why the peer was not measured ("not installed")
	Rounds   int       // rounds this run is the median of (0 or 1: a single run)
	RoundPPS []float64 // delivered pps of every round, in order, when Rounds > 1
	Err      error
	Extra    map[string]float64
	Note     string
	ZeroCopy bool
}

func (r *pktResult) SentPPS() float64  { return safeDiv(float64(r.Sent), r.Elapsed) }
func (r *pktResult) DelivPPS() float64 { return safeDiv(float64(r.Deliv), r.Elapsed) }
func (r *pktResult) Drops() int64      { return int64(r.Sent) - int64(r.Deliv) }

// perMpkt returns CPU seconds per million delivered packets.
func (r *pktResult) perMpkt(sec float64) float64 { return safeDiv(sec, float64(r.Deliv)/1e6) }

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// generators opens one Generator per queue of the load in the client's
// namespace, with frames for the DUT's MAC and the VIP.
func (t *topo) generators(l load, d time.Duration, count uint64) ([]*gen.Generator, error) {
	var gens []*gen.Generator
	for q := 0; q < l.queues; q++ {
		cpu := genCPU
		if q == 1 {
			cpu = dutCPU
		}
		cfg := gen.Config{
			Dev: t.client.ifname, Queue: q, XSKMode: gen.XSKCopy,
			SrcMAC: [6]byte(t.client.mac), DstMAC: [6]byte(t.lb.mac),
			// Flows of queue q start at a different address, so two
			// generators send different flows.
			Src:      netip.AddrFrom4([4]byte{10, byte(64 + 16*q), 0, 0}),
			Dst:      t.vip,
			SrcCount: l.srcCount, SportCount: l.sports, Dport: l.dport,
			Proto: l.proto, Pin: true, CPU: cpu,
			Duration: d, Count: count,
		}
		if l.rate > 0 && d > 0 {
			cfg.Rate = l.rate / float64(l.queues)
		}
		var g *gen.Generator
		err := lab.Do(t.client.ns, func() error {
			var err error
			g, err = gen.New(cfg)
			return err
		})
		if err != nil {
			for _, g := range gens {
				g.Close()
			}
			return nil, err
		}
		gens = append(gens, g)
	}
	return gens, nil
}

// runGens runs every generator concurrently and sums what they sent;
// elapsed is the longest run.
func runGens(ctx context.Context, gens []*gen.Generator) (sent uint64, elapsed float64, zc bool, err error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
	)
	for _, g := range gens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := g.Run(ctx)
			mu.Lock()
			defer mu.Unlock()
			sent += res.Sent
			elapsed = max(elapsed, res.Elapsed.Seconds())
			zc = res.ZeroCopy
			if err != nil {
				errs = append(errs, err)
			}
		}()
	}
	wg.Wait()
	return sent, elapsed, zc, errors.Join(errs...)
}

// sendGens opens generators, runs them and closes them.
func (t *topo) sendGens(ctx context.Context, l load, d time.Duration, count uint64) (sent uint64, elapsed float64, zc bool, err error) {
	gens, err := t.generators(l, d, count)
	if err != nil {
		return 0, 0, false, err
	}
	defer func() {
		for _, g := range gens {
			g.Close()
		}
	}()
	return runGens(ctx, gens)
}

// packetRun measures one peer under one load: warm-up, then the measured
// window from the first frame sent until the sinks stop counting.
// dutProcs are the DUT's processes (none for in-kernel peers).
func (t *topo) packetRun(ctx context.Context, l load, dutProcs []int, r *pktResult) error {
	if err := t.sinks(true); err != nil {
		return err
	}
	napis, err := t.placement(l.place)
	if err != nil {
		return err
	}
	for range l.warm {
		if _, _, _, err := t.sendGens(ctx, l, 0, uint64(l.flows())); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		if err := t.settle(ctx); err != nil {
			return err
		}
	}
	count := uint64(0)
	if l.duration == 0 {
		count = uint64(l.flows())
	}
	gens, err := t.generators(l, l.duration, count)
	if err != nil {
		return err
	}
	defer func() {
		for _, g := range gens {
			g.Close()
		}
	}()
	if l.onStart != nil {
		if err := l.onStart(); err != nil {
			return err
		}
	}
	c0, err := t.sinkCount()
	if err != nil {
		return err
	}
	s, err := startSample(dutProcs, napis)
	if err != nil {
		return err
	}
	sent, elapsed, zc, err := runGens(ctx, gens)
	if err != nil {
		return err
	}
	if err := t.settle(ctx); err != nil {
		return err
	}
	use, err := s.end()
	if err != nil {
		return err
	}
	c1, err := t.sinkCount()
	if err != nil {
		return err
	}
	r.Sent, r.Deliv, r.Elapsed, r.Use, r.ZeroCopy = sent, c1-c0, elapsed, use, zc
	r.Flows, r.Dur, r.Warm = l.flows()*l.queues, l.duration, l.warm
	return nil
}

// settle waits until the sinks' count has not moved for 50 ms (at most 2 s):
// frames still in rings and queues are delivered or dropped by then.
func (t *topo) settle(ctx context.Context) error {
	last, err := t.sinkCount()
	if err != nil {
		return err
	}
	stable := time.Now()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		c, err := t.sinkCount()
		if err != nil {
			return err
		}
		if c != last {
			last, stable = c, time.Now()
		} else if time.Since(stable) >= 50*time.Millisecond {
			return nil
		}
	}
	return nil
}

// name describes the load for the tables.
func (l load) name() string {
	q := ""
	if l.queues > 1 {
		q = fmt.Sprintf(", %d generator queues", l.queues)
	}
	if l.rate > 0 {
		q += fmt.Sprintf(", offered %s pps", human(l.rate))
	}
	return fmt.Sprintf("%v, %s flows%s", l.proto, human(float64(l.flows())), q)
}

// human prints a count with a k/M suffix.
func human(v float64) string {
	switch {
	case v >= 1e6 && int(v)%(1<<20) == 0:
		return fmt.Sprintf("%dMi", int(v)/(1<<20))
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1024 && int(v)%1024 == 0:
		return fmt.Sprintf("%dKi", int(v)/1024)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}
