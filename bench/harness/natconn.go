//go:build linux

package main

// New connections through the NAT topology (issue 8): ipfront forwarding =
// "nat" against nftables DNAT + conntrack, one core each (the generator or
// the endpoints on core genCPU, the forwarder on core dutCPU), both ways:
//
//   - new flows at the packet level: one TCP SYN per flow into an empty
//     association table / connection table, counted at the sinks after the
//     translation: every delivered SYN is a connection the peer set up;
//   - real TCP connections, SYN to FIN: iplab tcp in the client's namespace
//     against iplab serve on the servers, greeting + 64-byte echo + close,
//     every byte verified, the servers' replies translated back by the peer.
//
// For real endpoints the client needs an address off the servers' subnet (a
// NAT server answers through its default route, the DUT, only what it cannot
// reach directly): natClientOn gives it natClientIP.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ipfront/ipfront/bench/pktgen/gen"
	"github.com/ipfront/ipfront/internal/lab"
)

// natClientIP is the client's address for real connections through a NAT
// peer: off the servers' subnet, routed via the client by the DUT.
var natClientIP = netip.MustParseAddr("203.0.113.2")

// natClientNet is the client's NAT subnet, which the DUT routes via the
// client.
func natClientNet() netip.Prefix { return netip.PrefixFrom(natClientIP, 24).Masked() }

// natClientCmds returns the ip(8) batches for the client (its own address,
// the VIP via the DUT from that address) and the DUT (the client's subnet
// via the client), or the ones that undo them (on = false).
func natClientCmds(t *topo, on bool) (client, dut string) {
	if on {
		return fmt.Sprintf("addr add %s/32 dev %s\nroute replace %s/32 via %s src %s\n", natClientIP, t.client.ifname, t.vip, t.lb.ip, natClientIP),
			fmt.Sprintf("route replace %s via %s dev %s\n", natClientNet(), t.client.ip, t.lb.ifname)
	}
	return fmt.Sprintf("route replace %s/32 via %s\naddr del %s/32 dev %s\n", t.vip, t.lb.ip, natClientIP, t.client.ifname),
		fmt.Sprintf("route del %s\n", natClientNet())
}

// natClientOn gives the client its NAT address and routes and detaches the
// sinks (real endpoints answer); the returned function undoes both.
func (e *env) natClientOn() (undo func() error, err error) {
	t := e.t
	c, d := natClientCmds(t, true)
	if err := ipBatch(t.client.ns, c); err != nil {
		return nil, err
	}
	if err := ipBatch(t.lb.ns, d); err != nil {
		c, _ = natClientCmds(t, false)
		_ = ipBatch(t.client.ns, c)
		return nil, err
	}
	if err := t.sinks(false); err != nil {
		return nil, err
	}
	return func() error {
		c, d := natClientCmds(t, false)
		return errors.Join(ipBatch(t.client.ns, c), ipBatch(t.lb.ns, d))
	}, nil
}

// rateResult is one measurement of a rate with real programs (connections or
// sessions per second, or a transfer's throughput) through one peer.
type rateResult struct {
	Key      string
	Peer     string
	Workload string
	N        int   // completed (verified) connections, sessions or transfers
	Failed   int   //
	Bytes    int64 // payload bytes verified
	Seconds  float64
	Use      usage
	Skipped  string
	Err      error
	Note     string
	// Rounds and Each: how many interleaved rounds this is the median of,
	// and every round's rate in order.
	Rounds int
	Each   []float64
}

// PerSec is completed connections or sessions per second.
func (r *rateResult) PerSec() float64 { return safeDiv(float64(r.N), r.Seconds) }

// Mbps is the verified payload in Mbit/s.
func (r *rateResult) Mbps() float64 { return safeDiv(float64(r.Bytes)*8/1e6, r.Seconds) }

// rate is what the median and the targets rank: throughput for transfers,
// completions per second otherwise.
func (r *rateResult) rate() float64 {
	if r.Bytes > 0 && strings.Contains(r.Workload, "transfer") {
		return r.Mbps()
	}
	return r.PerSec()
}

func (r *rateResult) ok() bool { return r != nil && r.Err == nil && r.Skipped == "" && r.N > 0 }

// rateRun is one peer of a set of interleaved rounds of rate measurements:
// run measures its workloads once, always in the same order.
type rateRun struct {
	name string
	run  func() []rateResult
}

// interleavedRates runs every peer once per round, in turn, and returns each
// peer's median round by rate, per workload; a failed round counts as the
// lowest.
func (h *harness) interleavedRates(ctx context.Context, prefix string, peers []rateRun) []rateResult {
	rounds := max(h.p.rounds, 1)
	byPeer := make([][][]rateResult, len(peers)) // peer, workload, round
	for round := 1; round <= rounds; round++ {
		for i, pr := range peers {
			name := prefix + pr.name
			if rounds > 1 {
				name = fmt.Sprintf("%s, round %d/%d", name, round, rounds)
			}
			h.step(ctx, name, func() error {
				var errs []error
				for j, res := range pr.run() {
					if j == len(byPeer[i]) {
						byPeer[i] = append(byPeer[i], nil)
					}
					byPeer[i][j] = append(byPeer[i][j], res)
					switch {
					case res.Err != nil:
						errs = append(errs, fmt.Errorf("%s: %w", res.Workload, res.Err))
					case res.Skipped == "" && res.N == 0:
						errs = append(errs, fmt.Errorf("%s, %s: nothing completed", res.Peer, res.Workload))
					}
				}
				return errors.Join(errs...)
			})
		}
	}
	var out []rateResult
	for _, works := range byPeer {
		for _, runs := range works {
			out = append(out, medianRate(runs))
		}
	}
	return out
}

// medianRate returns the run with the median rate, failed runs lowest.
func medianRate(runs []rateResult) rateResult {
	score := func(r *rateResult) float64 {
		if r.Err != nil {
			return -1
		}
		return r.rate()
	}
	sorted := slices.Clone(runs)
	slices.SortStableFunc(sorted, func(a, b rateResult) int {
		sa, sb := score(&a), score(&b)
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return 0
	})
	m := sorted[len(sorted)/2]
	m.Rounds, m.Each = len(runs), nil
	for i := range runs {
		m.Each = append(m.Each, max(score(&runs[i]), 0))
	}
	return m
}

// natConnSteps measures new connections on the NAT topology (see the top of
// the file). The NAT topology is on.
func (h *harness) natConnSteps(ctx context.Context, e *env) {
	r, p := h.res, h.p
	flows := p.flows()
	syn := p.ack()
	syn.proto, syn.warm, syn.duration, syn.place = gen.TCPSyn, 0, 0, placeRPS // one SYN per flow into an empty table
	nat := func(busy bool) ipfCfg {
		c := defaultIPF(busy, flows)
		c.forwarding = "nat"
		return c
	}
	synPeers := []namedRun{
		{"ipfront NAT SYN (busy)", func() pktResult {
			res := e.ipfrontNATRun(ctx, "ipfront-nat-syn-busy", syn, nat(true))
			if res.Err == nil && res.Extra["new_associations"] == 0 {
				res.Err = errors.New("no association created")
			}
			return res
		}},
		{"nftables DNAT SYN", func() pktResult {
			res := e.nftDNAT(ctx, syn)
			res.Key, res.Peer = "nat-syn-dnat", "nftables DNAT + conntrack (jhash map, 16 servers)"
			return res
		}},
	}
	r.natSyn = h.interleaved(ctx, "NAT new flows: ", synPeers, addPkt)

	// Real connections: the endpoints on the generator's core, the
	// forwarder alone on the other.
	var undo func() error
	var servers []*proc
	h.step(ctx, "NAT TCP: client and servers", func() error {
		var err error
		if undo, err = e.natClientOn(); err != nil {
			return err
		}
		if _, err := e.t.placement(placeRPS); err != nil {
			return err
		}
		servers, err = e.startServersOn(ctx, genCPU)
		return err
	})
	defer func() {
		for _, s := range servers {
			s.kill()
		}
		if undo != nil {
			if err := undo(); err != nil {
				r.fail("NAT TCP teardown", err)
			}
		}
	}()
	if len(servers) != numServers {
		return
	}
	conns := p.natConns
	tcpPeers := []rateRun{
		{"ipfront NAT TCP (busy)", func() []rateResult {
			return []rateResult{e.ipfrontNATConns(ctx, "ipfront-nat-tcp-busy", nat(true), conns)}
		}},
		{"nftables DNAT TCP", func() []rateResult { return []rateResult{e.dnatConns(ctx, conns)} }},
	}
	r.natTCP = h.interleavedRates(ctx, "NAT TCP connections: ", tcpPeers)
}

// natConnRun runs iplab tcp from the client's NAT address through the VIP
// (conns connections, natParallel at a time, 64 bytes echoed each) and
// fills in r.
func (e *env) natConnRun(ctx context.Context, conns int, dut []int, r *rateResult) {
	s, err := startSample(dut, nil)
	if err != nil {
		r.Err = err
		return
	}
	rep, err := e.iplabTCPPinned(ctx, conns, natParallel, 64)
	r.Use, _ = s.end()
	r.N, r.Failed, r.Bytes, r.Seconds, r.Err = rep.OK, rep.Failed, rep.BytesVerified, rep.DurationMS/1e3, err
	if r.Err == nil && rep.Failed > 0 {
		r.Note = fmt.Sprintf("%d of %d connections failed: %v", rep.Failed, rep.Conns, rep.Reasons)
	}
}

// natParallel is how many connections iplab tcp keeps open at once.
const natParallel = 16

// iplabTCPPinned is iplabTCP with the client on the generator's core.
func (e *env) iplabTCPPinned(ctx context.Context, conns, parallel, bytes int) (lab.TCPReport, error) {
	var rep lab.TCPReport
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", e.t.client.ns, "taskset", "-c", fmt.Sprint(genCPU),
		filepath.Join(e.bin, "iplab"), "tcp",
		"--vip", e.t.vip.String(), "--port", fmt.Sprint(tcpPort), "--conns", fmt.Sprint(conns),
		"--parallel", fmt.Sprint(parallel), "--bytes", fmt.Sprint(bytes), "--timeout", "10s", "-o", "json")
	out, err := cmd.Output()
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		if err == nil {
			err = jerr
		}
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return rep, fmt.Errorf("iplab tcp: %v: %s", err, tail(stderr, 500))
	}
	return rep, nil // failures are part of the measurement
}

// ipfrontNATConns measures real TCP connections through ipfront's NAT set.
func (e *env) ipfrontNATConns(ctx context.Context, key string, c ipfCfg, conns int) (r rateResult) {
	r = rateResult{Key: key, Peer: "ipfront NAT (" + c.String() + ")", Workload: "TCP connections"}
	ipf, err := e.startIPFront(ctx, key, c)
	if err != nil {
		r.Err = err
		return r
	}
	defer ipf.p.stop(10 * time.Second)
	if _, err := e.t.placement(placeRPS); err != nil {
		r.Err = err
		return r
	}
	e.natConnRun(ctx, conns, []int{ipf.p.pid()}, &r)
	if err := ipf.p.stop(10 * time.Second); err != nil && r.Err == nil {
		r.Err = err
	}
	return r
}

// dnatConns measures real TCP connections through nftables DNAT.
func (e *env) dnatConns(ctx context.Context, conns int) (r rateResult) {
	r = rateResult{Key: "nat-tcp-dnat", Peer: "nftables DNAT + conntrack (jhash map, 16 servers)", Workload: "TCP connections"}
	if r.Skipped = nftMissing(); r.Skipped != "" {
		return r
	}
	undo, err := e.nftDNATOn(nftDNATRules(e.t, e.t.servers, ""))
	if err != nil {
		r.Err = err
		return r
	}
	defer undo()
	e.natConnRun(ctx, conns, nil, &r)
	return r
}

// natConnTargets are issue 8's new-connection rows: ipfront NAT (busy
// polling) sets up more new flows per second than nftables DNAT + conntrack
// (SYNs) and completes more real TCP connections per second.
func natConnTargets(syn []pktResult, tcp []rateResult) []target {
	var ts []target
	ipf, dnat := find(syn, "ipfront-nat-syn-busy"), find(syn, "nat-syn-dnat")
	m, known := "n/a", ipf != nil && dnat != nil
	if known {
		m = fmt.Sprintf("%s vs %s k new flows/s (translated SYNs delivered, x%s)%s", kpps(ipf.DelivPPS()), kpps(dnat.DelivPPS()), ratio(ipf, dnat), roundsOf(ipf))
	}
	ts = append(ts, target{`ipfront forwarding = "nat" (busy_poll=true) sets up more new flows/s than nftables DNAT + conntrack (one SYN per flow, one core each)`,
		m, verdict(known && ipf.DelivPPS() > dnat.DelivPPS(), known)})
	a, b := findRate(tcp, "ipfront-nat-tcp-busy"), findRate(tcp, "nat-tcp-dnat")
	m, known = "n/a", a.ok() && b.ok()
	if known {
		m = fmt.Sprintf("%.0f vs %.0f connections/s (x%.2f)%s", a.PerSec(), b.PerSec(), safeDiv(a.PerSec(), b.PerSec()), rateRounds(a))
	}
	ts = append(ts, target{`ipfront forwarding = "nat" (busy_poll=true) >= nftables DNAT + conntrack in real TCP connections/s (SYN..FIN, both directions translated, one core each)`,
		m, verdict(known && a.PerSec() >= b.PerSec(), known)})
	return ts
}

// findRate returns the rate result with key, or nil.
func findRate(rs []rateResult, key string) *rateResult {
	for i := range rs {
		if rs[i].Key == key {
			return &rs[i]
		}
	}
	return nil
}

// rateRounds says which rounds a median rate comes from.
func rateRounds(r *rateResult) string {
	if r.Rounds > 1 {
		return fmt.Sprintf(", medians of %d interleaved rounds", r.Rounds)
	}
	return ""
}

// natConnSection writes the new-connection tables.
func natConnSection(w *strings.Builder, r *results) {
	fmt.Fprintf(w, "\n### New connections through the NAT: ipfront against nftables DNAT + conntrack\n\n")
	if len(r.natSyn) == 0 && len(r.natTCP) == 0 {
		fmt.Fprintf(w, "Not measured in this run (see \"Steps that failed\").\n")
		return
	}
	fmt.Fprintf(w, "One core each (as in \"One core each\"): the generator or the client and servers pinned to core %d, ipfront's\n", genCPU)
	fmt.Fprintf(w, "worker on core %d, the kernel's NAT on core %d by RPS. **New flows**: one TCP SYN per flow, %s flows, into a fresh\n", dutCPU, dutCPU, flowsOf(r.natSyn))
	fmt.Fprintf(w, "daemon or an empty conntrack table (nf_conntrack_max and the hash raised for the run, see \"Reproduce\"); every SYN the\n")
	fmt.Fprintf(w, "sinks count was translated by a connection the peer set up, so delivered SYNs/s is new connections/s.%s\n\n", roundsNote(r.natSyn))
	fmt.Fprintf(w, "| peer | SYNs sent | delivered | new flows/s | drops | core %d s/Mpkt | core %d s/Mpkt |\n|---|---:|---:|---:|---:|---:|---:|\n", dutCPU, genCPU)
	for i := range r.natSyn {
		s := &r.natSyn[i]
		if st := status(s); st != "" {
			fmt.Fprintf(w, "| %s | %s | | | | | |\n", s.Peer, st)
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %d | **%.0f** | %d (%.1f%%) | %s | %s |\n", s.Peer, s.Sent, s.Deliv, s.DelivPPS(), s.Drops(),
			100*safeDiv(float64(s.Drops()), float64(s.Sent)), f2(s.perMpkt(s.Use.Core)), f2(s.perMpkt(s.Use.Machine-s.Use.Core)))
	}
	for i := range r.natSyn {
		if s := &r.natSyn[i]; len(s.RoundPPS) > 1 && s.Err == nil {
			var each []string
			for _, v := range s.RoundPPS {
				each = append(each, fmt.Sprintf("%.0f", v))
			}
			fmt.Fprintf(w, "\n- %s: new flows/s per round %s", s.Peer, strings.Join(each, ", "))
		}
	}
	fmt.Fprintf(w, "\n\n**Real TCP connections**: `iplab tcp` from the client (address %s, off the servers' subnet, so the servers'\n", natClientIP)
	fmt.Fprintf(w, "replies come back through the DUT) to `iplab serve` on the 16 servers through the VIP, %d at a time, each\n", natParallel)
	fmt.Fprintf(w, "SYN, greeting, 64-byte echo verified, FIN; both directions translated by the peer.%s\n\n", rateRoundsNote(r.natTCP))
	rateTable(w, r.natTCP)
}

// rateRoundsNote says how many interleaved rounds each rate row is the
// median of.
func rateRoundsNote(rs []rateResult) string {
	for _, r := range rs {
		if r.Rounds > 1 {
			return fmt.Sprintf(" Every peer ran %d times, in turn with the others; each row is its median round.", r.Rounds)
		}
	}
	return ""
}

// rateTable writes rate rows: completions, failures, per second, Mbit/s,
// DUT process CPU per 1000 and every round.
func rateTable(w *strings.Builder, rs []rateResult) {
	fmt.Fprintf(w, "| peer | workload | completed | failed | per second | payload Mbit/s | seconds |\n|---|---|---:|---:|---:|---:|---:|\n")
	for i := range rs {
		x := &rs[i]
		switch {
		case x.Skipped != "":
			fmt.Fprintf(w, "| %s | %s | skipped: %s | | | | |\n", x.Peer, x.Workload, x.Skipped)
		case x.Err != nil && x.N == 0:
			fmt.Fprintf(w, "| %s | %s | FAILED: %s | | | | |\n", x.Peer, x.Workload, oneLine(x.Err.Error()))
		default:
			ps, mb := "**"+fmt.Sprintf("%.0f", x.PerSec())+"**", fmt.Sprintf("%.0f", x.Mbps())
			if strings.Contains(x.Workload, "transfer") {
				ps, mb = "", "**"+mb+"**"
			}
			fmt.Fprintf(w, "| %s | %s | %d | %d | %s | %s | %.2f |\n", x.Peer, x.Workload, x.N, x.Failed, ps, mb, x.Seconds)
		}
	}
	for i := range rs {
		if rs[i].Note != "" {
			fmt.Fprintf(w, "\n- %s, %s: %s", rs[i].Peer, rs[i].Workload, oneLine(rs[i].Note))
		}
	}
	for i := range rs {
		if len(rs[i].Each) > 1 {
			var each []string
			for _, v := range rs[i].Each {
				each = append(each, fmt.Sprintf("%.0f", v))
			}
			unit := "per second"
			if strings.Contains(rs[i].Workload, "transfer") {
				unit = "Mbit/s"
			}
			fmt.Fprintf(w, "\n- %s, %s: %s per round %s", rs[i].Peer, rs[i].Workload, unit, strings.Join(each, ", "))
		}
	}
	fmt.Fprintln(w)
}
