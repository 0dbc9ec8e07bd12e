package config_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/slowpath/config"
)

// TestEncapKeys: forwarding "ipip" and "gue" take outer source prefixes
// (one per family), gue_port (default 6080) and encap_mtu (default 1500),
// and an IPv6 server may serve an IPv4 VIP (and the reverse).
func TestEncapKeys(t *testing.T) {
	srv := "  [[target_set.server]]\n  address = \"203.0.113.21\"\n  [[target_set.server]]\n  address = \"2001:db8:21::21\"\n"
	for _, tc := range []struct {
		keys     string
		fwd      string
		port     int
		mtu      int
		prefixes []string
	}{
		{`forwarding = "ipip"` + "\n" + `encap_source = ["198.51.100.0/24", "2001:db8:e::/64"]` + "\n", config.ForwardIPIP, 0, 1500,
			[]string{"198.51.100.0/24", "2001:db8:e::/64"}},
		{`forwarding = "gue"` + "\n" + `encap_source = ["2001:db8:e::/64", "198.51.100.7/32"]` + "\n", config.ForwardGUE, 6080, 1500,
			[]string{"2001:db8:e::/64", "198.51.100.7/32"}},
		{`forwarding = "gue"` + "\n" + `gue_port = 5555` + "\n" + `encap_mtu = 9000` + "\n" + `encap_source = ["198.51.100.0/24", "2001:db8:e::/64"]` + "\n",
			config.ForwardGUE, 5555, 9000, []string{"198.51.100.0/24", "2001:db8:e::/64"}},
	} {
		s, err := config.Parse("test.toml", []byte(natSetHead+tc.keys+srv))
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.keys, err)
		}
		ts := &s.TargetSets[0]
		if ts.Forwarding != tc.fwd || ts.GUEPort != tc.port || ts.EncapMTU != tc.mtu || !ts.Encapsulates() {
			t.Errorf("Parse(%q) = forwarding %q, gue_port %d, encap_mtu %d; want %q, %d, %d", tc.keys, ts.Forwarding, ts.GUEPort, ts.EncapMTU, tc.fwd, tc.port, tc.mtu)
		}
		var got []string
		for _, p := range ts.EncapSources {
			got = append(got, p.String())
		}
		if strings.Join(got, " ") != strings.Join(tc.prefixes, " ") {
			t.Errorf("Parse(%q).EncapSources = %v, want %v", tc.keys, got, tc.prefixes)
		}
		if p, ok := ts.EncapSource(netip.MustParseAddr("203.0.113.21")); !ok || !p.Addr().Is4() {
			t.Errorf("EncapSource(IPv4 server) = %v, %v; want the IPv4 prefix", p, ok)
		}
	}
}

// TestEncapErrors: every misuse of the encapsulation keys is an error at the
// offending value's position, with a hint.
func TestEncapErrors(t *testing.T) {
	srv4 := "  [[target_set.server]]\n  address = \"203.0.113.21\"\n"
	srv6 := "  [[target_set.server]]\n  address = \"2001:db8:21::21\"\n"
	for _, tc := range []struct {
		name, keys string
		want       []wantErr
	}{
		{"no source for the servers' family", `forwarding = "ipip"` + "\n" + `encap_source = ["2001:db8:e::/64"]` + "\n" + srv4,
			[]wantErr{{11, 13, `target_set[0].server[0].address: server 203.0.113.21 is IPv4 and the set has no IPv4 encap_source (hint: add encap_source = ["198.51.100.0/24"]`}}},
		{"no source at all", `forwarding = "gue"` + "\n" + srv6,
			[]wantErr{{10, 13, `server 2001:db8:21::21 is IPv6 and the set has no IPv6 encap_source`}}},
		{"two IPv4 prefixes", `forwarding = "ipip"` + "\n" + `encap_source = ["198.51.100.0/24", "203.0.113.0/24"]` + "\n" + srv4,
			[]wantErr{{9, 36, `target_set[0].encap_source[1]: a second IPv4 prefix 203.0.113.0/24 (hint: list one IPv4 and one IPv6 prefix at most)`}}},
		{"host bits", `forwarding = "ipip"` + "\n" + `encap_source = ["198.51.100.1/24"]` + "\n" + srv4,
			[]wantErr{{9, 17, `prefix 198.51.100.1/24 has host bits set (hint: write 198.51.100.0/24)`}}},
		{"not a prefix", `forwarding = "ipip"` + "\n" + `encap_source = ["198.51.100.1"]` + "\n" + srv4,
			[]wantErr{{9, 17, `invalid prefix "198.51.100.1" (hint: write a single address with its length: "198.51.100.1/32")`}}},
		{"gue_port on ipip", `forwarding = "ipip"` + "\n" + `gue_port = 6080` + "\n" + `encap_source = ["198.51.100.0/24"]` + "\n" + srv4,
			[]wantErr{{9, 12, `target_set[0].gue_port: gue_port applies only to forwarding = "gue"`}}},
		{"gue_port out of range", `forwarding = "gue"` + "\n" + `gue_port = 0` + "\n" + `encap_source = ["198.51.100.0/24"]` + "\n" + srv4,
			[]wantErr{{9, 12, `target_set[0].gue_port: gue_port 0 is out of range (hint: gue_port is 1..65535)`}}},
		{"encap_mtu too small", `forwarding = "gue"` + "\n" + `encap_mtu = 576` + "\n" + `encap_source = ["198.51.100.0/24"]` + "\n" + srv4,
			[]wantErr{{9, 13, `target_set[0].encap_mtu: encap_mtu 576 is out of range (hint: encap_mtu is 1280..9216)`}}},
		{"encap keys on a DSR set", `encap_source = ["198.51.100.0/24"]` + "\n" + `encap_mtu = 1500` + "\n" + srv4,
			[]wantErr{{8, 16, `target_set[0].encap_source: encap_source applies only to a set with forwarding = "ipip" or "gue" (hint: add forwarding = "ipip" or "gue", or remove the key)`},
				{9, 13, `target_set[0].encap_mtu: encap_mtu applies only`}}},
		{"DSR across IP versions is still refused", srv6,
			[]wantErr{{9, 13, `(hint: with DSR a server has the VIP's IP version`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := parseErrors(t, natSetHead+tc.keys)
		next:
			for _, w := range tc.want {
				for _, e := range errs {
					if e.Line == w.line && e.Column == w.col && strings.Contains(e.Error(), w.text) {
						continue next
					}
				}
				t.Errorf("errors:\n%v\nwant one at %d:%d containing %q", errs, w.line, w.col, w.text)
			}
		})
	}
}
