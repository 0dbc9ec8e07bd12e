//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/internal/lab"
)

// The overhead accounting (issue 14): ipfront and the raw AF_XDP forwarder
// xskfwd, one after the other under the same generator load, each in a
// profiled window: a system-wide perf record (cpu-clock, call graphs, both
// cores, kernel included) and the kernel's BPF run-time statistics of the
// XDP programs on the path. Every sample is put in one item (see classify),
// and each item's CPU time is divided by the frames the sinks counted in the
// window: CPU nanoseconds per delivered frame, per core. The difference
// between the two peers, item by item, is what ipfront costs on top of
// receiving and transmitting a frame.

// profLoadShare is the offered load of the profiled windows, as a share of
// what xskfwd delivered in the forwarding table: both forwarders keep up, so
// every frame offered is one delivered and costs compare frame for frame.
const profLoadShare = 0.75

// perfPeriodNs is the cpu-clock sampling period: a sample every 250 µs of
// CPU time (4000 per second per core), idle included.
const perfPeriodNs = 250_000

// profItem is one line of the accounting.
type profItem struct {
	key, label string
}

// The items, in report order. Kernel items come first, then the DUT
// process's user space, then everything else on the core.
var profItems = []profItem{
	{"steer", "steering XDP program (bpf_prog_*, in the DUT's RX NAPI)"},
	{"xskrcv", "XDP redirect + copy into the UMEM (xdp_do_redirect, xsk_rcv)"},
	{"rxnapi", "DUT's RX NAPI, rest (veth ring, skb to XDP, page recycling)"},
	{"kstack", "kernel IP stack / netfilter (in-kernel peers)"},
	{"txkick", "AF_XDP TX: sendto kick (xsk_sendmsg -> veth xmit)"},
	{"rxwake", "AF_XDP wake-ups: recvfrom / poll"},
	{"ksys", "DUT process, other kernel time (other syscalls, faults, scheduling)"},
	{"u-idle", "user: idle polling of an empty RX ring (Worker.idle*, xskfwd's idle*)"},
	{"u-idle-sweep", "user: association sweep while idle"},
	{"u-adapter", "user: socket adapter (fastpath/xsk: Receive, Transmit, Recycle)"},
	{"u-engine", "user: engine (parse, association lookup, select, rewrite)"},
	{"u-sweep", "user: association sweep outside idle polling (ipfront-base: also while idle)"},
	{"u-worker", "user: worker loop (fastpath.Worker: rings, counters, sweep)"},
	{"u-fwd", "user: xskfwd loop (MAC rewrite)"},
	{"u-runtime", "user: Go runtime outside the loop (GC, scheduler, timers)"},
	{"u-other", "user: other goroutines (slow path, API)"},
	{"egress", "egress: bridge -> sinks (p-lb NAPI, sinks' XDP; same per frame for all)"},
	{"other", "other processes and kernel threads"},
	{"idle", "idle"},
}

// bpfProgStat is one XDP program's run-time statistics over a window.
type bpfProgStat struct {
	Name  string
	Runs  uint64
	RunNs uint64
}

// NsPerRun is the program's mean run time.
func (b bpfProgStat) NsPerRun() float64 { return safeDiv(float64(b.RunNs), float64(b.Runs)) }

// profRun is one profiled window of one peer.
type profRun struct {
	Key, Peer string
	Seconds   float64
	Deliv     uint64
	Sent      uint64
	// Samples[item][cpu]: perf samples, each perfPeriodNs of CPU time.
	Samples map[string][]int
	CPUs    int
	BPF     []bpfProgStat
	// Leaves counts samples by core, command, item and leaf symbol.
	Leaves map[string]int
	// Counts are perf stat's counts over the window: "proc <event>" of the
	// DUT process (system calls, context switches), "core <event>" of the
	// DUT's core.
	Counts map[string]float64
	Err    error
}

// nsPerPkt is the CPU time of item on cpu per delivered frame (cpu < 0:
// every core).
func (p *profRun) nsPerPkt(item string, cpu int) float64 {
	s := p.Samples[item]
	n := 0
	for c, v := range s {
		if cpu < 0 || c == cpu {
			n += v
		}
	}
	return safeDiv(float64(n)*perfPeriodNs, float64(p.Deliv))
}

// DelivPPS is the sinks' rate over the window.
func (p *profRun) DelivPPS() float64 { return safeDiv(float64(p.Deliv), p.Seconds) }

// profileWindow measures one running peer (already started; procs are its
// processes) under load l: warm-up, then l.duration of load with a perf
// record and BPF statistics over its middle.
func (e *env) profileWindow(ctx context.Context, key, peer string, pid int, l load, r *profRun) error {
	t := e.t
	r.Key, r.Peer = key, peer
	if err := t.sinks(true); err != nil {
		return err
	}
	if _, err := t.placement(l.place); err != nil {
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
	progs, err := xdpPrograms(t)
	if err != nil {
		return err
	}
	defer func() {
		for _, p := range progs {
			p.prog.Close()
		}
	}()
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		return fmt.Errorf("enable BPF run-time statistics: %w", err)
	}
	defer stats.Close()

	const ramp = 300 * time.Millisecond
	rec := l.duration - 2*ramp
	gens, err := t.generators(l, l.duration, 0)
	if err != nil {
		return err
	}
	defer func() {
		for _, g := range gens {
			g.Close()
		}
	}()
	type genRes struct {
		sent uint64
		err  error
	}
	done := make(chan genRes, 1)
	go func() {
		sent, _, _, err := runGens(ctx, gens)
		done <- genRes{sent, err}
	}()
	select {
	case <-time.After(ramp):
	case g := <-done:
		return fmt.Errorf("generator stopped early: %v", g.err)
	}
	before := make([]bpfProgStat, len(progs))
	for i, p := range progs {
		before[i] = p.stat()
	}
	c0, err := t.sinkCount()
	if err != nil {
		return err
	}
	perfData := filepath.Join(e.out, "perf-"+key+".data")
	secs := fmt.Sprintf("%.3f", rec.Seconds())
	// Counts over the same window: the DUT process's system calls and
	// context switches, and every context switch on the DUT's core.
	counts := make(chan map[string]float64, 2)
	go func() {
		counts <- perfStat(ctx, "proc ", "-p", fmt.Sprint(pid), "-e",
			"syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_poll,syscalls:sys_enter_ppoll,context-switches", "--", "sleep", secs)
	}()
	go func() {
		counts <- perfStat(ctx, "core ", "-C", fmt.Sprint(dutCPU), "-e", "context-switches", "--", "sleep", secs)
	}()
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, "perf", "record", "-e", "cpu-clock", "-c", fmt.Sprint(perfPeriodNs), "-g", "-a",
		"-o", perfData, "--", "sleep", secs)
	out, perr := cmd.CombinedOutput()
	r.Seconds = time.Since(t0).Seconds()
	r.Counts = map[string]float64{}
	for range 2 {
		for k, v := range <-counts {
			r.Counts[k] = v
		}
	}
	c1, cerr := t.sinkCount()
	for i, p := range progs {
		a := p.stat()
		r.BPF = append(r.BPF, bpfProgStat{Name: p.name, Runs: a.Runs - before[i].Runs, RunNs: a.RunNs - before[i].RunNs})
	}
	g := <-done
	if perr != nil {
		return fmt.Errorf("perf record: %v: %s", perr, tail(string(out), 500))
	}
	if err := errors.Join(cerr, g.err); err != nil {
		return err
	}
	r.Deliv, r.Sent = c1-c0, g.sent
	script, err := output("perf", "script", "-i", perfData, "-F", "comm,pid,tid,cpu,ip,sym")
	if err != nil {
		return err
	}
	r.CPUs = numCPU()
	r.Samples, r.Leaves = classifyPerf(script, r.CPUs, pid)
	return nil
}

// perfStat runs perf stat with args and returns its counts by event name,
// each prefixed; nothing if perf failed (the accounting then lacks them).
func perfStat(ctx context.Context, prefix string, args ...string) map[string]float64 {
	out, err := exec.CommandContext(ctx, "perf", append([]string{"stat", "-x,"}, args...)...).CombinedOutput()
	m := map[string]float64{}
	if err != nil {
		return m
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 3 {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(f[0], &v); err == nil {
			m[prefix+strings.TrimPrefix(f[2], "syscalls:sys_enter_")] = v
		}
	}
	return m
}

// perThousand is a count per 1000 delivered frames.
func (p *profRun) perThousand(key string) float64 {
	return safeDiv(1000*p.Counts[key], float64(p.Deliv))
}

// xdpProg is an XDP program attached on the path, opened by id.
type xdpProg struct {
	name string
	prog *ebpf.Program
}

func (p xdpProg) stat() bpfProgStat {
	s, err := p.prog.Stats()
	if err != nil {
		return bpfProgStat{Name: p.name}
	}
	return bpfProgStat{Name: p.name, Runs: s.RunCount, RunNs: uint64(s.Runtime)}
}

// xdpPrograms opens the XDP programs attached to the DUT's interface (the
// peer's steering program, if any) and to its bridge port (the XDP_PASS
// program veth needs there), and one sink's counting program.
func xdpPrograms(t *topo) ([]xdpProg, error) {
	var out []xdpProg
	for _, x := range []struct{ ns, dev, what string }{
		{t.lb.ns, t.lb.ifname, "DUT " + t.lb.ifname},
		{t.sw, t.lb.port, "bridge port " + t.lb.port},
		{t.servers[0].ns, t.servers[0].ifname, "sink " + t.servers[0].ifname},
	} {
		id, err := xdpProgID(x.ns, x.dev)
		if err != nil {
			return out, err
		}
		if id == 0 {
			continue
		}
		p, err := ebpf.NewProgramFromID(ebpf.ProgramID(id))
		if err != nil {
			return out, fmt.Errorf("open XDP program %d of %s: %w", id, x.dev, err)
		}
		name := x.what
		if info, err := p.Info(); err == nil && info.Name != "" {
			name = info.Name + " on " + x.what
		}
		out = append(out, xdpProg{name: name, prog: p})
	}
	return out, nil
}

// xdpProgID returns the id of the XDP program attached to dev in ns (0: none).
func xdpProgID(ns, dev string) (int, error) {
	s, err := output("ip", "-n", ns, "-j", "link", "show", "dev", dev)
	if err != nil {
		return 0, err
	}
	var links []struct {
		XDP *struct {
			Prog *struct {
				ID int `json:"id"`
			} `json:"prog"`
		} `json:"xdp"`
	}
	if err := json.Unmarshal([]byte(s), &links); err != nil {
		return 0, fmt.Errorf("ip -j link show %s: %w", dev, err)
	}
	if len(links) == 0 || links[0].XDP == nil || links[0].XDP.Prog == nil {
		return 0, nil
	}
	return links[0].XDP.Prog.ID, nil
}

// perfSample is one sample of perf script: who, where, and the call chain
// from the leaf outwards.
type perfSample struct {
	comm   string
	pid    int
	cpu    int
	frames []string
	dut    bool // the DUT process ran it
}

// classifyPerf reads "perf script -F comm,pid,tid,cpu,ip,sym" output and
// counts samples per item and CPU; dutPid is the DUT process.
func classifyPerf(script string, cpus, dutPid int) (map[string][]int, map[string]int) {
	out := map[string][]int{}
	leaves := map[string]int{}
	for _, it := range profItems {
		out[it.key] = make([]int, cpus)
	}
	sc := bufio.NewScanner(strings.NewReader(script))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var s perfSample
	have := false
	flush := func() {
		if have && s.cpu >= 0 && s.cpu < cpus {
			s.dut = s.pid == dutPid
			it := classify(&s)
			out[it][s.cpu]++
			if len(s.frames) > 0 && it != "idle" {
				leaves[fmt.Sprintf("core %d %s %s %s", s.cpu, s.comm, it, s.frames[0])]++
			}
		}
		s, have = perfSample{}, false
	}
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			flush()
			// "comm pid/tid [cpu]"; comm may contain spaces.
			i := strings.LastIndexByte(line, '[')
			j := strings.LastIndexByte(line, ']')
			if i < 0 || j < i {
				continue
			}
			fmt.Sscan(line[i+1:j], &s.cpu)
			f := strings.Fields(line[:i])
			if len(f) >= 2 {
				s.comm = strings.Join(f[:len(f)-1], " ")
				pid, _, _ := strings.Cut(f[len(f)-1], "/")
				fmt.Sscan(pid, &s.pid)
			}
			have = true
			continue
		}
		f := strings.Fields(line)
		sym := "[unknown]"
		if len(f) >= 2 {
			sym = strings.Join(f[1:], " ")
		}
		s.frames = append(s.frames, sym)
	}
	flush()
	return out, leaves
}

// has reports whether any frame starts with one of the prefixes.
func (s *perfSample) has(prefixes ...string) bool {
	for _, f := range s.frames {
		for _, p := range prefixes {
			if strings.HasPrefix(f, p) {
				return true
			}
		}
	}
	return false
}

const modPath = "github.com/ipfront/ipfront/"

// classify puts one sample in one item, by who ran it and what is on its
// call chain (see profItems).
func classify(s *perfSample) string {
	comm := s.comm
	dutProc := s.dut
	switch {
	case strings.HasPrefix(comm, "swapper"):
		return "idle"
	case s.bpf("_ipfront_steer"):
		return "steer"
	case strings.HasPrefix(comm, "napi/p-lb") || s.bpf("_ipfront_pass") || s.bpf("_ipfront_cdrop") ||
		s.has("br_handle_frame", "br_forward", "br_dev_queue_push_xmit"):
		return "egress"
	case s.has("veth_poll") && s.has("xdp_do_redirect", "xsk_rcv", "__xsk_rcv", "__xsk_map_redirect", "xdp_do_flush", "xsk_flush"):
		return "xskrcv"
	case s.has("ip_rcv", "ip_forward", "nft_do_chain", "nf_hook_slow", "__netif_receive_skb_core", "ip_finish_output"):
		return "kstack"
	case strings.HasPrefix(comm, "napi/veth-lb") || s.has("veth_poll") && s.has("napi_busy_loop", "__napi_busy_loop"):
		// The DUT's receive NAPI: its thread, or run by a busy poll.
		return "rxnapi"
	case s.has("veth_poll") && s.cpu == dutCPU:
		// Without threaded NAPI, the bridge port's NAPI (the egress) runs
		// in softirq context on the core that transmitted: the DUT's.
		return "egress"
	case s.has("veth_poll"):
		// The DUT's receive NAPI in softirq context where the bridge
		// raised it (the generator's core).
		return "rxnapi"
	case !dutProc:
		return "other"
	}
	// The DUT process. Kernel frames are on the leaf side of the chain.
	if len(s.frames) > 0 && isKernel(s.frames[0]) || s.hasKernel() {
		switch {
		case s.has("xsk_sendmsg", "__xsk_sendmsg", "xsk_generic_xmit", "__x64_sys_sendto"):
			return "txkick"
		case s.has("xsk_recvmsg", "__x64_sys_recvfrom", "xsk_poll", "do_sys_poll", "__x64_sys_poll", "__x64_sys_ppoll"):
			return "rxwake"
		}
		return "ksys"
	}
	// User space. Idle polling first: the loops have a function of their
	// own for an iteration that received nothing.
	if s.has(modPath+"fastpath.(*Worker).idle", "main.(*forwarder).idle") {
		if s.has(modPath + "fastpath/assoc.(*Shard).Sweep") {
			return "u-idle-sweep"
		}
		return "u-idle"
	}
	if s.has(modPath + "fastpath/assoc.(*Shard).Sweep") {
		return "u-sweep"
	}
	// Then the first frame, outwards from the leaf, that is not the
	// runtime's (or the vDSO's) names the item.
	for _, f := range s.frames {
		switch {
		case strings.HasPrefix(f, "runtime.") || strings.HasPrefix(f, "internal/") || strings.HasPrefix(f, "sync/atomic.") ||
			strings.HasPrefix(f, "time.") || strings.HasPrefix(f, "__vdso_") || f == "[unknown]":
			continue
		case strings.HasPrefix(f, modPath+"fastpath/xsk."):
			return "u-adapter"
		case strings.HasPrefix(f, modPath+"fastpath.(*Worker)") || strings.HasPrefix(f, modPath+"fastpath/ring."):
			return "u-worker"
		case strings.HasPrefix(f, modPath+"fastpath"):
			return "u-engine"
		case strings.HasPrefix(f, "main.(*forwarder)"):
			return "u-fwd"
		}
		return "u-other"
	}
	return "u-runtime"
}

// bpf reports whether a BPF program whose name ends with suffix is on the
// chain (JIT-ed programs are named bpf_prog_<tag>_<name>).
func (s *perfSample) bpf(suffix string) bool {
	for _, f := range s.frames {
		if strings.HasPrefix(f, "bpf_prog_") && strings.HasSuffix(f, suffix) {
			return true
		}
	}
	return false
}

// hasKernel reports whether the chain has kernel frames (entry points).
func (s *perfSample) hasKernel() bool {
	return s.has("entry_SYSCALL_64", "do_syscall_64", "asm_exc_page_fault", "asm_sysvec_", "asm_common_interrupt")
}

// isKernel guesses from a symbol name whether it is a kernel function: Go
// symbols have a package path with a dot; the vDSO's functions (clock
// reads) run in user space.
func isKernel(sym string) bool {
	if strings.HasPrefix(sym, "__vdso_") || sym == "[unknown]" {
		return false
	}
	return !strings.Contains(sym, ".") || strings.HasPrefix(sym, "bpf_prog_")
}

// profileOverhead runs the profiled windows of xskfwd and ipfront
// (busy_poll=true, the same rings and batch) under load l: the daemon at
// the base revision first if base (its binary) is set, today's, then alt if
// set (an experiment of the overhead mode).
func (e *env) profileOverhead(ctx context.Context, l load, flows int, alt *ipfCfg, base string) []profRun {
	var out []profRun
	{
		var r profRun
		p, err := e.startXskfwd(ctx, "xskfwd-prof", defaultIPF(true, flows))
		if err == nil {
			err = e.profileWindow(ctx, "xskfwd", "raw AF_XDP forwarder (xskfwd)", p.pid(), noWarm(l), &r)
			err = errors.Join(err, p.stop(5*time.Second))
		}
		r.Err = err
		out = append(out, r)
	}
	cfgs := []ipfCfg{defaultIPF(true, flows)}
	keys := []string{"ipfront"}
	if base != "" {
		b := defaultIPF(true, flows)
		b.binary = base
		cfgs, keys = append([]ipfCfg{b}, cfgs...), append([]string{"ipfront-base"}, keys...)
	}
	if alt != nil {
		cfgs, keys = append(cfgs, *alt), append(keys, "ipfront-alt")
	}
	for i, c := range cfgs {
		var r profRun
		key := keys[i]
		ipf, err := e.startIPFront(ctx, key+"-prof", c)
		if err == nil {
			if c.napiDefer != "" {
				var undo func()
				if undo, err = e.t.setNAPIDefer(c.napiDefer); err == nil {
					defer undo()
				}
			}
			if err == nil {
				err = e.profileWindow(ctx, key, "ipfront DSR ("+c.String()+")", ipf.p.pid(), l, &r)
			}
			err = errors.Join(err, ipf.p.stop(10*time.Second))
		}
		r.Err = err
		out = append(out, r)
	}
	return out
}

// profItemsUsed returns the items with samples in any run, in report order.
func profItemsUsed(runs []profRun) []profItem {
	var out []profItem
	for _, it := range profItems {
		for _, r := range runs {
			if r.Err == nil && sum(r.Samples[it.key]) > 0 {
				out = append(out, it)
				break
			}
		}
	}
	return out
}

func sum(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}

// writeProfText writes a plain-text accounting of runs (the overhead mode's
// output, and a log next to the report).
func writeProfText(path string, runs []profRun) error {
	var b strings.Builder
	for _, r := range runs {
		if r.Err != nil {
			fmt.Fprintf(&b, "%s: FAILED: %v\n", r.Peer, r.Err)
			continue
		}
		fmt.Fprintf(&b, "%s: %.0f kpps delivered in %.2fs window (%d frames)\n", r.Peer, r.DelivPPS()/1e3, r.Seconds, r.Deliv)
		for _, bp := range r.BPF {
			fmt.Fprintf(&b, "  bpf %-40s runs %10d  %.1f ns/run\n", bp.Name, bp.Runs, bp.NsPerRun())
		}
		var ks []string
		for k := range r.Counts {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		for _, k := range ks {
			fmt.Fprintf(&b, "  %-40s %10.0f  %.1f per 1000 frames\n", k, r.Counts[k], r.perThousand(k))
		}
	}
	fmt.Fprintf(&b, "\nns per delivered frame, core %d (DUT) / core %d (generator):\n", dutCPU, genCPU)
	items := profItemsUsed(runs)
	keys := make([]string, 0, len(items))
	for _, it := range items {
		keys = append(keys, it.key)
	}
	sort.SliceStable(keys, func(i, j int) bool { return false })
	fmt.Fprintf(&b, "%-70s", "item")
	for _, r := range runs {
		fmt.Fprintf(&b, " %16s", r.Key)
	}
	b.WriteString("\n")
	for _, it := range items {
		fmt.Fprintf(&b, "%-70s", it.label)
		for _, r := range runs {
			fmt.Fprintf(&b, " %7.0f / %6.0f", r.nsPerPkt(it.key, dutCPU), r.nsPerPkt(it.key, genCPU))
		}
		b.WriteString("\n")
	}
	for _, r := range runs {
		type kv struct {
			k string
			v int
		}
		var top []kv
		for k, v := range r.Leaves {
			top = append(top, kv{k, v})
		}
		sort.Slice(top, func(i, j int) bool { return top[i].v > top[j].v })
		fmt.Fprintf(&b, "\n%s: leaf symbols (core, command, item, symbol), ns per delivered frame\n", r.Key)
		for _, x := range top[:min(len(top), 80)] {
			fmt.Fprintf(&b, "  %7.1f  %s\n", safeDiv(float64(x.v)*perfPeriodNs, float64(r.Deliv)), x.k)
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// overhead is the overhead mode: interleaved delivered-pps rounds of xskfwd
// and ipfront (busy_poll=true, the same rings and batch), then the profiled
// windows; bench/out/overhead.txt has the accounting.
func (h *harness) overhead(ctx context.Context) (err error) {
	p := h.p
	lab.RemoveStale()
	t, err := newTopo(lab.UniquePrefix("bench"))
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, t.close()) }()
	e := &env{t: t, bin: h.bin, out: h.out, logDir: h.logDir}
	ack := p.ack()
	ack.place, ack.rate = p.place, p.rate
	var altCfg *ipfCfg
	if p.alt != "" {
		c := defaultIPF(true, p.flows())
		c.binary, c.napiDefer = p.alt, p.altDefer
		if p.alt == "same" {
			c.binary = ""
		}
		for _, x := range p.altCfg {
			if k, v, ok := strings.Cut(x, "="); ok && strings.TrimSpace(k) == "busy_poll" {
				c.busyPoll = strings.TrimSpace(v) == "true"
				continue
			}
			c.extra = append(c.extra, x)
		}
		altCfg = &c
	}
	var lines []string
	for round := 1; round <= p.rounds; round++ {
		x := e.xskfwd(ctx, noWarm(ack), true)
		i := e.ipfrontRun(ctx, "ipfront-busy", ack, defaultIPF(true, p.flows()))
		line := fmt.Sprintf("round %d: xskfwd %s/%s kpps (%v) %s, ipfront %s/%s kpps (%v) %s", round, kpps(x.SentPPS()), kpps(x.DelivPPS()), x.Err, x.Note,
			kpps(i.SentPPS()), kpps(i.DelivPPS()), i.Err, i.Note)
		if altCfg != nil {
			c := *altCfg
			a := e.ipfrontRun(ctx, "ipfront-alt", ack, c)
			line += fmt.Sprintf("; alt %s/%s kpps (%v) %s", kpps(a.SentPPS()), kpps(a.DelivPPS()), a.Err, a.Note)
		}
		if p.place != placeDUTCore {
			lf := e.linuxForward(ctx, noWarm(ack))
			nd := e.nftNetdev(ctx, noWarm(ack))
			line += fmt.Sprintf("; linux %s kpps (%v), netdev %s kpps (%v)", kpps(lf.DelivPPS()), lf.Err, kpps(nd.DelivPPS()), nd.Err)
		}
		fmt.Fprintln(os.Stderr, "harness:", line)
		lines = append(lines, line)
	}
	if p.noProf {
		fmt.Fprintf(os.Stderr, "%s\n", strings.Join(lines, "\n"))
		return nil
	}
	l := ack
	l.duration = p.profileDur
	runs := e.profileOverhead(ctx, l, p.flows(), altCfg, "")
	path := filepath.Join(h.out, "overhead.txt")
	if err := writeProfText(path, runs); err != nil {
		return err
	}
	f, _ := os.ReadFile(path)
	fmt.Fprintf(os.Stderr, "%s\n%s", strings.Join(lines, "\n"), f)
	return nil
}

// idleItems are the accounting's items that are not work done for a frame:
// the core idle, a worker polling an empty ring, and the association sweep
// a worker does while idle (it keeps the table current, but costs no frame
// anything as long as it stops when frames arrive).
var idleItems = map[string]bool{"idle": true, "u-idle": true, "u-idle-sweep": true}

// workNs is the DUT core's CPU time per delivered frame, idle items left
// out.
func (p *profRun) workNs() float64 {
	total := 0.0
	for _, it := range profItems {
		if !idleItems[it.key] {
			total += p.nsPerPkt(it.key, dutCPU)
		}
	}
	return total
}

// idleShare is the share of the DUT core's samples in idle items.
func (p *profRun) idleShare() float64 {
	var idle, all int
	for _, it := range profItems {
		n := 0
		if dutCPU < len(p.Samples[it.key]) {
			n = p.Samples[it.key][dutCPU]
		}
		all += n
		if idleItems[it.key] {
			idle += n
		}
	}
	return safeDiv(float64(idle), float64(all))
}

// overheadSection writes the accounting of ipfront against xskfwd.
func overheadSection(w *strings.Builder, r *results) {
	fmt.Fprintf(w, "\n## Overhead over xskfwd: where each spends the DUT core\n\n")
	runs := r.overhead
	var ok []profRun
	for _, p := range runs {
		if p.Err != nil {
			fmt.Fprintf(w, "- %s: FAILED: %s\n", p.Peer, oneLine(p.Err.Error()))
			continue
		}
		ok = append(ok, p)
	}
	if len(runs) == 0 {
		fmt.Fprintf(w, "Not run in this run.\n")
		return
	}
	if len(ok) < 2 {
		fmt.Fprintln(w)
		return
	}
	x := ok[0]
	fmt.Fprintf(w, "xskfwd (bench/xskfwd) is the floor under ipfront: the same steering XDP program (fastpath/steer, loaded by\n")
	fmt.Fprintf(w, "each), the same socket adapter (fastpath/xsk) with the same rings, batch and frame size, and only a MAC rewrite\n")
	fmt.Fprintf(w, "between receive and transmit. Each ran once more, after the tables above, under the same offered load\n")
	fmt.Fprintf(w, "(%.0f kpps offered, %.0f%% of what xskfwd delivered in the forwarding table, so that both keep up and every cost\n",
		r.overheadRate/1e3, 100*profLoadShare)
	fmt.Fprintf(w, "compares frame for frame; a forwarder that delivered less than offered in its window, below, dropped, and its\n")
	fmt.Fprintf(w, "receive-side items then include frames it did not deliver), with the forwarding table's placement (the DUT's\n")
	fmt.Fprintf(w, "receive NAPI and the egress on its core). Over %.1f s of\n", x.Seconds)
	fmt.Fprintf(w, "each: `perf record -e cpu-clock -c %d -g -a` (a sample per %d µs of CPU time, idle included, kernel frames and\n",
		perfPeriodNs, perfPeriodNs/1000)
	fmt.Fprintf(w, "call chains included), the kernel's BPF run-time statistics (`BPF_ENABLE_STATS`, what `sysctl\n")
	fmt.Fprintf(w, "kernel.bpf_stats_enabled=1` turns on) of the XDP programs on the path, and `perf stat` counts of the DUT process's\n")
	fmt.Fprintf(w, "system calls and context switches. Every sample of core %d is put in one item by who ran and what is on its call\n", dutCPU)
	fmt.Fprintf(w, "chain (bench/harness/overhead.go, classify), and each item's CPU time is divided by the frames the sinks counted in\n")
	fmt.Fprintf(w, "the window. The profiler and the statistics slow both alike; compare the columns, not these figures with the\n")
	fmt.Fprintf(w, "tables above. Profiles and raw listings: bench/out/perf-*.data, bench/out/overhead.txt.\n\n")

	last := ok[len(ok)-1]
	var base *profRun
	for i := range ok {
		if ok[i].Key == "ipfront-base" {
			base = &ok[i]
		}
	}
	if base != nil {
		fmt.Fprintf(w, "ipfront-base is the daemon at %s (\"%s\"), the code before issue 14's changes, profiled the same way in the\n",
			shortRev(r.overheadBase), oneLine(r.overheadBaseSubject))
		fmt.Fprintf(w, "same run: the last column is what changed.\n\n")
	} else if r.overheadBaseSkip != "" {
		fmt.Fprintf(w, "The daemon at the base revision was not profiled: %s.\n\n", oneLine(r.overheadBaseSkip))
	}
	diffs := func(p *profRun, get func(*profRun) float64, format string) {
		fmt.Fprintf(w, " "+format+" |", get(p)-get(&x))
		if base != nil {
			fmt.Fprintf(w, " "+format+" |", get(p)-get(base))
		}
	}
	fmt.Fprintf(w, "| core %d, CPU ns per delivered frame |", dutCPU)
	for _, p := range ok {
		fmt.Fprintf(w, " %s |", p.Key)
	}
	fmt.Fprintf(w, " %s - xskfwd |", last.Key)
	if base != nil {
		fmt.Fprintf(w, " %s - ipfront-base |", last.Key)
	}
	fmt.Fprintf(w, "\n|---|")
	for range ok {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintf(w, "---:|")
	if base != nil {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintln(w)
	for _, it := range profItemsUsed(ok) {
		fmt.Fprintf(w, "| %s |", it.label)
		for _, p := range ok {
			fmt.Fprintf(w, " %.0f |", p.nsPerPkt(it.key, dutCPU))
		}
		diffs(&last, func(p *profRun) float64 { return p.nsPerPkt(it.key, dutCPU) }, "%+.0f")
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "| **work per frame** (all but idle, idle polling and idle sweeping) |")
	for _, p := range ok {
		fmt.Fprintf(w, " **%.0f** |", p.workNs())
	}
	diffs(&last, (*profRun).workNs, "**%+.0f**")
	fmt.Fprintln(w)
	fmt.Fprintf(w, "| delivered kpps in the window / share of core %d idle or polling |", dutCPU)
	for _, p := range ok {
		fmt.Fprintf(w, " %.0f / %.0f%% |", p.DelivPPS()/1e3, 100*p.idleShare())
	}
	fmt.Fprintf(w, " |")
	if base != nil {
		fmt.Fprintf(w, " |")
	}
	fmt.Fprintln(w)
	for _, c := range []struct{ key, label string }{
		{"proc sendto", "sendto (TX kicks) per 1000 frames"},
		{"proc recvfrom", "recvfrom (fill-ring wake-ups, busy polls) per 1000 frames"},
		{"proc poll", "poll per 1000 frames"},
		{"proc context-switches", "context switches of the DUT process per 1000 frames"},
		{"core context-switches", fmt.Sprintf("context switches on core %d per 1000 frames", dutCPU)},
	} {
		fmt.Fprintf(w, "| %s |", c.label)
		for _, p := range ok {
			fmt.Fprintf(w, " %.1f |", p.perThousand(c.key))
		}
		diffs(&last, func(p *profRun) float64 { return p.perThousand(c.key) }, "%+.1f")
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nBPF run time of the XDP programs on the path in the same windows (kernel statistics: mean run time, runs per\n")
	fmt.Fprintf(w, "delivered frame; a frame the DUT's RX ring had no room for still ran the steering program):\n\n")
	fmt.Fprintf(w, "| peer | program | runs | ns per run | runs per delivered frame |\n|---|---|---:|---:|---:|\n")
	for _, p := range ok {
		for _, b := range p.BPF {
			fmt.Fprintf(w, "| %s | %s | %d | %.1f | %.2f |\n", p.Key, b.Name, b.Runs, b.NsPerRun(), safeDiv(float64(b.Runs), float64(p.Deliv)))
		}
	}
	// The largest differences, for the reader who wants the answer.
	type diff struct {
		label string
		d     float64
	}
	var ds []diff
	for _, it := range profItemsUsed(ok) {
		if idleItems[it.key] {
			continue
		}
		ds = append(ds, diff{it.label, last.nsPerPkt(it.key, dutCPU) - x.nsPerPkt(it.key, dutCPU)})
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i].d > ds[j].d })
	var top []string
	for _, d := range ds[:min(3, len(ds))] {
		top = append(top, fmt.Sprintf("%s (%+.0f ns)", d.label, d.d))
	}
	fmt.Fprintf(w, "\nIn this run %s's work per frame on core %d is %+.0f ns (%+.0f%%) against xskfwd's; the largest differences: %s.\n",
		last.Key, dutCPU, last.workNs()-x.workNs(), 100*safeDiv(last.workNs()-x.workNs(), x.workNs()), strings.Join(top, "; "))
}
