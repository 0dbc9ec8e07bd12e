//go:build linux

package main

// The NAT table (issue 8): ipfront with forwarding = "nat" against its real
// kernel peer, nftables DNAT with conntrack, on the NAT shape of the bench
// topology. The servers do not hold the VIP and their default gateway is the
// DUT (as in internal/lab's one-armed NAT lab and configs/nat.toml): the
// generator's clients (10.64.0.0/10, off every host's subnet) are reached
// only through it. The traffic is the forwarding table's: established flows,
// client -> VIP, one direction, counted at the servers' sinks after the
// destination was translated; the servers' replies would come back through
// the DUT, but the sinks drop every frame, so the rows measure the
// translation of the client's direction, the one the DSR rows measure too.

import (
	"context"
	"fmt"
	"strings"
)

// natServerCmds returns the ip(8) batch that turns server s into a NAT
// server (on: the VIP off its loopback, default route via the DUT) or back
// into the DSR one the other steps expect (off).
func natServerCmds(s host, vip, gw string, on bool) string {
	if on {
		return fmt.Sprintf("addr del %s/32 dev lo\nroute replace default via %s dev %s\n", vip, gw, s.ifname)
	}
	return fmt.Sprintf("route del default\naddr add %s/32 dev lo\n", vip)
}

// natTopoOn makes every server a NAT server and returns the function that
// undoes it. On error it undoes what it did.
func (e *env) natTopoOn() (undo func() error, err error) {
	t := e.t
	var done []host
	undo = func() error {
		var errs []string
		for _, s := range done {
			if err := ipBatch(s.ns, natServerCmds(s, t.vip.String(), t.lb.ip.String(), false)); err != nil {
				errs = append(errs, err.Error())
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("restore the DSR servers: %s", strings.Join(errs, "; "))
		}
		return nil
	}
	for _, s := range t.servers {
		if err := ipBatch(s.ns, natServerCmds(s, t.vip.String(), t.lb.ip.String(), true)); err != nil {
			_ = undo()
			return nil, fmt.Errorf("NAT server %s: %w", s.role, err)
		}
		done = append(done, s)
	}
	return undo, nil
}

// natSteps measures the NAT sections (those -only leaves in): established
// flows (natEstablished), new connections (natconn.go) and FTP (natftp.go),
// on the NAT topology.
func (h *harness) natSteps(ctx context.Context, e *env) {
	r, p := h.res, h.p
	if !p.want("nat") && !p.want("nat-conn") && !p.want("nat-ftp") {
		return
	}
	var undo func() error
	h.step(ctx, "NAT topology", func() error {
		var err error
		undo, err = e.natTopoOn()
		return err
	})
	if undo == nil {
		return
	}
	defer func() {
		if err := undo(); err != nil {
			r.fail("NAT topology teardown", err)
		}
		if err := e.t.sinks(true); err != nil {
			r.fail("NAT topology teardown", err)
		}
	}()
	if p.want("nat") {
		h.natEstablished(ctx, e)
	}
	if p.want("nat-conn") {
		h.natConnSteps(ctx, e)
	}
	if p.want("nat-ftp") {
		h.natFTPSteps(ctx, e)
	}
}

// natCPUShare is the offered load of the NAT CPU windows as a share of the
// lower of the two peers' delivered rates: both keep up, so both deliver the
// same frames and CPU per frame compares like for like.
const natCPUShare = 0.6

// natEstablished measures the NAT table's established flows: delivered pps
// with the generator as fast as it goes, then CPU at the same offered load.
func (h *harness) natEstablished(ctx context.Context, e *env) {
	r, p := h.res, h.p
	ack, flows := p.ack(), p.flows()
	// One core each. With the forwarding table's placement (both of the
	// DUT's NAPI threads SCHED_FIFO on its core) a kernel peer slower than
	// the offered load never lets the egress thread run: nftables DNAT then
	// delivers next to nothing, whatever conntrack's size.
	ack.place, ack.duration = placeRPS, p.userDur
	nat := func(busy bool) ipfCfg {
		c := defaultIPF(busy, flows)
		c.forwarding = "nat"
		return c
	}
	dnat := func(l load, key string) pktResult {
		res := e.nftDNAT(ctx, l)
		res.Key, res.Peer = key, "nftables DNAT + conntrack (jhash map, 16 servers; servers' gateway the DUT)"
		return res
	}
	peers := []namedRun{
		{"ipfront NAT (busy)", func() pktResult { return e.ipfrontNATRun(ctx, "ipfront-nat-busy", ack, nat(true)) }},
		{"ipfront NAT (no busy)", func() pktResult { return e.ipfrontNATRun(ctx, "ipfront-nat-nobusy", ack, nat(false)) }},
		{"nftables DNAT (NAT topology)", func() pktResult { return dnat(ack, "nat-dnat") }},
	}
	r.nat = h.interleaved(ctx, "NAT: ", peers, addPkt)

	// CPU: both at the same offered load, below what either delivered.
	cpu := ack
	cpu.rate = 50e3
	if a, b := find(r.nat, "ipfront-nat-nobusy"), find(r.nat, "nat-dnat"); a != nil && b != nil && p.mode == "full" {
		cpu.rate = natCPUShare * min(a.DelivPPS(), b.DelivPPS())
	}
	cpuPeers := []namedRun{
		{"ipfront NAT (no busy)", func() pktResult { return e.ipfrontNATRun(ctx, "nat-cpu-ipfront-nobusy", cpu, nat(false)) }},
		{"nftables DNAT (NAT topology)", func() pktResult { return dnat(cpu, "nat-cpu-dnat") }},
	}
	r.natCPU = h.interleaved(ctx, "NAT CPU at the same load: ", cpuPeers, addPkt)
}

// ipfrontNATRun is ipfrontRun with the NAT set and a name saying so.
func (e *env) ipfrontNATRun(ctx context.Context, name string, l load, c ipfCfg) pktResult {
	res := e.ipfrontRun(ctx, name, l, c)
	res.Peer = "ipfront NAT (" + c.String() + ")"
	return res
}

// addPkt records res in into and returns why it does not count as a run: its
// error, or that a peer that ran delivered nothing.
func addPkt(_ string, res pktResult, into *[]pktResult) error {
	*into = append(*into, res)
	if res.Err != nil {
		return res.Err
	}
	if res.Skipped == "" && res.Deliv == 0 {
		return fmt.Errorf("%s delivered nothing (sent %d)", res.Peer, res.Sent)
	}
	return nil
}

// natTargets are issue 8's rows on the NAT table (one core each): ipfront
// (busy polling) delivers more established-flow pps than nftables DNAT +
// conntrack, and ipfront without busy polling spends no more CPU per Mpkt
// at the same offered load (both cores' busy time: the generator's and the
// sinks' share is the same for both, the rest is the DUT's wherever it ran).
func natTargets(nat, cpu []pktResult) []target {
	ipf, dnat := find(nat, "ipfront-nat-busy"), find(nat, "nat-dnat")
	ipfNB, dnatC := find(cpu, "nat-cpu-ipfront-nobusy"), find(cpu, "nat-cpu-dnat")
	var ts []target
	m := "n/a"
	known := ipf != nil && dnat != nil
	if known {
		m = fmt.Sprintf("%s vs %s kpps delivered (x%s), %s flows%s", kpps(ipf.DelivPPS()), kpps(dnat.DelivPPS()), ratio(ipf, dnat),
			human(float64(ipf.Flows)), roundsOf(ipf))
	}
	ts = append(ts, target{`ipfront forwarding = "nat" (busy_poll=true) delivers more pps than nftables DNAT + conntrack, established flows, one core each`,
		m, verdict(known && ipf.DelivPPS() > dnat.DelivPPS(), known)})
	m = "n/a"
	known = ipfNB != nil && dnatC != nil
	if known {
		m = fmt.Sprintf("%s vs %s machine CPU s/Mpkt at %s kpps offered%s", f2(ipfNB.perMpkt(ipfNB.Use.Machine)), f2(dnatC.perMpkt(dnatC.Use.Machine)),
			kpps(ipfNB.SentPPS()), roundsOf(ipfNB))
	}
	ts = append(ts, target{`ipfront forwarding = "nat" (busy_poll=false) CPU per Mpkt <= nftables DNAT + conntrack's at the same offered load, one core each`,
		m, verdict(known && ipfNB.perMpkt(ipfNB.Use.Machine) <= dnatC.perMpkt(dnatC.Use.Machine), known)})
	return ts
}

// roundsOf says which rounds a median row comes from ("" for one run).
func roundsOf(r *pktResult) string {
	if r.Rounds > 1 {
		return fmt.Sprintf(", medians of %d interleaved rounds", r.Rounds)
	}
	return ""
}

// natSection writes the NAT tables.
func natSection(w *strings.Builder, r *results) {
	fmt.Fprintf(w, "\n## NAT: ipfront forwarding = \"nat\" against nftables DNAT + conntrack\n\n")
	fmt.Fprintf(w, "The NAT shape of the same topology: the servers do not hold the VIP and their default route is the DUT. Each peer\n")
	fmt.Fprintf(w, "rewrites the destination address to a server's (ipfront by its association, the kernel by conntrack's DNAT) and\n")
	fmt.Fprintf(w, "sends the frame back onto the segment. One core each, as in \"One core each\": the generator (or the real client and\n")
	fmt.Fprintf(w, "servers) on core %d, ipfront's worker on core %d, the kernel's forwarding, conntrack and NAT on core %d by RPS. (With the\n", genCPU, dutCPU, dutCPU)
	fmt.Fprintf(w, "forwarding table's placement, both of the DUT's NAPI threads SCHED_FIFO on one core, a kernel peer slower than the\n")
	fmt.Fprintf(w, "offered load never lets the egress thread run and delivers next to nothing: that, not conntrack's size, is why\n")
	fmt.Fprintf(w, "nftables DNAT shows ~0 kpps there.) conntrack holds every flow: nf_conntrack_max and nf_conntrack_buckets are raised\n")
	fmt.Fprintf(w, "for the run (see \"Reproduce\"; the entries counted after each run are below).\n\n")
	fmt.Fprintf(w, "### Established flows\n\n")
	if len(r.nat) == 0 {
		fmt.Fprintf(w, "Not measured in this run (see \"Steps that failed\").\n")
	} else {
		fmt.Fprintf(w, "64-byte TCP ACK frames of %s established flows to the VIP, %s, after warm-up passes; the sinks count what\n",
			flowsOf(r.nat), durOf(r.nat))
		fmt.Fprintf(w, "arrives. One direction: the servers' replies are not part of this load.%s \"x ipfront\" is relative to ipfront NAT with\n", roundsNote(r.nat))
		fmt.Fprintf(w, "busy_poll=true. CPU per core as busy seconds of that core per million delivered frames (both cores also run the\n")
		fmt.Fprintf(w, "generator or the sinks).\n\n")
		oneCoreTable(w, r.nat, find(r.nat, "ipfront-nat-busy"))
	}
	fmt.Fprintf(w, "\n**CPU at the same offered load.** ipfront without busy polling and nftables DNAT once more, the generator\n")
	fmt.Fprintf(w, "rate-limited to %.0f%% of the lower of the two's delivered rates above, so that both deliver the same frames; the\n", 100*natCPUShare)
	fmt.Fprintf(w, "generator sleeps between batches. **machine s/Mpkt** (busy time of both cores per million delivered frames) decides:\n")
	fmt.Fprintf(w, "the generator's and the sinks' share is the same for both, and the DUT's work is counted wherever it ran (ipfront's\n")
	fmt.Fprintf(w, "XDP program and copy into its UMEM run on core %d in this placement, the kernel's GRO and RPS hand-off too).\n\n", genCPU)
	if len(r.natCPU) == 0 {
		fmt.Fprintf(w, "Not measured in this run (see \"Steps that failed\").\n")
	} else {
		oneCoreTable(w, r.natCPU, nil)
	}
	natConnSection(w, r)
	natFTPSection(w, r)
}

// oneCoreTable writes packet rows measured one core each: per-core CPU, the
// machine's, and the rate relative to ref.
func oneCoreTable(w *strings.Builder, rs []pktResult, ref *pktResult) {
	fmt.Fprintf(w, "| peer | workload | sent kpps | delivered kpps | drops | core %d s/Mpkt | core %d s/Mpkt | machine s/Mpkt | x ipfront |\n", dutCPU, genCPU)
	fmt.Fprintf(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for i := range rs {
		u := &rs[i]
		if st := status(u); st != "" {
			fmt.Fprintf(w, "| %s | %s | %s | | | | | | |\n", u.Peer, u.Workload, st)
			continue
		}
		drop := fmt.Sprintf("%d (%.1f%%)", u.Drops(), 100*safeDiv(float64(u.Drops()), float64(u.Sent)))
		fmt.Fprintf(w, "| %s | %s | %s | **%s** | %s | %s | %s | %s | %s |\n", u.Peer, u.Workload, kpps(u.SentPPS()), kpps(u.DelivPPS()), drop,
			f2(u.perMpkt(u.Use.Core)), f2(u.perMpkt(u.Use.Machine-u.Use.Core)), f2(u.perMpkt(u.Use.Machine)), ratio(u, ref))
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
