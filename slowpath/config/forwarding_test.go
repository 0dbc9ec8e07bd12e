package config_test

import (
	"strings"
	"testing"

	"github.com/ipfront/ipfront/slowpath/config"
)

// natSetHead is a target set header; tests append keys and a server.
const natSetHead = `[dataplane]
interfaces = ["eth0", "eth1"]

[[target_set]]
name = "web"
address = "192.0.2.10"
ports = ["80"]
`

// TestForwardingKeys: forwarding is "dsr" by default and may be "nat".
func TestForwardingKeys(t *testing.T) {
	for _, tc := range []struct{ keys, want string }{
		{"", config.ForwardDSR},
		{`forwarding = "dsr"` + "\n", config.ForwardDSR},
		{`forwarding = "nat"` + "\n", config.ForwardNAT},
	} {
		s, err := config.Parse("test.toml", []byte(natSetHead+tc.keys+"  [[target_set.server]]\n  address = \"198.51.100.11\"\n"))
		if err != nil {
			t.Fatalf("Parse(%q): %v", tc.keys, err)
		}
		if got := s.TargetSets[0].Forwarding; got != tc.want || s.TargetSets[0].Helper != "" {
			t.Errorf("Parse(%q): Forwarding %q, Helper %q; want %q, none", tc.keys, got, s.TargetSets[0].Helper, tc.want)
		}
	}
}

// TestForwardingErrors: every misuse is an error at the offending value's
// position, with a hint.
func TestForwardingErrors(t *testing.T) {
	srv := "  [[target_set.server]]\n  address = \"198.51.100.11\"\n"
	for _, tc := range []struct {
		name, keys string
		want       []wantErr
	}{
		{"unknown strategy", `forwarding = "nta"` + "\n" + srv,
			[]wantErr{{8, 14, `target_set[0].forwarding: unknown value "nta" (hint: did you mean "nat"?)`}}},
		{"helper on a DSR set", `helper = "ftp"` + "\n" + `passive_ports = ["30000-30099"]` + "\n" + srv,
			[]wantErr{{8, 10, `target_set[0].helper: helper "ftp" needs forwarding = "nat" (hint: add forwarding = "nat"`}}},
		{"unknown helper", `forwarding = "nat"` + "\n" + `helper = "tftp"` + "\n" + srv,
			[]wantErr{{9, 10, `target_set[0].helper: unknown value "tftp" (hint: did you mean "ftp"?)`}}},
		{"NAT server on the VIP", `forwarding = "nat"` + "\n" + "  [[target_set.server]]\n  address = \"192.0.2.10\"\n",
			[]wantErr{{10, 13, `target_set[0].server[0].address: server address 192.0.2.10 is the VIP (hint: with NAT ipfront holds the VIP`}}},
		{"NAT across IP versions", `forwarding = "nat"` + "\n" + "  [[target_set.server]]\n  address = \"2001:db8::11\"\n",
			[]wantErr{{10, 13, `(hint: NAT does not translate between IP versions`}}},
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
