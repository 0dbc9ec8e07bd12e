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

// natSteps measures the NAT table: ipfront (busy polling and not) and
// nftables DNAT + conntrack in interleaved rounds, on the NAT topology, with
// the forwarding table's established-flow load.
func (h *harness) natSteps(ctx context.Context, e *env) {
	r, p := h.res, h.p
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
	}()
	ack, flows := p.ack(), p.flows()
	nat := func(busy bool) ipfCfg {
		c := defaultIPF(busy, flows)
		c.forwarding = "nat"
		return c
	}
	peers := []namedRun{
		{"ipfront NAT (busy)", func() pktResult { return e.ipfrontNATRun(ctx, "ipfront-nat-busy", ack, nat(true)) }},
		{"ipfront NAT (no busy)", func() pktResult { return e.ipfrontNATRun(ctx, "ipfront-nat-nobusy", ack, nat(false)) }},
		{"nftables DNAT (NAT topology)", func() pktResult {
			res := e.nftDNAT(ctx, ack)
			res.Key, res.Peer = "nat-dnat", "nftables DNAT + conntrack (jhash map, 16 servers; servers' gateway the DUT)"
			return res
		}},
	}
	r.nat = h.interleaved(ctx, "NAT: ", peers, addPkt)
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

// natTargets are issue 8's rows on the NAT table: ipfront (busy polling)
// delivers more established-flow pps than nftables DNAT + conntrack, and
// ipfront without busy polling spends no more DUT CPU per Mpkt.
func natTargets(nat []pktResult) []target {
	ipf, ipfNB, dnat := find(nat, "ipfront-nat-busy"), find(nat, "ipfront-nat-nobusy"), find(nat, "nat-dnat")
	ok := func(r *pktResult) bool { return r != nil && r.Err == nil && r.Skipped == "" }
	var ts []target
	m := "n/a"
	known := ok(ipf) && ok(dnat)
	if known {
		m = fmt.Sprintf("%s vs %s kpps delivered (x%s)%s", kpps(ipf.DelivPPS()), kpps(dnat.DelivPPS()), ratio(ipf, dnat), roundsOf(ipf))
	}
	ts = append(ts, target{`ipfront forwarding = "nat" (busy_poll=true) delivers more pps than nftables DNAT + conntrack, established flows on the NAT topology`,
		m, verdict(known && ipf.DelivPPS() > dnat.DelivPPS(), known)})
	m = "n/a"
	known = ok(ipfNB) && ok(dnat) && ipfNB.Deliv > 0 && dnat.Deliv > 0
	if known {
		m = fmt.Sprintf("%s vs %s DUT CPU s/Mpkt%s", f2(deciding(ipfNB)), f2(deciding(dnat)), roundsOf(ipfNB))
	}
	ts = append(ts, target{`ipfront forwarding = "nat" (busy_poll=false) DUT CPU per Mpkt <= nftables DNAT + conntrack's, NAT topology`,
		m, verdict(known && deciding(ipfNB) <= deciding(dnat), known)})
	return ts
}

// roundsOf says which rounds a median row comes from ("" for one run).
func roundsOf(r *pktResult) string {
	if r.Rounds > 1 {
		return fmt.Sprintf(", medians of %d interleaved rounds", r.Rounds)
	}
	return ""
}

// natSection writes the NAT table.
func natSection(w *strings.Builder, r *results) {
	fmt.Fprintf(w, "\n## NAT: ipfront forwarding = \"nat\" against nftables DNAT + conntrack\n\n")
	if len(r.nat) == 0 {
		fmt.Fprintf(w, "Not measured in this run (see \"Steps that failed\").\n")
		return
	}
	fmt.Fprintf(w, "The forwarding table's load (64-byte TCP ACK frames of %s established flows to the VIP, %s, after warm-up\n",
		flowsOf(r.nat), durOf(r.nat))
	fmt.Fprintf(w, "passes) on the NAT shape of the same topology: the servers do not hold the VIP and their default route is the DUT.\n")
	fmt.Fprintf(w, "Each peer rewrites the destination address to a server's (ipfront by its association, the kernel by conntrack's\n")
	fmt.Fprintf(w, "DNAT) and sends the frame back onto the segment; the sinks count what arrives. One direction: the servers' replies\n")
	fmt.Fprintf(w, "are not part of the load.%s \"x ipfront\" is relative to ipfront NAT with busy_poll=true.\n\n", roundsNote(r.nat))
	pktTable(w, r.nat, nil, find(r.nat, "ipfront-nat-busy"))
}
