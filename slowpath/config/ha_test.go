package config_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/slowpath/config"
)

// haBase is bgpBase with the hash_seed mated instances need.
var haBase = strings.Replace(bgpBase, "[dataplane]\n", "[dataplane]\nhash_seed = \"mated-pair-secret-1\"\n", 1)

// TestHAParse: [ha] reads into the Spec; without it replication is off.
func TestHAParse(t *testing.T) {
	s, err := config.Parse("test.toml", []byte(haBase+`
[ha]
listen = "198.51.100.1:9190"
mates = ["198.51.100.3:9190", "[2001:db8:100::3]:9191"]
key_file = "/etc/ipfront/ha.key"
`))
	if err != nil {
		t.Fatal(err)
	}
	h := s.HA
	want := []netip.AddrPort{netip.MustParseAddrPort("198.51.100.3:9190"), netip.MustParseAddrPort("[2001:db8:100::3]:9191")}
	if !h.Enabled || h.Listen != netip.MustParseAddrPort("198.51.100.1:9190") || len(h.Mates) != 2 ||
		h.Mates[0] != want[0] || h.Mates[1] != want[1] || h.KeyFile != "/etc/ipfront/ha.key" {
		t.Errorf("HA = %+v, want listen 198.51.100.1:9190, mates %v, key file /etc/ipfront/ha.key", h, want)
	}
	s, err = config.Parse("test.toml", []byte(bgpBase))
	if err != nil || s.HA.Enabled {
		t.Errorf("without [ha]: HA = %+v, %v; want disabled", s.HA, err)
	}
}

// TestHAErrors: each mistake is reported at its key.
func TestHAErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"listen = \"198.51.100.1\"\nmates = [\"198.51.100.3:9190\"]\nkey_file = \"k\"", "test.toml:12:10: ha.listen: listen \"198.51.100.1\" is not an address and port"},
		{"listen = \"198.51.100.1:9190\"\nkey_file = \"k\"", "mates"},
		{"listen = \"198.51.100.1:9190\"\nmates = [\"198.51.100.1:9190\"]\nkey_file = \"k\"", "is this instance's listen address"},
		{"listen = \"198.51.100.1:9190\"\nmates = [\"198.51.100.3:9190\", \"198.51.100.3:9190\"]\nkey_file = \"k\"", "listed twice"},
		{"listen = \"0.0.0.0:9190\"\nmates = [\"198.51.100.3:9190\"]\nkey_file = \"k\"", "not a unicast address"},
		{"listen = \"198.51.100.1:9190\"\nmates = [\"198.51.100.3:9190\"]\nkey_file = \"k\"\nsecret = \"x\"", "secret"},
	} {
		_, err := config.Parse("test.toml", []byte(haBase+"\n[ha]\n"+tc.body+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse([ha] %q) = %v, want an error containing %q", tc.body, err, tc.want)
		}
	}
}

// TestHANeedsHashSeed: mated instances must hash flows alike, so [ha]
// without [dataplane] hash_seed is refused (each machine would derive its
// own seed).
func TestHANeedsHashSeed(t *testing.T) {
	_, err := config.Parse("test.toml", []byte(bgpBase+"\n[ha]\nlisten = \"198.51.100.1:9190\"\nmates = [\"198.51.100.3:9190\"]\nkey_file = \"k\"\n"))
	if err == nil || !strings.Contains(err.Error(), "needs [dataplane] hash_seed") {
		t.Errorf("[ha] without hash_seed: %v, want an error asking for hash_seed", err)
	}
}
