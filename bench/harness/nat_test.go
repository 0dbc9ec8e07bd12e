//go:build linux

package main

import (
	"errors"
	"strings"
	"testing"
)

// TestNATTargets: the NAT rows are judged on the right runs (pps on ipfront
// with busy polling against nftables DNAT as fast as the generator goes, CPU
// on ipfront without busy polling against nftables DNAT at the same offered
// load, both cores' busy time per delivered frame), and a peer that failed
// or was skipped leaves its row "not measured" rather than met or not met.
func TestNATTargets(t *testing.T) {
	run := func(key string, deliv uint64, machineSec float64) pktResult {
		r := pktResult{Key: key, Deliv: deliv, Sent: deliv, Elapsed: 1}
		r.Use.Machine = machineSec
		// The DUT process's own time is not what decides one core each.
		r.Use.DUT = 100 - machineSec
		return r
	}
	cases := []struct {
		name     string
		nat, cpu []pktResult
		pps, ci  string
	}{
		{"ipfront ahead", []pktResult{run("ipfront-nat-busy", 2e6, 1), run("nat-dnat", 1e6, 0.5)},
			[]pktResult{run("nat-cpu-ipfront-nobusy", 1e5, 0.2), run("nat-cpu-dnat", 1e5, 0.5)}, "met", "met"},
		{"ipfront behind", []pktResult{run("ipfront-nat-busy", 1e6, 1), run("nat-dnat", 2e6, 0.5)},
			[]pktResult{run("nat-cpu-ipfront-nobusy", 1e5, 0.9), run("nat-cpu-dnat", 1e5, 0.5)}, "**not met**", "**not met**"},
		{"no runs", nil, nil, "not measured", "not measured"},
		{"dnat skipped", []pktResult{run("ipfront-nat-busy", 2e6, 1), {Key: "nat-dnat", Skipped: "nft not installed"}},
			[]pktResult{run("nat-cpu-ipfront-nobusy", 1e5, 0.2), {Key: "nat-cpu-dnat", Skipped: "nft not installed"}}, "not measured", "not measured"},
		{"no-busy failed", []pktResult{run("ipfront-nat-busy", 2e6, 1), run("nat-dnat", 1e6, 0.5)},
			[]pktResult{{Key: "nat-cpu-ipfront-nobusy", Err: errors.New("boom")}, run("nat-cpu-dnat", 1e5, 0.5)}, "met", "not measured"},
	}
	for _, c := range cases {
		ts := natTargets(c.nat, c.cpu)
		if len(ts) != 2 {
			t.Fatalf("%s: natTargets = %d rows, want 2", c.name, len(ts))
		}
		if ts[0].verdict != c.pps || ts[1].verdict != c.ci {
			t.Errorf("%s: natTargets verdicts = %q, %q, want %q, %q", c.name, ts[0].verdict, ts[1].verdict, c.pps, c.ci)
		}
	}
}

// TestNATServerCmds: turning a server into a NAT server and back removes and
// restores the VIP on its loopback and adds and removes the default route via
// the DUT, so the DSR steps after the NAT table find the servers as before.
func TestNATServerCmds(t *testing.T) {
	s := host{role: "s1", ifname: "veth-s1"}
	on := natServerCmds(s, "192.0.2.10", "198.51.100.1", true)
	off := natServerCmds(s, "192.0.2.10", "198.51.100.1", false)
	for _, want := range []string{"addr del 192.0.2.10/32 dev lo\n", "route replace default via 198.51.100.1 dev veth-s1\n"} {
		if !strings.Contains(on, want) {
			t.Errorf("natServerCmds(on) = %q, want a line %q", on, want)
		}
	}
	for _, want := range []string{"addr add 192.0.2.10/32 dev lo\n", "route del default\n"} {
		if !strings.Contains(off, want) {
			t.Errorf("natServerCmds(off) = %q, want a line %q", off, want)
		}
	}
}
