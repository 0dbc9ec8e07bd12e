//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// results is everything one run measured.
type results struct {
	mode       string
	start      time.Time
	elapsed    time.Duration
	machine    machineInfo
	background float64 // busy fraction of the machine in the second before the run

	packets []pktResult // established-flow traffic, every peer
	user    []pktResult // the same, one core each (placeRPS)
	nat     []pktResult // the same load on the NAT topology: ipfront NAT and nftables DNAT (nat.go)
	natCPU  []pktResult // the same, at one offered load below both (nat.go)
	natSyn  []pktResult // new flows (SYNs) through both NAT peers (natconn.go)
	natTCP  []rateResult
	natFTP  []rateResult // FTP sessions and transfers through both NAT peers (natftp.go)
	// ftpWorkers and ftpSessions are the sessions/s runs' curl processes
	// and sessions per process.
	ftpWorkers, ftpSessions int
	overhead                []profRun // xskfwd and ipfront profiled under the same load
	// overheadBase* describe the base daemon of the overhead profile (see
	// bench/harness.sh daemon_base): its revision, or why it was not run.
	overheadBase, overheadBaseSubject, overheadBaseSkip string
	overheadRate                                        float64     // offered pps of the profiled windows
	syn                                                 []pktResult // ipfront, SYN-only new flows
	scaling                                             []pktResult
	sweep                                               []pktResult
	tcp                                                 []tcpResult
	latency                                             []latency
	assoc                                               []assocMem
	gobench                                             []goBench
	ab                                                  *abProcess // nil when the step did not run

	failures []failure
}

type failure struct {
	step string
	err  error
}

func (r *results) fail(step string, err error) { r.failures = append(r.failures, failure{step, err}) }

type machineInfo struct {
	CPU, Kernel, Go, Memory, Nft, HAProxy string
	Cores                                 int
}

func describeMachine() machineInfo {
	m := machineInfo{Cores: runtime.NumCPU(), Go: runtime.Version(), CPU: "unknown"}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		m.Memory = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
	}
	m.Nft = firstLine("nft", "--version")
	m.HAProxy = firstLine("haproxy", "-v")
	return m
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return "not installed"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// find returns the packet result with the given key.
func find(rs []pktResult, key string) *pktResult {
	for i := range rs {
		if rs[i].Key == key && rs[i].Err == nil && rs[i].Skipped == "" && rs[i].Deliv > 0 {
			return &rs[i]
		}
	}
	return nil
}

func kpps(v float64) string { return fmt.Sprintf("%.0f", v/1e3) }

func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

func ratio(a, b *pktResult) string {
	if a == nil || b == nil || b.DelivPPS() == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a.DelivPPS()/b.DelivPPS())
}

func status(r *pktResult) string {
	switch {
	case r.Skipped != "":
		return "skipped: " + r.Skipped
	case r.Err != nil:
		return "FAILED: " + oneLine(r.Err.Error())
	}
	return ""
}

func oneLine(s string) string {
	s = strings.SplitN(s, "\n", 2)[0]
	if len(s) > 160 {
		s = s[:160] + "..."
	}
	return strings.ReplaceAll(s, "|", "/")
}

// pktTable writes the forwarding table of rs.
func pktTable(w *strings.Builder, rs []pktResult, ceiling, ipf *pktResult) {
	fmt.Fprintf(w, "| peer | workload | sent kpps | delivered kpps | drops | DUT CPU s/Mpkt | DUT core s/Mpkt | machine s/Mpkt | x ceiling | x ipfront |\n")
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i := range rs {
		r := &rs[i]
		if s := status(r); s != "" {
			fmt.Fprintf(w, "| %s | %s | %s | | | | | | | |\n", r.Peer, r.Workload, s)
			continue
		}
		drop := fmt.Sprintf("%d (%.1f%%)", r.Drops(), 100*safeDiv(float64(r.Drops()), float64(r.Sent)))
		fmt.Fprintf(w, "| %s | %s | %s | **%s** | %s | %s | %s | %s | %s | %s |\n", r.Peer, r.Workload,
			kpps(r.SentPPS()), kpps(r.DelivPPS()), drop,
			f2(r.perMpkt(r.Use.DUT)), f2(r.perMpkt(r.Use.Core)), f2(r.perMpkt(r.Use.Machine)),
			ratio(r, ceiling), ratio(r, ipf))
	}
	for i := range rs {
		if rs[i].Note != "" && rs[i].Err == nil {
			fmt.Fprintf(w, "\n- %s: %s", rs[i].Peer, oneLine(rs[i].Note))
		}
	}
	for i := range rs {
		if len(rs[i].RoundPPS) > 1 {
			var each []string
			for _, pps := range rs[i].RoundPPS {
				each = append(each, kpps(pps))
			}
			fmt.Fprintf(w, "\n- %s: delivered kpps per round %s", rs[i].Peer, strings.Join(each, ", "))
		}
	}
	fmt.Fprintln(w)
}

// target is one row of the targets table.
type target struct {
	what, measured, verdict string
}

func verdict(ok, known bool) string {
	switch {
	case !known:
		return "not measured"
	case ok:
		return "met"
	}
	return "**not met**"
}

// deciding is the CPU column the CPU targets are judged on.
func deciding(r *pktResult) float64 { return r.perMpkt(r.Use.DUT) }

func (r *results) targets() (ts []target, capped bool) {
	pk := r.packets
	ceil := find(pk, "ceiling")
	ipf, ipfNB := find(pk, "ipfront-busy"), find(pk, "ipfront-nobusy")
	raw := find(pk, "xskfwd-busy")
	kernel := []struct{ key, name string }{{"linux", "Linux IP forwarding"}, {"dnat", "nftables DNAT"}, {"netdev", "nftables netdev DSR"}}

	// The veth path caps everyone when the do-nothing XDP ceiling does not
	// deliver clearly more (1.25x) than the best kernel peer: then the path,
	// not the forwarding logic, sets the rate, and pps cannot rank peers.
	best := 0.0
	for _, k := range kernel {
		if p := find(pk, k.key); p != nil {
			best = max(best, p.DelivPPS())
		}
	}
	capped = ceil != nil && best > 0 && ceil.DelivPPS() <= 1.25*best

	for _, k := range kernel {
		p := find(pk, k.key)
		m := "n/a"
		if ipf != nil && p != nil {
			m = fmt.Sprintf("%s vs %s kpps delivered (x%s)", kpps(ipf.DelivPPS()), kpps(p.DelivPPS()), ratio(ipf, p))
		}
		ts = append(ts, target{"ipfront (busy_poll=true) delivers more pps than " + k.name, m,
			verdict(ipf != nil && p != nil && ipf.DelivPPS() > p.DelivPPS(), ipf != nil && p != nil)})
	}
	ts = append(ts, r.rawTargets(ipf, raw, "forwarding table: the DUT's kernel threads on its core")...)
	ts = append(ts, r.rawTargets(find(r.user, "ipfront-busy"), find(r.user, "xskfwd-busy"), "one core each")...)
	for _, k := range kernel {
		if k.key == "dnat" {
			continue // not in the one-core-each table; the NAT section compares it one core each (nat.go)
		}
		a, b := find(r.user, "ipfront-busy"), find(r.user, k.key)
		m := "n/a"
		if a != nil && b != nil {
			m = fmt.Sprintf("%s vs %s kpps delivered (x%s), medians of %d interleaved rounds", kpps(a.DelivPPS()), kpps(b.DelivPPS()), ratio(a, b), a.Rounds)
		}
		ts = append(ts, target{fmt.Sprintf("ipfront (busy_poll=true) >= 1.0x %s in delivered pps, one core each (generator on core %d, forwarder on core %d)",
			k.name, genCPU, dutCPU), m, verdict(a != nil && b != nil && a.DelivPPS() >= b.DelivPPS(), a != nil && b != nil)})
	}
	for _, k := range kernel {
		p := find(pk, k.key)
		m := "n/a"
		if ipfNB != nil && p != nil {
			m = fmt.Sprintf("%s vs %s DUT CPU s/Mpkt", f2(deciding(ipfNB)), f2(deciding(p)))
		}
		ts = append(ts, target{"ipfront (busy_poll=false) DUT CPU per Mpkt <= " + k.name + "'s", m,
			verdict(ipfNB != nil && p != nil && deciding(ipfNB) <= deciding(p), ipfNB != nil && p != nil)})
	}
	ts = append(ts, natTargets(r.nat, r.natCPU)...)
	ts = append(ts, natConnTargets(r.natSyn, r.natTCP)...)
	ts = append(ts, natFTPTargets(r.natFTP)...)
	ts = append(ts, r.latencyTargets()...)
	var proc *goBench
	for i := range r.gobench {
		if r.gobench[i].Name == "Process/Established1M" {
			proc = &r.gobench[i]
		}
	}
	{
		m, known, ok := "n/a", proc != nil, false
		if proc != nil {
			a, has := proc.Metrics["allocs/op"]
			known = has
			ok = a == 0
			m = fmt.Sprintf("%.0f allocs per 64-packet batch (BenchmarkProcess/Established1M); asserted by fastpath TestZeroAllocs", a)
		}
		ts = append(ts, target{"0 allocations per packet on the fast path", m, verdict(ok, known)})
	}
	{
		// Judged on the shard's own memory (Bytes); the RSS growth is shown
		// as the check that Bytes is what the process really pays, and also
		// holds whatever else the harness allocated meanwhile.
		m, worst := "", 0.0
		for _, a := range r.assoc {
			if a.Err != nil {
				continue
			}
			worst = max(worst, a.PerEntry)
			m += fmt.Sprintf("%s associations: %.1f B (Shard.Bytes), RSS growth %.1f B; ", human(float64(a.Entries)), a.PerEntry, a.RSSPerEntry)
		}
		ts = append(ts, target{"<= 64 bytes per association", strings.TrimSuffix(m, "; "), verdict(worst <= 64, m != "")})
	}
	{
		m, known, ok := "n/a", false, false
		if proc != nil {
			if v, has := proc.Metrics["ns/pkt"]; has {
				known, ok = true, v < 50
				m = fmt.Sprintf("%.1f ns/packet (BenchmarkProcess/Established1M: parse + association lookup + rewrite, 1M flows)", v)
			}
		}
		ts = append(ts, target{"per-packet benchmark under 50 ns on this machine", m, verdict(ok, known)})
	}
	ts = append(ts, r.abTargets()...)
	return ts, capped
}

// rawTargets is issue 14's row against the raw AF_XDP forwarder in one
// table (where says which).
func (r *results) rawTargets(ipf, raw *pktResult, where string) []target {
	m := "n/a"
	if ipf != nil && raw != nil {
		m = fmt.Sprintf("%s vs %s kpps delivered: x%s", kpps(ipf.DelivPPS()), kpps(raw.DelivPPS()), ratio(ipf, raw))
		if ipf.Rounds > 1 {
			m += fmt.Sprintf(", medians of %d interleaved rounds", ipf.Rounds)
		}
	}
	ok := ipf != nil && raw != nil && ipf.DelivPPS() >= 0.95*raw.DelivPPS()
	return []target{{fmt.Sprintf("ipfront >= 0.95x xskfwd in delivered pps, same ring and batch settings, busy_poll=true (%s)", where),
		m, verdict(ok, ipf != nil && raw != nil)}}
}

// latencyTargets are issue 14's latency rows: ipfront's added round-trip
// time at p50 and p99, busy polling and not, against Linux forwarding's, in
// each placement the latency step measured.
func (r *results) latencyTargets() []target {
	var ts []target
	for _, pl := range []place{placeDUTCore, placeRPS} {
		by := map[string]*latency{}
		measured := false
		for i := range r.latency {
			if l := &r.latency[i]; l.Place == pl {
				measured = true
				if l.Err == nil && l.Skipped == "" && l.P50 > 0 {
					by[l.Key] = l
				}
			}
		}
		if !measured {
			continue
		}
		linux := by["linux"]
		for _, k := range []struct{ key, name string }{{"ipfront-busy", "busy_poll=true"}, {"ipfront-nobusy", "busy_poll=false"}} {
			ipf := by[k.key]
			for _, q := range []struct {
				name  string
				added func(*latency) time.Duration
			}{{"p50", (*latency).Added50}, {"p99", (*latency).Added99}} {
				t := target{what: fmt.Sprintf("ipfront (%s) added UDP round-trip latency %s <= Linux forwarding's (%s)", k.name, q.name, placeName(pl)),
					measured: "n/a", verdict: verdict(false, false)}
				if ipf != nil && linux != nil {
					a, b := q.added(ipf), q.added(linux)
					t.measured = fmt.Sprintf("%.1f vs %.1f µs added to the direct path's %s", us(a), us(b), q.name)
					t.verdict = verdict(a <= b, true)
				}
				ts = append(ts, t)
			}
		}
	}
	return ts
}

// placeName is how the report names a placement.
func placeName(p place) string {
	switch p {
	case placeDUTCore:
		return "kernel threads on the DUT core"
	case placeRPS:
		return "one core each"
	case placeRPS2:
		return "RPS over both cores"
	}
	return "kernel threads unpinned"
}

// abTargets are issue 7's per-packet rows, judged on the interleaved A/B
// against the base revision.
func (r *results) abTargets() []target {
	faster := target{what: fmt.Sprintf("BenchmarkProcess/%s at least %.0f %% below the base (median of interleaved rounds)",
		abTargetCase, -100*abTargetChange), measured: "n/a", verdict: verdict(false, false)}
	allocs := target{what: "0 allocs in BenchmarkProcess, base and current (every case and round of the A/B)",
		measured: "n/a", verdict: verdict(false, false)}
	ab := r.ab
	switch {
	case ab == nil:
		faster.measured, allocs.measured = "the A/B step did not run", "the A/B step did not run"
		return []target{faster, allocs}
	case ab.Skipped != "":
		faster.measured = "A/B skipped: " + oneLine(ab.Skipped)
		allocs.measured = faster.measured
		return []target{faster, allocs}
	case ab.Err != nil:
		faster.measured = "A/B FAILED: " + oneLine(ab.Err.Error())
		allocs.measured = faster.measured
		return []target{faster, allocs}
	}
	cs := ab.compare()
	faster.measured = fmt.Sprintf("this run's A/B has no %s case (%s)", abTargetCase, strings.Join(ab.Cases, ", "))
	for _, c := range cs {
		if c.Name != abTargetCase {
			continue
		}
		faster.measured = fmt.Sprintf("%.1f vs %.1f ns/packet (%+.1f%%), medians of %d interleaved rounds, base %s",
			c.Current.Median, c.Base.Median, 100*c.Change, ab.Rounds, shortRev(ab.Base))
		faster.verdict = verdict(c.Change <= abTargetChange, true)
	}
	if len(cs) > 0 {
		var base, cur float64
		for _, c := range cs {
			base, cur = max(base, c.Base.MaxAllocs), max(cur, c.Current.MaxAllocs)
		}
		allocs.measured = fmt.Sprintf("most allocs per 64-packet batch: current %.0f, base %.0f (%d cases x %s)",
			cur, base, len(cs), roundsText(ab.Rounds))
		allocs.verdict = verdict(cur == 0 && base == 0, true)
	}
	return []target{faster, allocs}
}

func writeReport(path string, r *results) error {
	var w strings.Builder
	m := r.machine
	title := "# Benchmarks"
	if r.mode == "smoke" {
		title = "# Benchmark smoke run (tiny; figures mean nothing)"
	}
	fmt.Fprintf(&w, "%s\n\n", title)
	fmt.Fprintf(&w, "<!-- Written by bench/harness (`make bench`); do not edit by hand: the next run overwrites it. -->\n\n")
	fmt.Fprintf(&w, "Generated by `bench/harness.sh %s` on %s in %.0f s. Every figure below is from this one run; compare\n", r.mode,
		r.start.UTC().Format("2006-01-02 15:04 UTC"), r.elapsed.Seconds())
	fmt.Fprintf(&w, "figures only within it. Ratios hold in the lab; absolute figures only on bare metal (see the last section).\n\n")

	ceil := find(r.packets, "ceiling")
	zc := "copy mode"
	for _, p := range r.packets {
		if p.ZeroCopy {
			zc = "zero-copy"
		}
	}
	xdp := "native (driver mode) on every XDP program"
	if ipf := find(r.packets, "ipfront-busy"); ipf != nil && ipf.Extra["xdp_native"] != 1 {
		xdp = "generic (ipfront's steering program fell back to skb mode)"
	}
	fmt.Fprintf(&w, "## Machine\n\n| | |\n|---|---|\n")
	fmt.Fprintf(&w, "| CPU | %s, %d cores (vCPUs) |\n| memory | %s |\n| kernel | %s |\n", m.CPU, m.Cores, m.Memory, m.Kernel)
	fmt.Fprintf(&w, "| NIC driver | veth (network namespaces on one bridge; no hardware NIC) |\n| XDP mode | %s |\n", xdp)
	fmt.Fprintf(&w, "| AF_XDP | %s (veth has no zero-copy) |\n| Go | %s |\n| nftables | %s |\n| HAProxy | %s |\n", zc, m.Go, m.Nft, m.HAProxy)
	fmt.Fprintf(&w, "| date | %s |\n", r.start.UTC().Format(time.RFC3339))
	bg := fmt.Sprintf("%.0f%% of the machine busy in the second before the run", 100*r.background)
	if r.background > 0.05 {
		bg += " — **other work was running: every figure is skewed by it**"
	}
	fmt.Fprintf(&w, "| background load | %s |\n\n", bg)

	if len(r.failures) > 0 {
		fmt.Fprintf(&w, "## Steps that failed\n\n")
		for _, f := range r.failures {
			fmt.Fprintf(&w, "- %s: %s\n", f.step, oneLine(f.err.Error()))
		}
		fmt.Fprintln(&w)
	}

	ts, capped := r.targets()
	fmt.Fprintf(&w, "## Targets (issues 3, 7, 8 and 14), judged on this run\n\n")
	if capped {
		fmt.Fprintf(&w, "The veth path caps everyone in this run (the do-nothing XDP ceiling delivers at most 1.25x the best kernel peer), so\n")
		fmt.Fprintf(&w, "delivered pps cannot separate the peers and the CPU rows decide.\n\n")
	} else {
		fmt.Fprintf(&w, "The ceiling delivers more than 1.25x the best kernel peer, so delivered pps separates the peers; the CPU rows are\n")
		fmt.Fprintf(&w, "reported as well.\n\n")
	}
	fmt.Fprintf(&w, "| target | measured | verdict |\n|---|---|---|\n")
	for _, t := range ts {
		fmt.Fprintf(&w, "| %s | %s | %s |\n", t.what, t.measured, t.verdict)
	}
	fmt.Fprintf(&w, "\nNot measurable here (documented plan, see \"Bare metal\"): 10 Mpps per core and 14.88 Mpps with two cores.\n\n")

	fmt.Fprintf(&w, "## Forwarding: every peer on the same topology and generator\n\n")
	fmt.Fprintf(&w, "Established-flow traffic: 64-byte TCP ACK frames of %s distinct flows (client address x port) to one VIP, %s\n",
		flowsOf(r.packets), durOf(r.packets))
	fmt.Fprintf(&w, "measured after the stateful peers (ipfront, nftables DNAT) have seen every flow (warm-up passes).%s \"x ipfront\" is\n",
		roundsNote(r.packets))
	fmt.Fprintf(&w, "relative to ipfront with busy_poll=true. Columns are explained under \"Method\"; **DUT CPU s/Mpkt** is the one that decides.\n\n")
	pktTable(&w, r.packets, ceil, find(r.packets, "ipfront-busy"))

	fmt.Fprintf(&w, "\n### New flows: SYN-only traffic into an empty association table\n\n")
	fmt.Fprintf(&w, "One SYN per flow, every flow new (a fresh daemon per run). The generator offers more than a worker takes: once its RX\n")
	fmt.Fprintf(&w, "ring is three quarters full the steering program sheds SYNs before it (\"openings shed\"), which costs the kernel no\n")
	fmt.Fprintf(&w, "copy into the ring; what still arrives at a full ring is kernel_rx_dropped.\n\n")
	fmt.Fprintf(&w, "| peer | SYNs sent | received by ipfront | delivered kpps | new associations | new associations/s | DUT CPU s/Mpkt | drops in ipfront |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	for i := range r.syn {
		s := &r.syn[i]
		if st := status(s); st != "" {
			fmt.Fprintf(&w, "| %s | %s | | | | | | |\n", s.Peer, st)
			continue
		}
		na := s.Extra["new_associations"]
		fmt.Fprintf(&w, "| %s | %d | %.0f | %s | %.0f | **%.0f** | %s | %s |\n", s.Peer, s.Sent, s.Extra["rx"], kpps(s.DelivPPS()), na,
			safeDiv(na, s.Elapsed), f2(deciding(s)), strings.TrimPrefix(s.Note, "ipfront drops in the window: "))
	}

	userSection(&w, r)
	natSection(&w, r)
	overheadSection(&w, r)

	fmt.Fprintf(&w, "\n## Real TCP: HAProxy against ipfront\n\n")
	fmt.Fprintf(&w, "The same 16 servers run `iplab serve` (greeting + echo); the client runs `iplab tcp` through the VIP. Connections/s:\n")
	fmt.Fprintf(&w, "16 at a time, each greeting + 64-byte echo + close. Throughput: 4 connections echoing large payloads (payload Mbit/s\n")
	fmt.Fprintf(&w, "one way; HAProxy carries both directions, with DSR the servers' replies bypass ipfront). HAProxy runs one thread\n")
	fmt.Fprintf(&w, "pinned to the DUT core; ipfront one worker there with busy_poll=false.\n\n")
	fmt.Fprintf(&w, "| peer | workload | connections | failed | conn/s | payload Mbit/s | DUT CPU s | DUT CPU ms per 1000 conns or per 100 MB |\n|---|---|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range r.tcp {
		switch {
		case t.Skipped != "":
			fmt.Fprintf(&w, "| %s | %s | skipped: %s | | | | | |\n", t.Peer, t.Workload, t.Skipped)
		case t.Err != nil && t.Conns == 0:
			fmt.Fprintf(&w, "| %s | %s | FAILED: %s | | | | | |\n", t.Peer, t.Workload, oneLine(t.Err.Error()))
		default:
			per := safeDiv(t.Use.DUT*1e3, float64(t.Conns)/1e3)
			if t.Workload == "throughput" {
				per = safeDiv(t.Use.DUT*1e3, float64(t.Bytes)/1e8)
			}
			fmt.Fprintf(&w, "| %s | %s | %d | %d | %.0f | %.0f | %.2f | %.1f |\n", t.Peer, t.Workload, t.Conns, t.Failed, t.CPS(), t.Mbps(), t.Use.DUT, per)
		}
	}

	latencySection(&w, r)
	fmt.Fprintf(&w, "\n## Memory per association\n\n")
	fmt.Fprintf(&w, "An association shard (fastpath/assoc) allocated for N associations and filled with N live ones, in the harness\n")
	fmt.Fprintf(&w, "process. The shard keeps two 32-byte slots per association (load factor at most 1/2) and never grows.\n\n")
	fmt.Fprintf(&w, "| associations | Shard.Bytes() | bytes/association (Bytes) | bytes/association (RSS growth) | bytes/association (Go heap growth) | ns per insert |\n|---:|---:|---:|---:|---:|---:|\n")
	for _, a := range r.assoc {
		if a.Err != nil {
			fmt.Fprintf(&w, "| %s | FAILED: %s | | | | |\n", human(float64(a.Entries)), oneLine(a.Err.Error()))
			continue
		}
		fmt.Fprintf(&w, "| %s | %d MiB | %.1f | %.1f | %.1f | %.0f |\n", human(float64(a.Entries)), a.ShardBytes>>20, a.PerEntry, a.RSSPerEntry, a.HeapPerEnt, a.FillNs)
	}

	fmt.Fprintf(&w, "\n## Scaling: one and two worker queues against the kernel on two cores\n\n")
	fmt.Fprintf(&w, "Two rate-limited generators (one per queue of the client's link, one on each core; together 1.5x the best figure of\n")
	fmt.Fprintf(&w, "the one-core-each table, the same offered load in every run). ipfront with one queue (one worker, on core %d) and\n", dutCPU)
	fmt.Fprintf(&w, "with two (two workers, one per core; the bridge spreads flows over the DUT's queues by hash, as RSS would), xskfwd\n")
	fmt.Fprintf(&w, "with two, and the kernel peers with two queues and RPS over both cores. NAPI runs in softirq context as in the\n")
	fmt.Fprintf(&w, "one-core-each table. With two vCPUs the generators and the DUT share both cores, so this shows what a second\n")
	fmt.Fprintf(&w, "core buys each peer on this machine, not how it scales on dedicated cores; the DUT CPU column is the DUT's\n")
	fmt.Fprintf(&w, "process only here (no NAPI threads), so compare the machine column.\n\n")
	pktTable(&w, r.scaling, nil, nil)

	fmt.Fprintf(&w, "\n## Tuning sweep: batch_size and ring_size\n\n")
	fmt.Fprintf(&w, "ipfront, busy_poll=true, established-flow traffic as above, %s per run. See configs/tuning.md.\n\n", durOf(r.sweep))
	fmt.Fprintf(&w, "| batch_size | ring_size | delivered kpps | drops | DUT CPU s/Mpkt | ipfront drops |\n|---:|---:|---:|---:|---:|---|\n")
	for _, s := range sweepRows(r) {
		if st := status(s); st != "" {
			fmt.Fprintf(&w, "| %d | %d | %s | | | |\n", s.Cfg.batch, s.Cfg.ring, st)
			continue
		}
		fmt.Fprintf(&w, "| %d | %d | %s | %.1f%% | %s | %s |\n", s.Cfg.batch, s.Cfg.ring, kpps(s.DelivPPS()),
			100*safeDiv(float64(s.Drops()), float64(s.Sent)), f2(deciding(s)), strings.TrimPrefix(s.Note, "ipfront drops in the window: "))
	}

	fmt.Fprintf(&w, "\n## Go microbenchmarks (same run, pinned to core %d)\n\n", dutCPU)
	fmt.Fprintf(&w, "| package | benchmark | ns/op | ns/packet | allocs/op | B/op |\n|---|---|---:|---:|---:|---:|\n")
	for _, b := range r.gobench {
		nspkt := ""
		if v, ok := b.Metrics["ns/pkt"]; ok {
			nspkt = fmt.Sprintf("%.1f", v)
		}
		fmt.Fprintf(&w, "| %s | %s | %.1f | %s | %.0f | %.0f |\n", b.Pkg, b.Name, b.Metrics["ns/op"], nspkt, b.Metrics["allocs/op"], b.Metrics["B/op"])
	}
	fmt.Fprintf(&w, "\nBenchmarkProcess runs 64-packet batches through Engine.Process (+ Sweep and Publish); ns/op is per batch, ns/packet\n")
	fmt.Fprintf(&w, "per frame. Established1M: 1M established flows, association slots from DRAM; Established64K: they fit the cache;\n")
	fmt.Fprintf(&w, "NewFlows: every packet creates an association; OneFlow: the floor.\n\n")
	w.WriteString(adapterText)
	abSection(&w, r.ab)

	w.WriteString(methodText(r))
	w.WriteString(reproduceText)
	w.WriteString(bareMetalText)
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(w.String()), 0o644)
}

// abSection writes the interleaved A/B of BenchmarkProcess against the base
// revision: how it ran, the per-case comparison and every round's figures.
func abSection(w *strings.Builder, ab *abProcess) {
	fmt.Fprintf(w, "## Per-packet cost against the code before record v2 (interleaved A/B)\n\n")
	switch {
	case ab == nil:
		fmt.Fprintf(w, "Not run in this run.\n\n")
		return
	case ab.Skipped != "":
		fmt.Fprintf(w, "Skipped: %s.\n\n", oneLine(ab.Skipped))
		return
	}
	cur := "the work tree at " + ab.Current
	if ab.CurrentModified {
		cur += ", with uncommitted changes to fastpath/, go.mod or go.sum"
	}
	rounds := roundsText(ab.Rounds)
	fmt.Fprintf(w, "BenchmarkProcess as above, from two test binaries of ./fastpath, each driving its engine as that revision's worker\n")
	fmt.Fprintf(w, "does (counter publishing included):\n\n")
	fmt.Fprintf(w, "- base: %s, built in a temporary git worktree: \"%s\"", shortRev(ab.Base), ab.BaseSubject)
	if !strings.HasPrefix(ab.Base, abDefaultBase) {
		fmt.Fprintf(w, " (chosen with AB_BASE; the default, %s, is the code before record v2)", abDefaultBase)
	}
	fmt.Fprintf(w, "\n- current: %s\n\n", cur)
	fmt.Fprintf(w, "%s; each round runs both binaries one after the other, the base first in odd rounds and the current code\n", rounds)
	fmt.Fprintf(w, "first in even ones, so that whatever else the machine does falls on both alike. Each run measures every case once\n")
	fmt.Fprintf(w, "with -test.benchtime %s, pinned to core %d (taskset) like the Go microbenchmarks. Per case: the median and the\n",
		ab.Benchtime, dutCPU)
	fmt.Fprintf(w, "minimum ns/packet of each side over the rounds, and the change of the current median against the base's.\n")
	fmt.Fprintf(w, "`AB_BASE=<rev> make bench` compares with another revision; `bench/ab-process.sh` is the same comparison as a\n")
	fmt.Fprintf(w, "quick developer tool.\n\n")
	if ab.Err != nil {
		fmt.Fprintf(w, "FAILED: %s\n\n", oneLine(ab.Err.Error()))
	}
	cs := ab.compare()
	if len(cs) == 0 {
		return
	}
	fmt.Fprintf(w, "| case | base median ns/packet | current median ns/packet | change of medians | base min | current min | allocs/op base / current |\n")
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|\n")
	for _, c := range cs {
		fmt.Fprintf(w, "| %s | %.1f | %.1f | **%+.1f%%** | %.1f | %.1f | %.0f / %.0f |\n", c.Name, c.Base.Median, c.Current.Median,
			100*c.Change, c.Base.Min, c.Current.Min, c.Base.MaxAllocs, c.Current.MaxAllocs)
	}
	fmt.Fprintf(w, "\nns/packet per round, base / current, in round order:\n\n")
	for _, c := range cs {
		var each []string
		for i := range min(len(c.Base.PerRound), len(c.Current.PerRound)) {
			each = append(each, fmt.Sprintf("%.1f / %.1f", c.Base.PerRound[i], c.Current.PerRound[i]))
		}
		fmt.Fprintf(w, "- %s: %s\n", c.Name, strings.Join(each, ", "))
	}
	fmt.Fprintln(w)
}

// roundsText is "1 round" or "N rounds".
func roundsText(n int) string {
	if n == 1 {
		return "1 round"
	}
	return fmt.Sprintf("%d rounds", n)
}

// adapterText explains the ReceiveDrain rows: why fastpath/xsk sets up and
// drives the AF_XDP rings itself instead of through asavie/xdp.
const adapterText = `ReceiveDrain/ours and ReceiveDrain/asavie drain the same burst of frames from an AF_XDP socket on a veth,
per frame: ours is fastpath/xsk, the other github.com/asavie/xdp v0.3.3 (Fill(GetDescs(NumFreeFillSlots())) +
Receive). Both allocate nothing per call in this loop, so allocation is not what decides. What does: asavie reads
and writes the rings' producer and consumer indices with plain loads and stores, which the Go memory model does not
order against the descriptor reads and writes the kernel pairs them with; its Receive and GetDescs scan a per-socket
free-frame table on every call; and one free list serves RX and TX, so a forwarder cannot account for its frames.
fastpath/xsk therefore maps the rings itself (golang.org/x/sys/unix), publishes and reads indices with sync/atomic
through cached producer/consumer copies, and owns the frame accounting (a test checks every frame is in exactly one
place after each run). asavie/xdp stays in the adapter's tests as an independent reference implementation
(conformance in both directions) and as the benchmark peer above; no other package may import it
(internal/archtest).

`

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "."
}

// roundsNote says how many interleaved rounds each forwarding row is the
// median of, when more than one.
func roundsNote(rs []pktResult) string {
	for _, r := range rs {
		if r.Rounds > 1 {
			return fmt.Sprintf(" Every peer ran %d times, in turn with the others; each row is its median round by delivered pps.", r.Rounds)
		}
	}
	return ""
}

func flowsOf(rs []pktResult) string {
	for _, r := range rs {
		if r.Flows > 0 {
			return human(float64(r.Flows))
		}
	}
	return "?"
}

func durOf(rs []pktResult) string {
	for _, r := range rs {
		if r.Dur > 0 {
			return r.Dur.String()
		}
	}
	return "?"
}

// sweepRows returns the sweep runs and the main run with the default
// batch and ring sizes, ordered by batch then ring.
func sweepRows(r *results) []*pktResult {
	var rows []*pktResult
	for i := range r.sweep {
		rows = append(rows, &r.sweep[i])
	}
	for i := range r.packets {
		if r.packets[i].Key == "ipfront-busy" {
			rows = append(rows, &r.packets[i])
		}
	}
	for i := 1; i < len(rows); i++ {
		for j := i; j > 0 && (rows[j].Cfg.batch < rows[j-1].Cfg.batch ||
			rows[j].Cfg.batch == rows[j-1].Cfg.batch && rows[j].Cfg.ring < rows[j-1].Cfg.ring); j-- {
			rows[j], rows[j-1] = rows[j-1], rows[j]
		}
	}
	return rows
}

func methodText(r *results) string {
	return fmt.Sprintf(`## Method

`+"```"+`
  <p>-c   generator (bench/pktgen, AF_XDP, copy mode)          veth-c  --+
                                                                      |  bridge br0 in <p>-sw
  <p>-lb  device under test: one peer at a time                veth-lb --+  (static FDB, no learning,
                                                                      |   no unknown-unicast flooding)
  <p>-s1 .. <p>-s16  servers; while packets are counted, a        veth-sN --+
          CountDrop XDP program on each counts and drops
`+"```"+`

- **One topology, one generator, one run.** Every peer forwards the generator's frames (destination MAC: the DUT's,
  destination IP: the VIP 192.0.2.10) back out of the DUT's veth onto the bridge towards the 16 sinks, rewriting
  the destination MAC (a server's) and the source MAC (its own): L2 DSR. Linux IP forwarding routes to server 1;
  nftables DNAT rewrites the destination address with conntrack and lets the kernel route. The servers hold the VIP
  on lo for the real-TCP steps. Static neighbour entries everywhere: the sinks answer nothing, not even ARP.
- **Delivered pps** = frames the sinks counted / the generator's elapsed time (first frame until every frame
  completed); **drops** = sent - delivered, wherever they happened (DUT, its rings, or the veth queues).
- **Placement.** The generator is pinned to core %[1]d; the bridge's ingress work runs in the generator's own
  context (softirq) there. The DUT owns core %[2]d: its receive NAPI threads (threaded NAPI on veth-lb) and its
  process (ipfront's worker via `+"`cpus`"+`, xskfwd, HAProxy via taskset) are pinned there, and so is the bridge's
  egress towards the sinks (threaded NAPI on p-lb), a cost that is the same for every peer per delivered frame.
- **CPU columns**, all as CPU seconds per million delivered frames:
  - *DUT CPU*: utime+stime of the DUT's process (from /proc/PID/stat; none for in-kernel peers) plus that of the
    DUT interface's NAPI kernel threads, where all of an in-kernel peer's work runs (XDP, GRO, routing, nftables,
    conntrack) and where an AF_XDP peer's copy into its UMEM runs. **This column decides** the CPU targets: it is
    the only one that contains the DUT's work and nothing else. Threaded NAPI is what makes it measurable: by
    default veth runs a receiver's whole chain in the *sender's* context, so in-kernel peers would be billed to
    the generator.
  - *DUT core*: all busy time of core %[2]d (/proc/stat): the DUT plus the bridge egress and sinks.
  - *machine*: all busy time of both cores (/proc/stat): generator, bridge, DUT and sinks. Comparable across peers
    (only the DUT differs) but dominated by the generator, which spins whatever the DUT does.
  A busy-polling DUT (busy_poll=true, xskfwd's default) spins at 100%% of its core by design, so its DUT CPU per
  Mpkt is simply 1/pps; compare CPU with busy_poll=false.
- **One core each** (issue 14's placement, its own table): NAPI is not threaded, so the DUT's receive NAPI runs in
  softirq context on the core whose transmit raised it (the bridge's, on the generator's core %[1]d); the kernel peers'
  packets go to core %[2]d by RPS (`+"`rps_cpus`"+` of the DUT's receive queue), ipfront's and xskfwd's worker is pinned
  there by its configuration, and the egress (the bridge port's NAPI, raised by the DUT's transmit) runs there too.
  This is what a user gets without tuning NAPI; on veth it puts an AF_XDP peer's XDP program and copy into its UMEM
  on the generator's core, where a kernel peer has only its GRO and the RPS hand-off.
- **Overhead accounting.** xskfwd, ipfront, and (full runs) ipfront at the base revision, each profiled under the
  same offered load below both forwarders' capacity; see "Overhead over xskfwd" for the method.
- **Warm-up.** ipfront and nftables DNAT see every flow %[3]s before the window (the table then holds the
  established flows); the stateless peers need none. Every ipfront run is a fresh daemon.
- Noise: two vCPUs shared with whatever else runs on the host; figures move by 10-20%% between runs. Background load
  before the run is in the machine table.

`, genCPU, dutCPU, warmText(r))
}

func warmText(r *results) string {
	for _, p := range r.packets {
		if p.Key == "ipfront-busy" && p.Warm > 0 {
			if p.Warm == 1 {
				return "once"
			}
			return fmt.Sprintf("%d times", p.Warm)
		}
	}
	return "once"
}

const reproduceText = "## Reproduce\n\n```sh\n" +
	"make bench        # this file and configs/tuning.md, under 10 minutes on 2 cores\n" +
	"make bench-smoke  # every step, tiny; bench/out/smoke.md; part of make test\n" +
	"make profile      # ipfront under pktgen load: bench/out/cpu.pprof, perf.txt, flame.svg\n" +
	"bench/harness.sh overhead [-place rps] [-rounds N] [-alt BIN]  # ipfront against xskfwd only: rounds + accounting\n" +
	"bench/harness.sh full -only nat,nat-conn,nat-ftp  # some sections only (see -help): bench/out/only.md\n" +
	"```\n\n" +
	"Needs root, kernel 5.15+ with BTF, and Debian's nftables and haproxy packages (`.ci/run` installs them; a missing one\n" +
	"turns its rows into \"skipped\"). Logs of every process and the configurations used are under bench/out/. The harness\n" +
	"temporarily raises the kernel-wide nf_conntrack_max and nf_conntrack_buckets (a namespace may not) so that nftables\n" +
	"DNAT can track every flow, and restores them.\n\n"

const bareMetalText = "## Bare metal: the same measurements with a real NIC\n\n" +
	"veth measures software overhead, not a NIC: frames are copied into the AF_XDP UMEM (no zero-copy), XDP_TX on veth\n" +
	"goes through the peer's NAPI, and everything shares two vCPUs. On bare metal:\n\n" +
	"1. Three machines (or one with NIC ports cabled back to back): a generator, the DUT (ipfront) and a sink, all on one\n" +
	"   switch or VLAN. The sink counts with an XDP drop program (or the switch port counters). Give the DUT a NIC with\n" +
	"   AF_XDP zero-copy (ice, i40e, mlx5, ixgbe) and set `zero_copy = \"on\"` and `xdp_mode = \"native\"` so that a\n" +
	"   silent fallback to copy or generic mode fails loudly.\n" +
	"2. Generate with `bench/kernel-pktgen.sh` (the kernel's pktgen module: line rate from a few cores, no AF_XDP on the\n" +
	"   generator; it says so and stops where the module is missing, as on the lab machines) or with `bin/pktgen`\n" +
	"   (zero-copy on a capable NIC), e.g. `pktgen --dev eth1 --dst-mac DUT_MAC --src 10.64.0.0 --src-count 4096\n" +
	"   --sport-count 256 --proto tcp-ack --duration 30s` per queue, one process per core.\n" +
	"3. On the DUT: one queue per core (`ethtool -L eth1 combined N`), IRQs of queue q on core q, `cpus` in\n" +
	"   `[dataplane]` listing the same cores, `busy_poll = true` for the lowest latency, and the same peers as here\n" +
	"   (kernel forwarding, nftables DNAT, nftables netdev `fwd`, an XDP MAC-rewrite program, bench/xskfwd) one at a time\n" +
	"   on the same NIC. Measure delivered pps at the sink and CPU with `mpstat -P ALL` or /proc/stat on the DUT's\n" +
	"   cores (no generator shares them there, so core time is DUT time).\n" +
	"4. Targets to check there: 10 Mpps per core, 14.88 Mpps (10GbE line rate, 64-byte frames) with two cores, and\n" +
	"   ipfront >= 0.95x bench/xskfwd. Use `make profile` there too: the flame graph shows what a packet costs once the\n" +
	"   copy is gone, and `bench/harness.sh overhead` (or the full run's \"Overhead over xskfwd\") accounts for the\n" +
	"   difference to xskfwd item by item.\n"

// latencySection writes the UDP ping-pong table: every path of the latency
// step, with the time each adds to the direct path.
func latencySection(w *strings.Builder, r *results) {
	fmt.Fprintf(w, "\n## Added latency: UDP ping-pong\n\n")
	fmt.Fprintf(w, "One 64-byte datagram at a time from the client to port 7000 of the VIP, through the DUT, echoed by a server\n")
	fmt.Fprintf(w, "straight back to the client (DSR), alternating with one to server 1's own address on the same bridge (direct),\n")
	fmt.Fprintf(w, "%d of each after 100 warm-up pairs. Both sets are taken in the same moments, so load elsewhere on the machine\n", pingsOf(r))
	fmt.Fprintf(w, "falls on both alike; \"added\" is the percentile through the DUT minus the direct one of the same run. Every\n")
	fmt.Fprintf(w, "peer, one at a time, in both placements of the tables above: the DUT's kernel threads on its core (threaded\n")
	fmt.Fprintf(w, "NAPI, SCHED_FIFO: a busy-polling worker shares its core with the threads that feed and drain it), and one core\n")
	fmt.Fprintf(w, "each (NAPI in softirq context where it is raised, RPS to core %d for the kernel peers, the worker alone on core %d).\n\n", dutCPU, dutCPU)
	fmt.Fprintf(w, "| path | placement | lost | p50 µs | p99 µs | direct p50 µs | direct p99 µs | added p50 µs | added p99 µs |\n")
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range r.latency {
		pl := placeName(l.Place)
		switch {
		case l.Skipped != "":
			fmt.Fprintf(w, "| %s | %s | skipped: %s | | | | | | |\n", l.Path, pl, l.Skipped)
			continue
		case l.Err != nil && l.P50 == 0:
			fmt.Fprintf(w, "| %s | %s | FAILED: %s | | | | | | |\n", l.Path, pl, oneLine(l.Err.Error()))
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %d | %.1f | %.1f | %.1f | %.1f | **%.1f** | **%.1f** |\n", l.Path, pl, l.Lost, us(l.P50), us(l.P99),
			us(l.DirectP50), us(l.DirectP99), us(l.Added50()), us(l.Added99()))
	}
}

// pingsOf is the datagrams per path of the latency step.
func pingsOf(r *results) int {
	for _, l := range r.latency {
		if l.N > 0 {
			return l.N
		}
	}
	return 0
}

// userSection writes the one-core-each table (issue 14's placement).
func userSection(w *strings.Builder, r *results) {
	fmt.Fprintf(w, "\n## One core each: the generator on core %d, the forwarder on core %d\n\n", genCPU, dutCPU)
	fmt.Fprintf(w, "The same traffic as above (%s), placed as a user gives a forwarder a core of its own: the generator pinned to\n", durOf(r.user))
	fmt.Fprintf(w, "core %d, ipfront's and xskfwd's worker pinned to core %d by their configuration (`cpus = [%d]`), the kernel peers'\n", genCPU, dutCPU, dutCPU)
	fmt.Fprintf(w, "packets handed to core %d by RPS (`rps_cpus` of the DUT's receive queue). NAPI is not threaded here: the DUT's receive\n", dutCPU)
	fmt.Fprintf(w, "NAPI (and an AF_XDP peer's XDP program and copy into its UMEM, or a kernel peer's GRO and RPS hand-off) runs in\n")
	fmt.Fprintf(w, "softirq context on core %d, where the bridge raised it; everything after it on core %d, including the egress to\n", genCPU, dutCPU)
	fmt.Fprintf(w, "the sinks. Same ring and batch settings for ipfront and xskfwd.%s CPU is shown per core, as\n", roundsNote(r.user))
	fmt.Fprintf(w, "busy CPU seconds of that core per million delivered frames (both cores also run the generator or the sinks).\n\n")
	linux := find(r.user, "linux")
	raw := find(r.user, "xskfwd-busy")
	fmt.Fprintf(w, "| peer | sent kpps | delivered kpps | drops | core %d s/Mpkt | core %d s/Mpkt | x Linux forwarding | x xskfwd |\n", dutCPU, genCPU)
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for i := range r.user {
		u := &r.user[i]
		if st := status(u); st != "" {
			fmt.Fprintf(w, "| %s | %s | | | | | | |\n", u.Peer, st)
			continue
		}
		drop := fmt.Sprintf("%d (%.1f%%)", u.Drops(), 100*safeDiv(float64(u.Drops()), float64(u.Sent)))
		fmt.Fprintf(w, "| %s | %s | **%s** | %s | %s | %s | %s | %s |\n", u.Peer, kpps(u.SentPPS()), kpps(u.DelivPPS()), drop,
			f2(u.perMpkt(u.Use.Core)), f2(u.perMpkt(u.Use.Machine-u.Use.Core)), ratio(u, linux), ratio(u, raw))
	}
	for i := range r.user {
		if r.user[i].Note != "" && r.user[i].Err == nil {
			fmt.Fprintf(w, "\n- %s: %s", r.user[i].Peer, oneLine(r.user[i].Note))
		}
	}
	for i := range r.user {
		if len(r.user[i].RoundPPS) > 1 {
			var each []string
			for _, pps := range r.user[i].RoundPPS {
				each = append(each, kpps(pps))
			}
			fmt.Fprintf(w, "\n- %s: delivered kpps per round %s", r.user[i].Peer, strings.Join(each, ", "))
		}
	}
	fmt.Fprintln(w)
}
