package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

const bgpBase = `[dataplane]
interfaces = ["eth1"]

[[target_set]]
name = "web"
address = "192.0.2.10"
  [[target_set.server]]
  address = "198.51.100.11"
`

// TestBGPParse: a full [bgp] table reads into the Spec with its defaults
// applied where keys are left out.
func TestBGPParse(t *testing.T) {
	s, err := config.Parse("test.toml", []byte(bgpBase+`
[bgp]
asn = 4200000000
router_id = "198.51.100.1"
med = 20
communities = ["64512:100", "no-export"]
drain_time = "2s"

[[bgp.neighbor]]
address = "198.51.100.254"
asn = 64500
hold_time = "9s"
password = "secret"

[[bgp.neighbor]]
address = "2001:db8:100::fe"
asn = 64500
`))
	if err != nil {
		t.Fatal(err)
	}
	b := s.BGP
	if !b.Enabled || b.ASN != 4200000000 || b.RouterID.String() != "198.51.100.1" || b.Mode != config.BGPSpeaker {
		t.Errorf("BGP = %+v, want enabled speaker AS 4200000000 id 198.51.100.1", b)
	}
	if !b.MEDSet || b.MED != 20 || b.DrainTime != 2*time.Second || b.ListenPort != 179 || b.KernelTable != config.DefaultKernelTable {
		t.Errorf("BGP MED/drain/listen/table = %v %d %s %d %d, want true 20 2s 179 %d", b.MEDSet, b.MED, b.DrainTime, b.ListenPort, b.KernelTable, config.DefaultKernelTable)
	}
	if len(b.Communities) != 2 || b.Communities[0] != 64512<<16|100 || b.Communities[1] != 0xFFFFFF01 {
		t.Errorf("Communities = %#x, want [64512:100 no-export]", b.Communities)
	}
	if len(b.Neighbors) != 2 || b.Neighbors[0].HoldTime != 9*time.Second || b.Neighbors[0].Password != "secret" ||
		b.Neighbors[1].HoldTime != config.DefaultHoldTime || b.Neighbors[1].Address.String() != "2001:db8:100::fe" {
		t.Errorf("Neighbors = %+v", b.Neighbors)
	}

	s, err = config.Parse("test.toml", []byte(bgpBase))
	if err != nil || s.BGP.Enabled {
		t.Errorf("Parse(no [bgp]) = %+v, %v; want BGP disabled", s.BGP, err)
	}
	s, err = config.Parse("test.toml", []byte(bgpBase+"[bgp]\nasn = 64512\nmode = \"kernel\"\nkernel_table = 200\n"))
	if err != nil || s.BGP.Mode != config.BGPKernel || s.BGP.KernelTable != 200 {
		t.Errorf("Parse(kernel mode) = %+v, %v; want kernel table 200", s.BGP, err)
	}
}

// TestBGPErrors: each mistake is reported at its key with file:line:column.
func TestBGPErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []wantErr
	}{{
		name: "missing asn and router_id, no neighbour",
		src:  "[bgp]\nmode = \"speaker\"\n",
		want: []wantErr{
			{10, 1, "bgp.asn: required key is missing"},
			{10, 1, "router_id is required in speaker mode"},
			{10, 1, "speaker mode needs at least one neighbour"},
		},
	}, {
		name: "out of range values",
		src: `[bgp]
asn = 0
router_id = "2001:db8::1"
med = -1
drain_time = "1h"
kernel_table = 254
communities = ["65536:1", "x"]
[[bgp.neighbor]]
address = "198.51.100.254"
asn = 4294967296
hold_time = "2s"
[[bgp.neighbor]]
address = "198.51.100.254"
asn = 1
mode = "x"
`,
		want: []wantErr{
			{11, 7, "bgp.asn: asn 0 is out of range"},
			{12, 13, "router_id 2001:db8::1 is not a non-zero IPv4 address"},
			{13, 7, "bgp.med: med -1 is out of range"},
			{14, 14, "drain_time 1h0m0s is out of range"},
			{15, 16, "table 254 is the host's own"},
			{16, 16, `invalid community "65536:1"`},
			{16, 27, `invalid community "x"`},
			{19, 7, "asn 4294967296 is out of range"},
			{20, 13, "hold_time 2s is out of range"},
			{22, 11, "neighbour 198.51.100.254 is already bgp.neighbor[0]"},
			{24, 1, "bgp.neighbor[1].mode: unknown key"},
		},
	}, {
		name: "neighbours in kernel mode",
		src:  "[bgp]\nasn = 64512\nmode = \"kernel\"\n[[bgp.neighbor]]\naddress = \"198.51.100.254\"\nasn = 1\n",
		want: []wantErr{{13, 1, "neighbours are for mode"}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := parseErrors(t, bgpBase+"\n"+tt.src)
			if len(errs) != len(tt.want) {
				t.Fatalf("Parse() = %d errors, want %d:\n%v", len(errs), len(tt.want), errs)
			}
			for i, w := range tt.want {
				e := errs[i]
				if e.Line != w.line || e.Column != w.col || !strings.Contains(e.Error(), w.text) {
					t.Errorf("error %d = %d:%d %q, want %d:%d containing %q", i, e.Line, e.Column, e.Error(), w.line, w.col, w.text)
				}
			}
		})
	}
}

// TestBGPNeedsRestart: a reload that changes [bgp] (or adds it) names the
// keys, so the daemon refuses it instead of silently keeping the sessions.
func TestBGPNeedsRestart(t *testing.T) {
	old, err := config.Parse("a.toml", []byte(bgpBase))
	if err != nil {
		t.Fatal(err)
	}
	src := bgpBase + "[bgp]\nasn = 64512\nmode = \"kernel\"\n"
	next, err := config.Parse("b.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := config.RestartKeys(old, next); strings.Join(got, ",") != "bgp" {
		t.Errorf("RestartKeys(no bgp, bgp) = %q, want [bgp]", got)
	}
	third, err := config.Parse("c.toml", []byte(strings.Replace(src, "64512", "64513", 1)+"drain_time = \"1s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := config.RestartKeys(next, third); strings.Join(got, ",") != "bgp.asn,bgp.drain_time" {
		t.Errorf("RestartKeys(asn and drain_time changed) = %q, want [bgp.asn bgp.drain_time]", got)
	}
}
