//go:build linux

// Command harness is ipfront's benchmark harness (issue 3). On a
// network-namespace topology (generator -> bridge -> device under test ->
// bridge -> counting sinks, see topo.go) it measures, one after another in
// one run and with one generator (bench/pktgen's package gen, in process):
// the in-kernel XDP ceiling, the raw AF_XDP forwarder (bench/xskfwd), ipfront,
// Linux's own forwarding and load balancing (IP forwarding, nftables DNAT
// with conntrack, nftables netdev L2 DSR), ipfront's NAT against nftables
// DNAT on the NAT topology (nat.go), HAProxy and ipfront on real TCP,
// UDP ping-pong latency, association memory, 1 and 2 queues, a batch and
// ring size sweep, the Go microbenchmarks and an interleaved A/B of the
// engine's per-packet benchmark against a base revision; then it writes the
// report.
//
//	harness -mode full     # BENCHMARKS.md and configs/tuning.md (< 10 min on 2 cores)
//	harness -mode smoke    # bench/out/smoke.md; exits 1 if any step broke (< 2 min)
//	harness -mode profile  # bench/out/cpu.pprof, perf.txt, flame.svg
//
// Run it from the repository root, as root; bench/harness.sh builds what it
// needs first. Everything it creates lives in namespaces named
// bench-p<pid>n<k>-*, removed on exit, on SIGINT/SIGTERM, and by the next run
// if this one was killed.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ipfront/ipfront/bench/pktgen/gen"
	"github.com/ipfront/ipfront/internal/lab"
)

// params are the sizes of a run.
type params struct {
	mode        string
	dur         time.Duration // measured window of a packet run
	srcCount    int           // flows = srcCount * sports
	sports      int
	warmPasses  int
	sweepBatch  []int
	sweepRing   []int
	sweepDur    time.Duration
	tcpDur      time.Duration
	tcpCalConns int
	pings       int
	assocSizes  []int
	benchtime   string
	profileDur  time.Duration
	// userDur is the window of the one-core-each runs.
	userDur time.Duration
	// rounds is how many times the forwarding peers are measured, one
	// after another in turn; each peer's row is its median round (by
	// delivered pps), which damps the 10-30 % swings a shared VM shows.
	rounds int
	// abCases, abRounds and abBenchtime shape the interleaved A/B of
	// BenchmarkProcess against the base revision (abprocess.go): every
	// case and enough rounds for the medians to mean something in full mode;
	// in smoke mode one tiny round of the cases whose set-up takes no time.
	abCases     []string
	abRounds    int
	abBenchtime string
	// place is the overhead mode's placement (-place), alt its second
	// daemon (-alt), noProf skips its profiled windows (-noprof).
	place  place
	alt    string
	noProf bool
	rate   float64
	// altCfg and altDefer configure the -alt daemon's runs.
	altCfg   []string
	altDefer string
	// only, if not empty, names the sections a full or smoke run measures
	// (-only; see sections); the report then goes to <out>/only.md unless
	// -report says otherwise, and the tuning guide is not written.
	only map[string]bool
	// natConns is the real TCP connections of a NAT connections/s run;
	// ftpSessions the FTP sessions of each of ftpWorkers clients in a
	// sessions/s run, ftpBytes the file of a transfer run.
	natConns, ftpSessions, ftpWorkers int
	ftpBytes                          int64
}

// sections are the parts of a full or smoke run -only can pick, in the order
// they run.
var sections = []string{"forwarding", "nat", "nat-conn", "nat-ftp", "tcp", "assoc", "gobench", "ab"}

// want says whether the run measures section name.
func (p params) want(name string) bool { return len(p.only) == 0 || p.only[name] }

// parseOnly checks -only's comma-separated section names.
func parseOnly(s string) (map[string]bool, error) {
	if s == "" {
		return nil, nil
	}
	m := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(sections, n) {
			return nil, fmt.Errorf("-only: unknown section %q (want some of %s)", n, strings.Join(sections, ","))
		}
		m[n] = true
	}
	return m, nil
}

func paramsFor(mode string) (params, error) {
	switch mode {
	case "full":
		return params{mode: mode, dur: 5 * time.Second, srcCount: 4096, sports: 256, warmPasses: 2,
			sweepBatch: []int{16, 64, 256}, sweepRing: []int{512, 2048, 8192}, sweepDur: 3 * time.Second,
			tcpDur: 4 * time.Second, tcpCalConns: 300, pings: 3000, assocSizes: []int{1 << 20, 10 << 20},
			benchtime: "1s", rounds: 3, userDur: 4 * time.Second, profileDur: 4 * time.Second,
			abCases: []string{"Established1M", "Established64K", "NewFlows", "OneFlow"}, abRounds: 7, abBenchtime: "1s",
			natConns: 3000, ftpSessions: 40, ftpWorkers: 4, ftpBytes: 512 << 20}, nil
	case "smoke":
		return params{mode: mode, dur: time.Second, srcCount: 256, sports: 256, warmPasses: 1,
			sweepBatch: []int{16, 64}, sweepRing: []int{512, 2048}, sweepDur: time.Second,
			tcpDur: time.Second, tcpCalConns: 100, pings: 300, assocSizes: []int{1 << 16, 1 << 20},
			benchtime: "200x", rounds: 1, userDur: time.Second, profileDur: time.Second,
			abCases: []string{"Established64K", "OneFlow"}, abRounds: 1, abBenchtime: "200x",
			natConns: 100, ftpSessions: 2, ftpWorkers: 2, ftpBytes: 4 << 20}, nil
	case "profile":
		return params{mode: mode, dur: 10 * time.Second, srcCount: 4096, sports: 256, warmPasses: 1,
			profileDur: 10 * time.Second}, nil
	case "overhead":
		return params{mode: mode, dur: 5 * time.Second, srcCount: 4096, sports: 256, warmPasses: 2, rounds: 3,
			profileDur: 6 * time.Second}, nil
	}
	return params{}, fmt.Errorf("unknown mode %q (want full, smoke or profile)", mode)
}

func (p params) flows() int { return p.srcCount * p.sports }

func (p params) ack() load {
	return load{proto: gen.TCPAck, srcCount: p.srcCount, sports: p.sports, dport: 80, warm: p.warmPasses, duration: p.dur, queues: 1}
}

func main() {
	mode := flag.String("mode", "full", "full, smoke or profile")
	bin := flag.String("bin", "bin", "directory with ipfront, iplab and xskfwd")
	testBin := flag.String("testbin", "bin/bench", "directory of the compiled test binaries (built if missing)")
	out := flag.String("out", "bench/out", "output directory (logs, configs, smoke report, profiles)")
	report := flag.String("report", "", "report file (default: BENCHMARKS.md for full, <out>/smoke.md for smoke)")
	tuning := flag.String("tuning", "configs/tuning.md", "tuning guide written by a full run")
	placeFlag := flag.String("place", "dut", "overhead mode: where the DUT's kernel work runs: dut (threaded NAPI on the DUT core) or rps")
	rounds := flag.Int("rounds", 0, "overhead mode: rounds (0: the mode's default)")
	alt := flag.String("alt", "", "overhead mode: a second ipfront binary, measured in every round after the first (an A/B of the daemon)")
	noProf := flag.Bool("noprof", false, "overhead mode: rounds only, no profiled windows")
	rate := flag.Float64("rate", 0, "overhead mode: offered load in pps (0: as fast as the generator goes)")
	altCfg := flag.String("altcfg", "", "overhead mode: [dataplane] lines for the -alt daemon, separated by ';'")
	altDefer := flag.String("altdefer", "", "overhead mode: \"napi_defer_hard_irqs gro_flush_timeout\" on the DUT while the -alt daemon runs")
	flows := flag.Int("flows", 0, "full and smoke modes: established flows of the packet runs, a multiple of 256 (0: the mode's default)")
	only := flag.String("only", "", "full and smoke modes: measure only these sections, comma-separated ("+strings.Join(sections, ",")+"); report to <out>/only.md")
	flag.Parse()
	p, err := paramsFor(*mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(2)
	}
	if *rounds > 0 {
		p.rounds = *rounds
	}
	p.alt, p.noProf, p.rate, p.altDefer = *alt, *noProf, *rate, *altDefer
	if *flows > 0 {
		p.srcCount = max(*flows/p.sports, 1)
	}
	if p.only, err = parseOnly(*only); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(2)
	}
	if *altCfg != "" {
		p.altCfg = strings.Split(*altCfg, ";")
	}
	switch *placeFlag {
	case "dut":
	case "rps":
		p.place = placeRPS
	default:
		fmt.Fprintln(os.Stderr, "harness: -place: want dut or rps")
		os.Exit(2)
	}
	if *report == "" {
		*report = "BENCHMARKS.md"
		if p.mode == "smoke" {
			*report = filepath.Join(*out, "smoke.md")
		}
		if len(p.only) > 0 {
			*report = filepath.Join(*out, "only.md")
		}
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "harness: needs root (namespaces, XDP, AF_XDP)")
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// A second signal: tear down now and leave.
	go func() {
		<-ctx.Done()
		stop()
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt, syscall.SIGTERM)
		<-c
		fmt.Fprintln(os.Stderr, "harness: second signal, removing namespaces and exiting")
		_ = removeOurs()
		os.Exit(130)
	}()
	h := &harness{p: p, bin: *bin, testBin: *testBin, out: *out, logDir: filepath.Join(*out, "logs"), res: &results{}}
	err = h.run(ctx, *report, *tuning)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

// removeOurs removes this process's namespaces (for the second-signal path,
// which cannot reach the topology).
func removeOurs() error {
	var errs []error
	for k := 1; k < 10; k++ {
		_, err := lab.Remove(fmt.Sprintf("bench-p%dn%d", os.Getpid(), k))
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

type harness struct {
	p       params
	bin     string
	testBin string
	out     string
	logDir  string
	res     *results
}

// step runs one named part of the run, logs its time and records its error.
func (h *harness) step(ctx context.Context, name string, fn func() error) {
	if ctx.Err() != nil {
		h.res.fail(name, ctx.Err())
		return
	}
	t0 := time.Now()
	fmt.Fprintf(os.Stderr, "harness: %-28s ...\n", name)
	err := fn()
	fmt.Fprintf(os.Stderr, "harness: %-28s %6.1fs %s\n", name, time.Since(t0).Seconds(), okOr(err))
	if err != nil {
		h.res.fail(name, err)
	}
}

func okOr(err error) string {
	if err == nil {
		return "ok"
	}
	return "FAILED: " + strings.SplitN(err.Error(), "\n", 2)[0]
}

func (h *harness) run(ctx context.Context, reportPath, tuningPath string) (err error) {
	r := h.res
	r.start = time.Now()
	r.mode = h.p.mode
	if err := os.MkdirAll(h.logDir, 0o755); err != nil {
		return err
	}
	r.machine = describeMachine()
	r.background = backgroundBusy(time.Second)

	if h.p.mode == "profile" {
		return h.profile(ctx)
	}
	if h.p.mode == "overhead" {
		return h.overhead(ctx)
	}

	lab.RemoveStale()
	t, err := newTopo(lab.UniquePrefix("bench"))
	if err != nil {
		return err
	}
	defer func() {
		if t != nil {
			if cerr := t.close(); cerr != nil && err == nil {
				err = fmt.Errorf("teardown: %w", cerr)
			}
		}
	}()
	e := &env{t: t, bin: h.bin, out: h.out, logDir: h.logDir}
	restoreCT := raiseConntrack(2 * h.p.flows())
	defer restoreCT()
	if h.p.want("forwarding") {
		h.packetSteps(ctx, e)
	}
	h.natSteps(ctx, e)
	if h.p.want("tcp") {
		h.tcpSteps(ctx, e)
	}
	if cerr := t.close(); cerr != nil {
		r.fail("teardown", cerr)
	}
	t = nil

	if h.p.want("assoc") {
		h.step(ctx, "association memory", func() error {
			for _, n := range h.p.assocSizes {
				m := measureAssoc(n)
				r.assoc = append(r.assoc, m)
				if m.Err != nil {
					return m.Err
				}
			}
			return nil
		})
	}
	if h.p.want("gobench") {
		h.step(ctx, "go microbenchmarks", func() error {
			var err error
			r.gobench, err = runGoBenches(ctx, h.testBin, h.p.benchtime, h.p.mode == "smoke")
			return err
		})
	}
	if h.p.want("ab") {
		h.step(ctx, "A/B Process against the base", func() error {
			var err error
			r.ab, err = runABProcess(ctx, h.testBin, h.p)
			r.ab.Err = err
			if err == nil && r.ab.Skipped != "" {
				fmt.Fprintf(os.Stderr, "harness: A/B skipped: %s\n", r.ab.Skipped)
			}
			return err
		})
	}
	r.elapsed = time.Since(r.start)
	if err := writeReport(reportPath, r); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "harness: wrote %s (%.0fs)\n", reportPath, r.elapsed.Seconds())
	if h.p.mode == "full" && len(h.p.only) == 0 {
		if err := writeTuning(tuningPath, r); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "harness: wrote %s\n", tuningPath)
	}
	if len(r.failures) > 0 {
		var names []string
		for _, f := range r.failures {
			names = append(names, f.step)
		}
		return fmt.Errorf("%d step(s) failed: %s", len(r.failures), strings.Join(names, ", "))
	}
	return nil
}

// medianRun returns the run with the median delivered rate; a failed run
// counts as the lowest, so a peer that failed in any round is reported by a
// failed run only if most rounds failed.
func medianRun(runs []pktResult) pktResult {
	sorted := slices.Clone(runs)
	slices.SortStableFunc(sorted, func(a, b pktResult) int {
		ra, rb := a.DelivPPS(), b.DelivPPS()
		if a.Err != nil {
			ra = -1
		}
		if b.Err != nil {
			rb = -1
		}
		return cmp.Compare(ra, rb)
	})
	m := sorted[len(sorted)/2]
	m.Rounds = len(runs)
	for _, r := range runs {
		pps := r.DelivPPS()
		if r.Err != nil {
			pps = 0
		}
		m.RoundPPS = append(m.RoundPPS, pps)
	}
	return m
}

// packetSteps are the runs with the generator and the counting sinks.
func (h *harness) packetSteps(ctx context.Context, e *env) {
	r, p := h.res, h.p
	ack := p.ack()
	flows := p.flows()
	add := func(name string, res pktResult, into *[]pktResult) error {
		*into = append(*into, res)
		if res.Err != nil {
			return res.Err
		}
		if res.Skipped == "" && res.Deliv == 0 {
			return fmt.Errorf("%s delivered nothing (sent %d)", res.Peer, res.Sent)
		}
		return nil
	}
	peers := []namedRun{
		{"ceiling (XDP_TX)", func() pktResult { return e.ceiling(ctx, noWarm(ack)) }},
		{"raw AF_XDP (busy)", func() pktResult { return e.xskfwd(ctx, noWarm(ack), true) }},
		{"raw AF_XDP (no busy)", func() pktResult { return e.xskfwd(ctx, noWarm(ack), false) }},
		{"ipfront ack (busy)", func() pktResult { return e.ipfrontRun(ctx, "ipfront-busy", ack, defaultIPF(true, flows)) }},
		{"ipfront ack (no busy)", func() pktResult { return e.ipfrontRun(ctx, "ipfront-nobusy", ack, defaultIPF(false, flows)) }},
		{"Linux forwarding", func() pktResult { return e.linuxForward(ctx, noWarm(ack)) }},
		{"nftables DNAT", func() pktResult { return e.nftDNAT(ctx, ack) }},
		{"nftables netdev DSR", func() pktResult { return e.nftNetdev(ctx, noWarm(ack)) }},
	}
	r.packets = h.interleaved(ctx, "", peers, add)

	// Issue 14's placement: the generator on its core, each forwarder on
	// the other (ipfront's worker by cpus, the kernel peers by RPS), NAPI in
	// softirq context as a user's system has it.
	user := ack
	user.place, user.duration = placeRPS, p.userDur
	userPeers := []namedRun{
		{"raw AF_XDP (busy)", func() pktResult { return e.xskfwd(ctx, noWarm(user), true) }},
		{"ipfront ack (busy)", func() pktResult { return e.ipfrontRun(ctx, "ipfront-busy", user, defaultIPF(true, flows)) }},
		{"Linux forwarding", func() pktResult { return e.linuxForward(ctx, noWarm(user)) }},
		{"nftables netdev DSR", func() pktResult { return e.nftNetdev(ctx, noWarm(user)) }},
	}
	r.user = h.interleaved(ctx, "one core each: ", userPeers, add)

	// Where the time goes: xskfwd and ipfront under the same offered load,
	// below what either can take, profiled (see overhead.go).
	h.step(ctx, "overhead profile", func() error {
		l := ack
		l.duration = p.profileDur
		l.rate = 50e3
		if x := find(r.packets, "xskfwd-busy"); x != nil && p.mode == "full" {
			l.rate = profLoadShare * x.DelivPPS()
		}
		base := ""
		info, err := readABInfo(filepath.Join(h.testBin, "ipfront_base.txt"))
		switch {
		case err != nil && p.mode == "smoke":
			r.overheadBaseSkip = "the smoke run does not build it"
		case err != nil:
			r.overheadBaseSkip = fmt.Sprintf("%s: %v (bench/harness.sh builds it)", filepath.Join(h.testBin, "ipfront_base.txt"), err)
		case info["skip"] != "":
			r.overheadBaseSkip = info["skip"]
		default:
			base = filepath.Join(h.testBin, "ipfront_base")
			r.overheadBase, r.overheadBaseSubject = info["base"], info["base_subject"]
		}
		r.overheadRate = l.rate
		r.overhead = e.profileOverhead(ctx, l, flows, nil, base)
		errs := []error{writeProfText(filepath.Join(h.out, "overhead.txt"), r.overhead)}
		for _, o := range r.overhead {
			errs = append(errs, o.Err)
		}
		return errors.Join(errs...)
	})

	syn := ack
	syn.proto, syn.warm, syn.duration = gen.TCPSyn, 0, 0 // one SYN per flow into an empty table
	for _, busy := range []bool{true, false} {
		h.step(ctx, fmt.Sprintf("ipfront syn (busy=%v)", busy), func() error {
			res := e.ipfrontRun(ctx, fmt.Sprintf("ipfront-syn-busy%v", busy), syn, defaultIPF(busy, flows))
			if res.Err == nil && res.Extra["new_associations"] == 0 {
				res.Err = errors.New("no association created")
			}
			return add("", res, &r.syn)
		})
	}

	// Scaling: the generator sends on two queues in every run; the DUT has
	// one queue (one worker) or two (two workers, one per core), and the
	// kernel peers get RPS over both cores.
	h.step(ctx, "scaling 1 and 2 queues", func() error {
		// Every run gets the same offered load, half of it from a generator
		// on each core: 1.5x the best single-core figure of the one-core-each
		// table, more than one core can take.
		l := ack
		l.queues, l.place, l.rate = 2, placeRPS, 300e3
		best := 0.0
		for i := range r.user {
			if x := &r.user[i]; x.Err == nil {
				best = max(best, x.DelivPPS())
			}
		}
		if best > 0 {
			l.rate = 1.5 * best
		}
		if err := e.t.setQueues(2, 1); err != nil {
			return err
		}
		c := defaultIPF(true, 2*flows)
		var errs []error
		errs = append(errs, add("", e.ipfrontRun(ctx, "ipfront-1q", l, c), &r.scaling))
		if err := e.t.setQueues(2, 2); err != nil {
			return errors.Join(append(errs, err)...)
		}
		l.place = placeRPS2
		c.queues, c.cpus = 2, []int{genCPU, dutCPU}
		errs = append(errs, add("", e.ipfrontRun(ctx, "ipfront-2q", l, c), &r.scaling))
		x := e.xskfwdWith(ctx, noWarm(l), "xskfwd-2q", c)
		errs = append(errs, add("", x, &r.scaling))
		lf := e.linuxForward(ctx, noWarm(l))
		lf.Key, lf.Peer = "linux-2c", "Linux IP forwarding (one server), RPS over both cores"
		errs = append(errs, add("", lf, &r.scaling))
		nd := e.nftNetdev(ctx, noWarm(l))
		nd.Key, nd.Peer = "netdev-2c", "nftables netdev ingress L2 DSR, RPS over both cores"
		errs = append(errs, add("", nd, &r.scaling))
		return errors.Join(append(errs, e.t.setQueues(1, 1))...)
	})

	h.step(ctx, "batch/ring sweep", func() error {
		l := ack
		l.duration = p.sweepDur
		var errs []error
		def := defaultIPF(true, flows)
		for _, b := range p.sweepBatch {
			c := defaultIPF(true, flows)
			c.batch = b
			if c.batch == def.batch {
				continue // the main run
			}
			errs = append(errs, add("", e.ipfrontRun(ctx, fmt.Sprintf("ipfront-batch%d", b), l, c), &r.sweep))
		}
		for _, rs := range p.sweepRing {
			c := defaultIPF(true, flows)
			c.ring = rs
			if c.ring == def.ring {
				continue // the main run
			}
			errs = append(errs, add("", e.ipfrontRun(ctx, fmt.Sprintf("ipfront-ring%d", rs), l, c), &r.sweep))
		}
		return errors.Join(errs...)
	})
}

// namedRun is one peer of a set of interleaved rounds.
type namedRun struct {
	name string
	run  func() pktResult
}

// interleaved runs every peer once per round, in turn, for p.rounds rounds,
// and returns each peer's median round (see medianRun). prefix names the
// steps in the log.
func (h *harness) interleaved(ctx context.Context, prefix string, peers []namedRun, add func(string, pktResult, *[]pktResult) error) []pktResult {
	rounds := max(h.p.rounds, 1)
	byPeer := make([][]pktResult, len(peers))
	for round := 1; round <= rounds; round++ {
		for i, pr := range peers {
			name := prefix + pr.name
			if rounds > 1 {
				name = fmt.Sprintf("%s, round %d/%d", name, round, rounds)
			}
			h.step(ctx, name, func() error {
				var one []pktResult
				err := add("", pr.run(), &one)
				byPeer[i] = append(byPeer[i], one...)
				return err
			})
		}
	}
	var out []pktResult
	for _, runs := range byPeer {
		if len(runs) > 0 {
			out = append(out, medianRun(runs))
		}
	}
	return out
}

// noWarm is for stateless peers: no warm-up passes.
func noWarm(l load) load { l.warm = 0; return l }

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// tcpSteps are the runs with real TCP and UDP endpoints (sinks off).
func (h *harness) tcpSteps(ctx context.Context, e *env) {
	r, p := h.res, h.p
	var servers []*proc
	h.step(ctx, "servers up", func() error {
		if err := e.t.sinks(false); err != nil {
			return err
		}
		var err error
		servers, err = e.startServers(ctx)
		return err
	})
	defer func() {
		for _, s := range servers {
			s.kill()
		}
	}()
	if len(servers) != numServers {
		return
	}
	addTCP := func(res []tcpResult) error {
		r.tcp = append(r.tcp, res...)
		var errs []error
		for _, x := range res {
			errs = append(errs, x.Err)
		}
		return errors.Join(errs...)
	}
	h.step(ctx, "HAProxy TCP", func() error { return addTCP(e.haproxyTCP(ctx, p)) })
	h.step(ctx, "ipfront TCP", func() error { return addTCP(e.ipfrontTCP(ctx, p)) })
	h.step(ctx, "latency", func() error {
		if _, err := e.t.placement(placeDUTCore); err != nil {
			return err
		}
		r.latency = e.latencies(ctx, p.pings, []place{placeDUTCore, placeRPS})
		var errs []error
		for _, l := range r.latency {
			errs = append(errs, l.Err)
		}
		return errors.Join(errs...)
	})
}

// raiseConntrack raises the kernel's connection-table limit and hash size
// (global settings: a namespace may not change them) so the nftables DNAT
// peer can track every flow, and returns a function that restores them.
func raiseConntrack(want int) func() {
	type kv struct{ path, old string }
	var saved []kv
	for _, name := range []string{"nf_conntrack_max", "nf_conntrack_buckets"} {
		path := "/proc/sys/net/netfilter/" + name
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		old := strings.TrimSpace(string(b))
		var cur int
		fmt.Sscan(old, &cur)
		v := want
		if name == "nf_conntrack_buckets" {
			v = want / 2
		}
		if cur >= v {
			continue
		}
		if os.WriteFile(path, []byte(fmt.Sprint(v)), 0) == nil {
			saved = append(saved, kv{path, old})
		}
	}
	return func() {
		for _, s := range saved {
			_ = os.WriteFile(s.path, []byte(s.old), 0)
		}
	}
}

// backgroundBusy is the fraction of the machine busy over d before the run
// starts: other work on the machine skews every figure.
func backgroundBusy(d time.Duration) float64 {
	a, err := readCPUTimes()
	if err != nil {
		return -1
	}
	time.Sleep(d)
	b, err := readCPUTimes()
	if err != nil {
		return -1
	}
	return float64(b.total-a.total) / clkTck / d.Seconds() / float64(max(len(a.perCPU), 1))
}

var _ = runtime.NumCPU
