package config_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/slowpath/config"
)

// sigHead is a set head without ports, for the signalling tests.
const sigHead = `[dataplane]
interfaces = ["eth0"]

[[target_set]]
name = "dra"
address = "192.0.2.10"
`

// TestSignallingKeys: secondary_address, diameter and mode are read; an
// initiator-only set needs no listening ports and gets no health check by
// default; mode defaults to responder.
func TestSignallingKeys(t *testing.T) {
	src := sigHead + `protocols = ["tcp", "sctp"]
secondary_address = "192.0.2.11"
diameter = true
mode = "initiator"
  [[target_set.server]]
  address = "198.51.100.1"
  owned_ports = ["40000-40099"]
  [[target_set.server]]
  address = "198.51.100.2"
  owned_ports = ["40100-40199"]
`
	s, err := config.Parse("test.toml", []byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	ts := &s.TargetSets[0]
	if ts.SecondaryAddress != netip.MustParseAddr("192.0.2.11") || !ts.Diameter || ts.Mode != config.ModeInitiator || !ts.Initiates() {
		t.Errorf("Parse = secondary %v, diameter %v, mode %q; want 192.0.2.11, true, initiator", ts.SecondaryAddress, ts.Diameter, ts.Mode)
	}
	if ts.Health.Type != config.HealthNone {
		t.Errorf("Parse(initiator set without ports).Health.Type = %q, want %q", ts.Health.Type, config.HealthNone)
	}
	s, err = config.Parse("test.toml", []byte(sigHead+"ports = [\"3868\"]\n  [[target_set.server]]\n  address = \"198.51.100.1\"\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if ts := &s.TargetSets[0]; ts.Mode != "" || ts.Initiates() || ts.Diameter || ts.SecondaryAddress.IsValid() {
		t.Errorf("Parse(no signalling keys) = mode %q, diameter %v, secondary %v; want \"\" (responder), false, none", ts.Mode, ts.Diameter, ts.SecondaryAddress)
	}
}

// TestSignallingErrors: the port plan of an initiating set and misuse of
// the signalling keys are errors at the offending value, with a hint.
func TestSignallingErrors(t *testing.T) {
	srv := func(addr, owned string) string {
		s := "  [[target_set.server]]\n  address = \"" + addr + "\"\n"
		if owned != "" {
			s += "  owned_ports = [\"" + owned + "\"]\n"
		}
		return s
	}
	for _, tc := range []struct {
		name, src string
		want      []wantErr
	}{
		{"owned range overlaps a listening port", `ports = ["3868", "40050"]` + "\n" + `mode = "initiator_responder"` + "\n" + srv("198.51.100.1", "40000-40099"),
			[]wantErr{{11, 18, `owned range 40000-40099 overlaps listening ports[1] (40050) in 40050 (hint: an initiating set's servers open connections from owned ports outside its listening ports`}}},
		{"owned ranges not disjoint", `ports = ["3868"]` + "\n" + `mode = "initiator_responder"` + "\n" + srv("198.51.100.1", "40000-40099") + srv("198.51.100.2", "40099-40199"),
			[]wantErr{{14, 18, `owned range 40099-40199 overlaps server[0] "198.51.100.1"'s owned_ports[0] (40000-40099) in 40099`}}},
		{"a server without owned ports", `mode = "initiator"` + "\n" + srv("198.51.100.1", "40000-40099") + srv("198.51.100.2", ""),
			[]wantErr{{11, 3, `mode "initiator" needs owned_ports on every server; server "198.51.100.2" has none`}}},
		{"unknown mode", `ports = ["3868"]` + "\n" + `mode = "client"` + "\n" + srv("198.51.100.1", ""),
			[]wantErr{{8, 8, `mode`}}},
		{"secondary of the other family", `ports = ["3868"]` + "\n" + `secondary_address = "2001:db8::11"` + "\n" + srv("198.51.100.1", ""),
			[]wantErr{{8, 21, `secondary address 2001:db8::11 is IPv6 but the VIP 192.0.2.10 is IPv4`}}},
		{"secondary is the VIP", `ports = ["3868"]` + "\n" + `secondary_address = "192.0.2.10"` + "\n" + srv("198.51.100.1", ""),
			[]wantErr{{8, 21, `secondary address 192.0.2.10 is the VIP itself`}}},
		{"diameter on UDP", `ports = ["3868"]` + "\n" + `protocols = ["udp", "tcp"]` + "\n" + `diameter = true` + "\n" + srv("198.51.100.1", ""),
			[]wantErr{{9, 12, `diameter = true applies to TCP and SCTP; the set also lists udp`}}},
		{"secondary is another set's VIP", `ports = ["3868"]` + "\n" + `secondary_address = "192.0.2.20"` + "\n" + srv("198.51.100.1", "") +
			"[[target_set]]\nname = \"other\"\naddress = \"192.0.2.20\"\nports = [\"3868\"]\n" + srv("198.51.100.2", ""),
			[]wantErr{{8, 21, `is already served by target_set[1] "other"`}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := parseErrors(t, sigHead+tc.src)
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
