//go:build linux

package main

import (
	"errors"
	"strings"
	"testing"
)

// TestNATConnTargets: the new-connection rows compare ipfront's SYN run with
// nftables DNAT's and the real-TCP connections/s of both, and a peer that
// failed or was skipped leaves its row "not measured".
func TestNATConnTargets(t *testing.T) {
	syn := func(key string, deliv uint64) pktResult {
		return pktResult{Key: key, Deliv: deliv, Sent: deliv, Elapsed: 1}
	}
	conn := func(key string, n int) rateResult {
		return rateResult{Key: key, Workload: "TCP connections", N: n, Seconds: 1}
	}
	cases := []struct {
		name       string
		syn        []pktResult
		tcp        []rateResult
		synV, tcpV string
	}{
		{"ipfront ahead", []pktResult{syn("ipfront-nat-syn-busy", 2e5), syn("nat-syn-dnat", 1e5)},
			[]rateResult{conn("ipfront-nat-tcp-busy", 3000), conn("nat-tcp-dnat", 2000)}, "met", "met"},
		{"ipfront behind", []pktResult{syn("ipfront-nat-syn-busy", 1e5), syn("nat-syn-dnat", 2e5)},
			[]rateResult{conn("ipfront-nat-tcp-busy", 1000), conn("nat-tcp-dnat", 2000)}, "**not met**", "**not met**"},
		{"nothing", nil, nil, "not measured", "not measured"},
		{"dnat skipped, ipfront failed", []pktResult{syn("ipfront-nat-syn-busy", 2e5), {Key: "nat-syn-dnat", Skipped: "no nft"}},
			[]rateResult{{Key: "ipfront-nat-tcp-busy", Err: errors.New("boom")}, conn("nat-tcp-dnat", 2000)}, "not measured", "not measured"},
	}
	for _, c := range cases {
		ts := natConnTargets(c.syn, c.tcp)
		if len(ts) != 2 {
			t.Fatalf("%s: natConnTargets = %d rows, want 2", c.name, len(ts))
		}
		if ts[0].verdict != c.synV || ts[1].verdict != c.tcpV {
			t.Errorf("%s: natConnTargets verdicts = %q, %q, want %q, %q", c.name, ts[0].verdict, ts[1].verdict, c.synV, c.tcpV)
		}
	}
}

// TestNATFTPTargets: every FTP workload (passive and active sessions/s and
// transfers) has its row, judged on sessions/s or on Mbit/s as the
// workload says, and a failed peer leaves it "not measured".
func TestNATFTPTargets(t *testing.T) {
	var rs []rateResult
	for _, w := range ftpWorkloads {
		a := rateResult{Key: "ipfront-ftp " + w.name, Workload: w.name, N: 100, Seconds: 1}
		b := rateResult{Key: "nft-ftp " + w.name, Workload: w.name, N: 50, Seconds: 1}
		if w.transfer {
			// ipfront moves fewer bytes in the same time: behind, although
			// its completions per second are higher.
			a.N, a.Bytes, b.N, b.Bytes = 2, 1e8, 1, 2e8
		}
		if w.active && w.transfer {
			a.Err = errors.New("curl failed")
		}
		rs = append(rs, a, b)
	}
	ts := natFTPTargets(rs)
	want := []string{"met", "met", "**not met**", "not measured"}
	if len(ts) != len(want) {
		t.Fatalf("natFTPTargets = %d rows, want %d", len(ts), len(want))
	}
	for i, w := range want {
		if ts[i].verdict != w {
			t.Errorf("natFTPTargets[%d] (%s) = %q, want %q", i, ts[i].what, ts[i].verdict, w)
		}
	}
}

// TestMedianRate: the median round is the middle one by rate, a failed round
// ranks lowest, and every round's rate is kept in order.
func TestMedianRate(t *testing.T) {
	runs := []rateResult{
		{Workload: "TCP connections", N: 300, Seconds: 1},
		{Workload: "TCP connections", Err: errors.New("boom"), N: 900, Seconds: 1},
		{Workload: "TCP connections", N: 100, Seconds: 1},
	}
	m := medianRate(runs)
	if m.N != 100 || m.Rounds != 3 {
		t.Errorf("medianRate = %d completed over %d rounds, want 100 over 3", m.N, m.Rounds)
	}
	if got := m.Each; len(got) != 3 || got[0] != 300 || got[1] != 0 || got[2] != 100 {
		t.Errorf("medianRate rounds = %v, want [300 0 100]", got)
	}
}

// TestNATClientCmds: the client gets its off-subnet address and sends to
// the VIP from it, the DUT routes that subnet via the client, and undoing
// puts the client's VIP route back as the other steps expect it.
func TestNATClientCmds(t *testing.T) {
	tp := &topo{vip: vip4, client: host{ifname: "veth-c", ip: clientIP}, lb: host{ifname: "veth-lb", ip: lbIP}}
	c, d := natClientCmds(tp, true)
	for _, want := range []string{"addr add 203.0.113.2/32 dev veth-c\n", "route replace 192.0.2.10/32 via 198.51.100.1 src 203.0.113.2\n"} {
		if !strings.Contains(c, want) {
			t.Errorf("natClientCmds(on) client = %q, want a line %q", c, want)
		}
	}
	if want := "route replace 203.0.113.0/24 via 198.51.100.2 dev veth-lb\n"; d != want {
		t.Errorf("natClientCmds(on) DUT = %q, want %q", d, want)
	}
	c, d = natClientCmds(tp, false)
	for _, want := range []string{"route replace 192.0.2.10/32 via 198.51.100.1\n", "addr del 203.0.113.2/32 dev veth-c\n"} {
		if !strings.Contains(c, want) {
			t.Errorf("natClientCmds(off) client = %q, want a line %q", c, want)
		}
	}
	if want := "route del 203.0.113.0/24\n"; d != want {
		t.Errorf("natClientCmds(off) DUT = %q, want %q", d, want)
	}
}

// TestParseOnly: -only takes known section names, comma-separated, and
// refuses an unknown one (a typo must not silently measure nothing); with no
// -only every section runs.
func TestParseOnly(t *testing.T) {
	m, err := parseOnly("nat, nat-ftp")
	if err != nil || !m["nat"] || !m["nat-ftp"] || len(m) != 2 {
		t.Errorf("parseOnly(\"nat, nat-ftp\") = %v, %v, want nat and nat-ftp", m, err)
	}
	p := params{only: m}
	if p.want("forwarding") || !p.want("nat-ftp") {
		t.Errorf("params{only: %v}.want: forwarding %v, nat-ftp %v, want false, true", m, p.want("forwarding"), p.want("nat-ftp"))
	}
	if _, err := parseOnly("nat,ftp"); err == nil {
		t.Errorf("parseOnly(\"nat,ftp\") = nil error, want one naming the unknown section")
	}
	if !(params{}).want("tcp") {
		t.Errorf("params{}.want(\"tcp\") = false, want true")
	}
}
