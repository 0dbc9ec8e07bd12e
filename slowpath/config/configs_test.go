package config_test

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

const configsDir = "../../configs"

// TestConfigs checks that every example configuration is valid.
func TestConfigs(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(configsDir, "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found %d configs in %s, want demo.toml and example.toml at least", len(files), configsDir)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := config.Load(f); err != nil {
				t.Errorf("Load(%q):\n%v", f, err)
			}
		})
	}
}

// TestDemoConfig pins what the demo lab relies on.
func TestDemoConfig(t *testing.T) {
	s, err := config.Load(filepath.Join(configsDir, "demo.toml"))
	if err != nil {
		t.Fatal(err)
	}
	d := s.Dataplane
	if !reflect.DeepEqual(d.Interfaces, []string{"veth-lb"}) || d.Queues != nil || d.BusyPoll || d.MaxAssociations != 65536 {
		t.Errorf("demo dataplane = %+v, want veth-lb, all queues, no busy poll, 65536 associations", d)
	}
	want := []config.TargetSet{{
		Name:       "demo",
		Address:    netip.MustParseAddr("192.0.2.10"),
		Protocols:  []config.Proto{config.ProtoTCP, config.ProtoUDP},
		Ports:      []config.PortRange{{First: 7000, Last: 7010}},
		Method:     "hash",
		Forwarding: "dsr",
		DeleteAge:  30 * time.Second,
		SynAge:     15 * time.Second, // half of delete_age, which is shorter than 2 * 60s
		TableSize:  65537,
		Servers: []config.Server{
			{Name: "s1", Address: netip.MustParseAddr("198.51.100.11"), Weight: 1},
			{Name: "s2", Address: netip.MustParseAddr("198.51.100.12"), Weight: 2},
			{Name: "s3", Address: netip.MustParseAddr("198.51.100.13"), Weight: 3},
		},
		OnServerFailure: "reselect",
		Health:          defaultHealth("tcp", 7000), // the first port
		Balance:         defaultBalance(),
	}}
	if !reflect.DeepEqual(s.TargetSets, want) {
		t.Errorf("demo target sets = %+v, want %+v", s.TargetSets, want)
	}
}

// TestExampleConfigListsDefaults checks that example.toml, which documents
// every key with its default, matches what an empty table gives.
func TestExampleConfigListsDefaults(t *testing.T) {
	s, err := config.Load(filepath.Join(configsDir, "example.toml"))
	if err != nil {
		t.Fatal(err)
	}
	defaults, err := config.Parse("min.toml", []byte("[dataplane]\ninterfaces = [\"eth1\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Dataplane, defaults.Dataplane) || s.Log != defaults.Log || s.API != defaults.API {
		t.Errorf("example.toml = %+v %+v %+v,\nwant defaults %+v %+v %+v",
			s.Dataplane, s.Log, s.API, defaults.Dataplane, defaults.Log, defaults.API)
	}
	if len(s.TargetSets) == 0 {
		t.Fatal("example.toml has no target set")
	}
	web := s.TargetSets[0]
	if web.Method != "hash" || web.Forwarding != "dsr" || web.DeleteAge != 10*time.Minute || web.TableSize != 65537 ||
		!reflect.DeepEqual(web.Protocols, []config.Proto{config.ProtoTCP}) ||
		!reflect.DeepEqual(web.Ports, []config.PortRange{{First: 1, Last: 65535}}) {
		t.Errorf("example.toml first target set = %+v, want the defaults", web)
	}

	// The defaults of the keys added with health checks and balancing, from
	// sets that leave them out: the first checks port 80, as the example's
	// must (its ports are "*"), the second uses HTTP.
	sets, err := config.Parse("sets.toml", []byte(`[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "a"
address = "192.0.2.1"
ports = ["80"]
server = [{ address = "10.0.0.1" }]
[[target_set]]
name = "b"
address = "192.0.2.2"
ports = ["80"]
server = [{ address = "10.0.0.1" }]
health = { type = "http" }
`))
	if err != nil {
		t.Fatal(err)
	}
	def, defHTTP := sets.TargetSets[0], sets.TargetSets[1].Health
	if web.OnServerFailure != def.OnServerFailure || web.Health != def.Health || web.Balance != def.Balance {
		t.Errorf("example.toml first target set: on_server_failure %q, health %+v, balance %+v;\nwant the defaults %q, %+v, %+v",
			web.OnServerFailure, web.Health, web.Balance, def.OnServerFailure, def.Health, def.Balance)
	}
	i := slices.IndexFunc(s.TargetSets, func(ts config.TargetSet) bool { return ts.Method == config.MethodPeerAware })
	if i < 0 {
		t.Fatal("example.toml has no peer_aware_least_load target set")
	}
	if h := s.TargetSets[i].Health; h.Type != config.HealthHTTP || h.Path != defHTTP.Path || h.ExpectStatus != defHTTP.ExpectStatus {
		t.Errorf("example.toml %q health = %+v, want http with the default path %q and expect_status %d",
			s.TargetSets[i].Name, h, defHTTP.Path, defHTTP.ExpectStatus)
	}
}
