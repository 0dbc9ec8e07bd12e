//go:build linux

package main

import (
	"fmt"
	"os"
	"strings"
)

// writeTuning writes configs/tuning.md: every [dataplane] knob, what it
// trades, and the figures of this run that bear on it.
func writeTuning(path string, r *results) error {
	var w strings.Builder
	fmt.Fprintf(&w, "# Tuning ipfront's data plane\n\n")
	fmt.Fprintf(&w, "<!-- Written by bench/harness (`make bench`) from the run of %s; do not edit by hand. -->\n\n",
		r.start.UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&w, "Every knob that matters is in `[dataplane]` (see configs/example.toml for syntax and defaults). The figures below\n")
	fmt.Fprintf(&w, "are from the `make bench` run that wrote BENCHMARKS.md: a veth lab on %d vCPUs (%s), AF_XDP in copy mode. They show\n", r.machine.Cores, r.machine.CPU)
	fmt.Fprintf(&w, "directions, not bare-metal values: measure on your own NIC with `make bench` / `make profile` (BENCHMARKS.md, \"Bare metal\").\n\n")

	ipfB, ipfN := find(r.packets, "ipfront-busy"), find(r.packets, "ipfront-nobusy")
	fmt.Fprintf(&w, "## busy_poll\n\n")
	fmt.Fprintf(&w, "`true`: each worker spins on its rings and owns its core; lowest latency, 100%% of a core even when idle.\n")
	fmt.Fprintf(&w, "`false`: an idle worker sleeps in poll(2) and is woken by the kernel; CPU follows load, latency grows by a wake-up.\n\n")
	fmt.Fprintf(&w, "| measured in this run | busy_poll = true | busy_poll = false |\n|---|---:|---:|\n")
	if ipfB != nil && ipfN != nil {
		fmt.Fprintf(&w, "| delivered kpps, established flows | %s | %s |\n", kpps(ipfB.DelivPPS()), kpps(ipfN.DelivPPS()))
		fmt.Fprintf(&w, "| DUT CPU s per Mpkt | %s | %s |\n", f2(deciding(ipfB)), f2(deciding(ipfN)))
	}
	if len(r.syn) == 2 && r.syn[0].Err == nil && r.syn[1].Err == nil {
		fmt.Fprintf(&w, "| new associations/s (SYN flood into an empty table) | %.0f | %.0f |\n",
			safeDiv(r.syn[0].Extra["new_associations"], r.syn[0].Elapsed), safeDiv(r.syn[1].Extra["new_associations"], r.syn[1].Elapsed))
	}
	var lb, ln *latency
	for i := range r.latency {
		if r.latency[i].Place != placeDUTCore {
			continue
		}
		switch r.latency[i].Key {
		case "ipfront-busy":
			lb = &r.latency[i]
		case "ipfront-nobusy":
			ln = &r.latency[i]
		}
	}
	if lb != nil && ln != nil && lb.Err == nil && ln.Err == nil {
		fmt.Fprintf(&w, "| UDP ping-pong RTT through ipfront, p50 / p99 µs | %.0f / %.0f | %.0f / %.0f |\n", us(lb.P50), us(lb.P99), us(ln.P50), us(ln.P99))
	}
	fmt.Fprintf(&w, "\nIn copy mode (veth, or a NIC without zero-copy) the kernel copies every frame into the UMEM on the core whose\n")
	fmt.Fprintf(&w, "NAPI serves the queue; a worker spinning on that same core competes with it. Keep the NIC queue's interrupt (and\n")
	fmt.Fprintf(&w, "NAPI) on the worker's core only with zero-copy; otherwise give them separate cores or use busy_poll = false.\n\n")
	w.WriteString(tuningIdle) // tuning_idle.md

	fmt.Fprintf(&w, "## batch_size and ring_size\n\n")
	fmt.Fprintf(&w, "`batch_size` (1..1024, <= ring_size) is how many frames a worker takes from its RX ring per loop: larger batches\n")
	fmt.Fprintf(&w, "amortise the per-batch costs (the TX kick, counter publication, the table pointer load) and overlap more\n")
	fmt.Fprintf(&w, "association-slot cache misses; smaller ones cut the time a frame waits for its batch. `ring_size` (power of two,\n")
	fmt.Fprintf(&w, "64..16384) sizes each of the four AF_XDP rings: a deeper ring absorbs longer stalls of the worker (a preemption,\n")
	fmt.Fprintf(&w, "a GC assist) before the kernel drops (`kernel_rx_dropped`), and costs UMEM (frames = 4 x ring_size by default, each\n")
	fmt.Fprintf(&w, "frame_size bytes) and cache footprint. Measured (busy_poll = true, established flows):\n\n")
	fmt.Fprintf(&w, "| batch_size | ring_size | delivered kpps | drops | DUT CPU s/Mpkt | where ipfront dropped |\n|---:|---:|---:|---:|---:|---|\n")
	best := (*pktResult)(nil)
	for _, s := range sweepRows(r) {
		if s.Err != nil || s.Deliv == 0 {
			fmt.Fprintf(&w, "| %d | %d | %s | | | |\n", s.Cfg.batch, s.Cfg.ring, status(s))
			continue
		}
		if best == nil || s.DelivPPS() > best.DelivPPS() {
			best = s
		}
		fmt.Fprintf(&w, "| %d | %d | %s | %.1f%% | %s | %s |\n", s.Cfg.batch, s.Cfg.ring, kpps(s.DelivPPS()),
			100*safeDiv(float64(s.Drops()), float64(s.Sent)), f2(deciding(s)), strings.TrimPrefix(s.Note, "ipfront drops in the window: "))
	}
	if best != nil {
		fmt.Fprintf(&w, "\nBest in this run: batch_size = %d, ring_size = %d (%s kpps). Differences under ~15%% are within this lab's\n", best.Cfg.batch, best.Cfg.ring, kpps(best.DelivPPS()))
		fmt.Fprintf(&w, "run-to-run noise; the defaults (64, 2048) stay unless a bare-metal run says otherwise.\n\n")
	}

	fmt.Fprintf(&w, "## queues and cpus\n\n")
	fmt.Fprintf(&w, "One worker per (interface, queue); `queues = \"all\"` serves every RX queue. `cpus` pins worker i to the i-th CPU:\n")
	fmt.Fprintf(&w, "pin each worker to the core that handles its queue's interrupts (`/proc/irq/*/smp_affinity_list`) and keep other\n")
	fmt.Fprintf(&w, "work off those cores. Measured with two generator queues, the same offered load, one and two DUT queues:\n\n")
	fmt.Fprintf(&w, "| DUT queues | offered kpps | delivered kpps | drops | DUT CPU s/Mpkt |\n|---:|---:|---:|---:|---:|\n")
	for i := range r.scaling {
		s := &r.scaling[i]
		if !strings.HasPrefix(s.Key, "ipfront-") {
			continue // the other peers of the scaling table are in BENCHMARKS.md
		}
		if s.Err != nil || s.Deliv == 0 {
			fmt.Fprintf(&w, "| %d | %s | | | |\n", s.Cfg.queues, status(s))
			continue
		}
		fmt.Fprintf(&w, "| %d | %s | %s | %.1f%% | %s |\n", s.Cfg.queues, kpps(s.SentPPS()), kpps(s.DelivPPS()),
			100*safeDiv(float64(s.Drops()), float64(s.Sent)), f2(deciding(s)))
	}
	fmt.Fprintf(&w, "\nOn 2 vCPUs the generators share the cores with the workers, so this only shows whether a second queue helps here.\n\n")
	fmt.Fprintf(&w, "Where the queue's receive processing runs matters as much as where the worker runs. In copy mode the kernel runs\n")
	fmt.Fprintf(&w, "the steering program and copies every frame into the UMEM in the queue's NAPI, before the worker sees it; a frame\n")
	fmt.Fprintf(&w, "the worker has no room for is dropped only after that work. On the worker's own core (interrupt or NAPI thread\n")
	fmt.Fprintf(&w, "there) an overload therefore takes the core from the worker (receive livelock: the forwarding table's drops);\n")
	fmt.Fprintf(&w, "on another core it takes that core's time instead.")
	if ipf, raw := find(r.user, "ipfront-busy"), find(r.user, "xskfwd-busy"); ipf != nil && raw != nil {
		fmt.Fprintf(&w, " With the receive processing on the generator's core and the worker alone on its own (BENCHMARKS.md,\n")
		fmt.Fprintf(&w, "\"One core each\"), ipfront delivered %s kpps and xskfwd %s kpps in this run.", kpps(ipf.DelivPPS()), kpps(raw.DelivPPS()))
	}
	fmt.Fprintf(&w, " With zero-copy (no copy, and a\n")
	fmt.Fprintf(&w, "drop costs next to nothing) keep a queue's interrupt on its worker's core; in copy mode give the interrupt a core\n")
	fmt.Fprintf(&w, "of its own, or use busy_poll = false.\n\n")

	fmt.Fprintf(&w, "## max_associations\n\n")
	fmt.Fprintf(&w, "The association table is allocated once: 64 bytes per association (two 32-byte slots, load factor <= 1/2),\n")
	fmt.Fprintf(&w, "divided evenly over the workers. Measured:")
	for _, a := range r.assoc {
		if a.Err == nil {
			fmt.Fprintf(&w, " %s associations take %d MiB (RSS grew %.1f bytes per association);", human(float64(a.Entries)), a.ShardBytes>>20, a.RSSPerEntry)
		}
	}
	fmt.Fprintf(&w, " size it for the peak number of concurrent flows within delete_age; beyond it new flows are\n")
	fmt.Fprintf(&w, "forwarded statelessly (counted as `stateless`), never dropped.\n\n")

	fmt.Fprintf(&w, "## shed_openings\n\n")
	fmt.Fprintf(&w, "On by default. A worker that cannot keep up loses frames where the kernel finds its RX ring full, whichever they\n")
	fmt.Fprintf(&w, "are; with `shed_openings` the steering program drops openings to a VIP (TCP SYN without ACK, SCTP INIT) before the\n")
	fmt.Fprintf(&w, "ring while it is three quarters full, until it is down to a quarter, so established connections keep their\n")
	fmt.Fprintf(&w, "segments (the new-flows table of BENCHMARKS.md shows both kinds of drop under a SYN-only load). `shed_openings` in\n")
	fmt.Fprintf(&w, "`ctl counters` and `ipfront_xdp_shed_openings_total` count them; a count that grows outside floods says the workers\n")
	fmt.Fprintf(&w, "need more cores, queues or a larger `ring_size`. Turn it off only to compare.\n\n")
	fmt.Fprintf(&w, "## Not measurable in this lab (veth)\n\n")
	fmt.Fprintf(&w, "- `zero_copy` (\"auto\", \"on\", \"off\"): veth only does copy mode. On a zero-copy NIC (ice, i40e, mlx5, ixgbe) set\n")
	fmt.Fprintf(&w, "  \"on\", so that a fallback to copy mode fails at start instead of halving throughput silently.\n")
	fmt.Fprintf(&w, "- `xdp_mode` (\"native\", \"generic\", \"auto\"): every run here got native mode. Generic (skb) mode builds an skb per\n")
	fmt.Fprintf(&w, "  frame before XDP runs and is several times slower; use \"native\" in production so a missing driver hook fails loudly.\n")
	fmt.Fprintf(&w, "- `frame_size` (2048 or 4096): 2048 halves the UMEM and its cache/TLB footprint; 4096 is needed for frames over\n")
	fmt.Fprintf(&w, "  ~1.7 KB (copy mode keeps 256 bytes of headroom). With 64-byte frames the lab cannot tell them apart.\n")
	fmt.Fprintf(&w, "- `frames`: 0 means 4 x ring_size; more only helps if `fill_starved`-style shortages show up in the counters.\n")
	fmt.Fprintf(&w, "- `need_wakeup` (default true): without it the worker issues a syscall on every loop even when the kernel does not\n")
	fmt.Fprintf(&w, "  need one; keep it on. In copy mode the TX ring always needs a kick, so it matters only with zero-copy.\n\n")
	fmt.Fprintf(&w, "Profile a tuned configuration with `make profile` (bench/out/flame.svg shows where a packet's time goes).\n")
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(w.String()), 0o644)
}
