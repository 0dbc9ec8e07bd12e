package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

// TestHashSeed checks [dataplane] hash_seed: absent means a random seed per
// start, a string stands for its SHA-256 (so mated instances given the same
// string agree), an integer for itself; guessable seeds are warned about.
func TestHashSeed(t *testing.T) {
	tests := []struct {
		name, line string
		set        bool
		seed       uint64
		warn       string // a substring of the one warning, or "" for none
	}{
		{"absent", "", false, 0, ""},
		{"string", `hash_seed = "3f9c0e7a51d24b8e96a0c4d1f27b5e83"`, true, config.SeedOf("3f9c0e7a51d24b8e96a0c4d1f27b5e83"), ""},
		{"integer", "hash_seed = 8589934593", true, 8589934593, ""},
		{"short string", `hash_seed = "mate"`, true, config.SeedOf("mate"), "test.toml:3:13: warning: dataplane.hash_seed: hash_seed has 4 characters"},
		{"small integer", "hash_seed = 7", true, 7, "test.toml:3:13: warning: dataplane.hash_seed: hash_seed 7 has at most 32 bits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := config.Parse("test.toml", []byte("[dataplane]\ninterfaces = [\"eth1\"]\n"+tt.line+"\n"))
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			d := s.Dataplane
			if d.HashSeedSet != tt.set || d.HashSeed != tt.seed {
				t.Errorf("HashSeedSet, HashSeed = %v, %#x, want %v, %#x", d.HashSeedSet, d.HashSeed, tt.set, tt.seed)
			}
			switch {
			case tt.warn == "" && len(s.Warnings) > 0:
				t.Errorf("Warnings = %v, want none", s.Warnings)
			case tt.warn != "" && (len(s.Warnings) != 1 || !strings.HasPrefix(s.Warnings[0].Error(), tt.warn)):
				t.Errorf("Warnings = %v, want %s...", s.Warnings, tt.warn)
			}
		})
	}

	// Two strings differing in one character give unrelated seeds, and a
	// string's seed does not depend on the machine (a fixed value).
	if a, b := config.SeedOf("mated-pair-seed-a"), config.SeedOf("mated-pair-seed-b"); a == b {
		t.Errorf("SeedOf(...a) = SeedOf(...b) = %#x, want different seeds", a)
	}
	if got, want := config.SeedOf("abc"), uint64(0xeacf018fbf1678ba); got != want {
		t.Errorf("SeedOf(%q) = %#x, want %#x (SHA-256's first 8 bytes, little endian)", "abc", got, want)
	}
}

// TestResolveHashSeed checks the seed the data plane is started with: the
// configured one, else one of the machine's identity that a restart keeps,
// else (no machine-id) a random one that differs from start to start.
func TestResolveHashSeed(t *testing.T) {
	d := config.Dataplane{HashSeed: 42, HashSeedSet: true}
	if got, err := d.ResolveHashSeed(); err != nil || got != 42 {
		t.Errorf("ResolveHashSeed() with hash_seed 42 = %d, %v, want 42", got, err)
	}
	var unset config.Dataplane
	dir := t.TempDir()
	id := filepath.Join(dir, "machine-id")
	config.SetMachineIDPath(t, id)
	if err := os.WriteFile(id, []byte("0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a, errA := unset.ResolveHashSeed()
	b, errB := unset.ResolveHashSeed()
	if errA != nil || errB != nil || a != b {
		t.Errorf("ResolveHashSeed() twice on one machine = %#x (%v), %#x (%v); want one seed across restarts", a, errA, b, errB)
	}
	if err := os.WriteFile(id, []byte("fedcba9876543210fedcba9876543210\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, _ := unset.ResolveHashSeed(); c == a {
		t.Errorf("two machines got the same seed %#x", c)
	}
	config.SetMachineIDPath(t, filepath.Join(dir, "absent"))
	a, errA = unset.ResolveHashSeed()
	b, errB = unset.ResolveHashSeed()
	if errA != nil || errB != nil || a == b {
		t.Errorf("ResolveHashSeed() without hash_seed or machine-id twice = %#x (%v), %#x (%v); want two random seeds", a, errA, b, errB)
	}
}

// TestSynAge checks syn_age: its default (60s, or half of a shorter
// delete_age, in whole seconds, at least 1s) and explicit values.
func TestSynAge(t *testing.T) {
	tests := []struct {
		keys string
		want time.Duration
	}{
		{"", time.Minute},
		{`delete_age = "2m"`, time.Minute},
		{`delete_age = "90s"`, 45 * time.Second},
		{`delete_age = "30s"`, 15 * time.Second},
		{`delete_age = "3s"`, time.Second},
		{`delete_age = "1s"`, time.Second}, // no shorter whole second
		{`syn_age = "5s"`, 5 * time.Second},
		{"delete_age = \"30s\"\nsyn_age = \"29s\"", 29 * time.Second},
		{"delete_age = \"1s\"\nsyn_age = \"1s\"", time.Second},
	}
	for _, tt := range tests {
		s, err := config.Parse("test.toml", []byte(setHead+tt.keys+"\nserver = [{ address = \"10.0.0.1\" }]\n"))
		if err != nil {
			t.Errorf("Parse(%q) = %v", tt.keys, err)
			continue
		}
		if got := s.TargetSets[0].SynAge; got != tt.want {
			t.Errorf("Parse(%q) SynAge = %s, want %s", tt.keys, got, tt.want)
		}
	}

	// A Spec built in code may leave it 0: the default applies.
	ts := config.TargetSet{DeleteAge: 10 * time.Minute}
	if got := ts.EffectiveSynAge(); got != config.DefaultSynAge {
		t.Errorf("EffectiveSynAge() of SynAge 0 = %s, want %s", got, config.DefaultSynAge)
	}
	ts.SynAge = 7 * time.Second
	if got := ts.EffectiveSynAge(); got != 7*time.Second {
		t.Errorf("EffectiveSynAge() of SynAge 7s = %s, want 7s", got)
	}
}

// TestRobustnessKeyErrors pins the errors of hash_seed, syn_age, vlans and
// partial_queues: position and text.
func TestRobustnessKeyErrors(t *testing.T) {
	dp := "[dataplane]\ninterfaces = [\"eth1\"]\n"
	set := "\n[[target_set]]\nname = \"web\"\naddress = \"192.0.2.10\"\nserver = [{ address = \"10.0.0.1\" }]\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{"empty seed", dp + `hash_seed = ""`, []string{`test.toml:3:13: dataplane.hash_seed: hash_seed is empty (hint: leave hash_seed out`}},
		{"negative seed", dp + "hash_seed = -1", []string{"test.toml:3:13: dataplane.hash_seed: hash_seed -1 is negative"}},
		{"seed of another type", dp + "hash_seed = 1.5", []string{"test.toml:3:13: dataplane.hash_seed: expected a string or an integer, got float 1.5"}},
		{"syn_age below 1s", dp + set + `syn_age = "500ms"`,
			[]string{`test.toml:8:11: target_set[0].syn_age: syn_age 500ms is shorter than 1s`}},
		{"syn_age as long as delete_age", dp + set + "delete_age = \"30s\"\nsyn_age = \"30s\"",
			[]string{`test.toml:9:11: target_set[0].syn_age: syn_age 30s is not shorter than delete_age 30s (hint: an unproven association is forgotten after syn_age, a proven one after delete_age; the default is 60s or half of delete_age; make it shorter than 30s)`}},
		{"syn_age longer than the default delete_age", dp + set + `syn_age = "11m"`,
			[]string{`test.toml:8:11: target_set[0].syn_age: syn_age 11m0s is not shorter than delete_age 10m0s`}},
		{"syn_age of a bad delete_age", dp + set + "delete_age = \"0s\"\nsyn_age = \"30s\"",
			[]string{`test.toml:8:14: target_set[0].delete_age: delete_age 0s is shorter than 1s`}},
		{"syn_age without a unit", dp + set + "syn_age = 30",
			[]string{`test.toml:8:11: target_set[0].syn_age: expected a duration string, got integer 30 (hint: add a unit: syn_age = "30s")`}},
		{"vlans", dp + "vlans = [100, 0, 4095, 100, \"7\", 70000]", []string{
			"test.toml:3:15: dataplane.vlans[1]: VLAN ID 0 is out of range (hint: VLAN IDs are 1..4094; untagged VIP traffic needs no entry)",
			"test.toml:3:18: dataplane.vlans[2]: VLAN ID 4095 is out of range",
			"test.toml:3:24: dataplane.vlans[3]: VLAN 100 is already listed at index 0 (hint: list each VLAN once)",
			`test.toml:3:29: dataplane.vlans[4]: expected an integer, got string "7" (hint: write 7 without quotes)`,
			"test.toml:3:34: dataplane.vlans[5]: VLAN ID 70000 is out of range",
		}},
		{"vlans not a list", dp + "vlans = 100", []string{"test.toml:3:9: dataplane.vlans: expected an array, got integer 100 (hint: use a list: vlans = [...])"}},
		{"partial_queues with every queue", dp + "partial_queues = true",
			[]string{`test.toml:3:18: dataplane.partial_queues: partial_queues applies to a list of queues (hint: remove it: queues = "all" serves every queue)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := parseErrors(t, tt.src+"\n")
			if len(errs) != len(tt.want) {
				t.Fatalf("Parse() = %d errors:\n%v\nwant %d:\n%s", len(errs), errs, len(tt.want), strings.Join(tt.want, "\n"))
			}
			for i, e := range errs {
				if !strings.HasPrefix(e.Error(), tt.want[i]) {
					t.Errorf("error %d = %v, want %s...", i, e, tt.want[i])
				}
			}
		})
	}
}

// TestVLANsAndPartialQueues checks the values the fast path gets.
func TestVLANsAndPartialQueues(t *testing.T) {
	s, err := config.Parse("test.toml", []byte("[dataplane]\ninterfaces = [\"eth1\"]\nqueues = [0]\npartial_queues = true\nvlans = [100, 4094, 1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Dataplane; !d.PartialQueues || !reflect.DeepEqual(d.VLANs, []uint16{100, 4094, 1}) {
		t.Errorf("PartialQueues, VLANs = %v, %v; want true, [100 4094 1]", d.PartialQueues, d.VLANs)
	}
	s, err = config.Parse("test.toml", []byte("[dataplane]\ninterfaces = [\"eth1\"]\nvlans = []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Dataplane; d.PartialQueues || d.VLANs != nil {
		t.Errorf("defaults: PartialQueues, VLANs = %v, %v; want false, nil (tagged VIP frames dropped)", d.PartialQueues, d.VLANs)
	}
}
