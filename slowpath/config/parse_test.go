package config_test

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

// defaultDataplane is [dataplane] with only interfaces = ["eth1"].
func defaultDataplane() config.Dataplane {
	return config.Dataplane{
		Interfaces:      []string{"eth1"},
		XDPMode:         config.XDPAuto,
		BusyPoll:        true,
		BatchSize:       64,
		MaxAssociations: 1 << 20,
		// A quarter of max_associations by default.
		MaxPersistenceRecords: 1 << 18,
		RingSize:              2048,
		FrameSize:             4096,
		Frames:                8192,
		NeedWakeup:            true,
		ZeroCopy:              config.ZeroCopyAuto,
		IdleSpin:              50 * time.Microsecond,
		PreferBusyPoll:        true,
		HugePages:             config.HugePagesAuto,
		ShedOpenings:          true,
	}
}

// defaultHealth is [target_set.health] with only type set, checking port.
func defaultHealth(typ string, port uint16) config.Health {
	h := config.Health{Type: typ, Port: port, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2}
	if typ == config.HealthHTTP {
		h.Path, h.ExpectStatus = "/", 200
	}
	return h
}

// defaultBalance is an empty [target_set.balance].
func defaultBalance() config.Balance {
	return config.Balance{Enabled: true, Threshold: 0.2, Clear: 0.1, Window: 10 * time.Second, Sustain: 5 * time.Second}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want func(s *config.Spec) // edits a Spec of defaults into the expected one
	}{{
		name: "minimal",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\n",
		want: func(s *config.Spec) {},
	}, {
		name: "target set defaults",
		src: `[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "web"
address = "192.0.2.10"
  [[target_set.server]]
  address = "10.0.0.11"
  [[target_set.server]]
  address = "10.0.0.12"
  name = "b"
  weight = 0
`,
		want: func(s *config.Spec) {
			s.TargetSets = []config.TargetSet{{
				Name:       "web",
				Address:    netip.MustParseAddr("192.0.2.10"),
				Protocols:  []config.Proto{config.ProtoTCP},
				Ports:      []config.PortRange{{First: 1, Last: 65535}},
				Method:     "hash",
				Forwarding: "dsr",
				DeleteAge:  10 * time.Minute,
				SynAge:     time.Minute,
				TableSize:  65537,
				Servers: []config.Server{
					{Name: "10.0.0.11", Address: netip.MustParseAddr("10.0.0.11"), Weight: 1},
					{Name: "b", Address: netip.MustParseAddr("10.0.0.12"), Weight: 0},
				},
				OnServerFailure: "reselect",
				// Ports "*" give no port to check: without a health
				// table the set is not checked.
				Health:  defaultHealth("none", 0),
				Balance: defaultBalance(),
			}}
		},
	}, {
		name: "every key set",
		src: `[dataplane]
interfaces = ["eth1", "eth2"]
queues = [0, 1]
cpus = [2, 3, 4, 5]
xdp_mode = "native"
busy_poll = false
batch_size = 32
max_associations = 4096
max_persistence_records = 2000
ring_size = 1024
frame_size = 2048
frames = 2048
need_wakeup = false
zero_copy = "on"
idle_spin = "200us"
prefer_busy_poll = false
huge_pages = "on"
shed_openings = false
[log]
level = "debug"
format = "json"
[api]
listen = "0.0.0.0:9000"
token = "secret"
pprof = true
tls_cert = "/etc/ipfront/api.pem"
tls_key = "/etc/ipfront/api.key"
[[target_set]]
name = "dns6"
address = "2001:db8::53"
protocols = ["udp", "sctp"]
ports = ["53", 5353, " 8000 - 8099 "]
method = "peer_aware_least_load"
forwarding = "dsr"
delete_age = "1m30s"
table_size = 251
server = [{ address = "2001:db8:1::1", weight = 1000, name = "s-1" }]
on_server_failure = "keep"
health = { type = "http", port = 8080, path = "/healthz?full=1", expect_status = 204, interval = "2s", timeout = "1999ms", rise = 1, fall = 100 }
peer_group = [
  { name = "pool-a", prefixes = ["2001:db8:a::/48", "2001:db8:b::1/128"] },
  { name = "pool_b", prefixes = ["::/0"] },
]
balance = { threshold = 0.5, window = "1s", sustain = "0s", clear = 0, enabled = false }
`,
		want: func(s *config.Spec) {
			s.Dataplane = config.Dataplane{
				Interfaces:            []string{"eth1", "eth2"},
				Queues:                []int{0, 1},
				CPUs:                  []int{2, 3, 4, 5},
				XDPMode:               config.XDPNative,
				BusyPoll:              false,
				BatchSize:             32,
				MaxAssociations:       4096,
				MaxPersistenceRecords: 2000,
				RingSize:              1024,
				FrameSize:             2048,
				Frames:                2048,
				NeedWakeup:            false,
				ZeroCopy:              config.ZeroCopyOn,
				IdleSpin:              200 * time.Microsecond,
				PreferBusyPoll:        false,
				HugePages:             config.HugePagesOn,
				ShedOpenings:          false,
			}
			s.Log = config.Log{Level: "debug", Format: "json"}
			s.API = config.API{Listen: "0.0.0.0:9000", Token: "secret", PProf: true, TLSCert: "/etc/ipfront/api.pem", TLSKey: "/etc/ipfront/api.key"}
			s.TargetSets = []config.TargetSet{{
				Name:       "dns6",
				Address:    netip.MustParseAddr("2001:db8::53"),
				Protocols:  []config.Proto{config.ProtoUDP, config.ProtoSCTP},
				Ports:      []config.PortRange{{First: 53, Last: 53}, {First: 5353, Last: 5353}, {First: 8000, Last: 8099}},
				Method:     "peer_aware_least_load",
				Forwarding: "dsr",
				DeleteAge:  90 * time.Second,
				SynAge:     45 * time.Second, // half of delete_age
				TableSize:  251,
				Servers:    []config.Server{{Name: "s-1", Address: netip.MustParseAddr("2001:db8:1::1"), Weight: 1000}},

				OnServerFailure: "keep",
				Health: config.Health{
					Type: "http", Port: 8080, Path: "/healthz?full=1", ExpectStatus: 204,
					Interval: 2 * time.Second, Timeout: 1999 * time.Millisecond, Rise: 1, Fall: 100,
				},
				PeerGroups: []config.PeerGroup{
					{Name: "pool-a", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:a::/48"), netip.MustParsePrefix("2001:db8:b::1/128")}},
					{Name: "pool_b", Prefixes: []netip.Prefix{netip.MustParsePrefix("::/0")}},
				},
				Balance: config.Balance{Enabled: false, Threshold: 0.5, Clear: 0, Window: time.Second, Sustain: 0},
			}}
		},
	}, {
		name: "frames follow ring size, queues all, empty cpus",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\nqueues = \"all\"\ncpus = []\nring_size = 64\nframes = 0\n",
		want: func(s *config.Spec) {
			s.Dataplane.RingSize = 64
			s.Dataplane.Frames = 256
		},
	}, {
		name: "loopback and unix listeners need no token",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\n[api]\nlisten = \"[::1]:9180\"\n",
		want: func(s *config.Spec) { s.API.Listen = "[::1]:9180" },
	}, {
		name: "unix listener",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\n[api]\nlisten = \"unix:/run/ipfront/api.sock\"\n",
		want: func(s *config.Spec) { s.API.Listen = "unix:/run/ipfront/api.sock" },
	}, {
		name: "one VIP, disjoint protocols and ports, all servers drained",
		src: `[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "web"
address = "192.0.2.10"
ports = ["80", "443"]
server = [{ address = "10.0.0.1", weight = 0 }]
[[target_set]]
name = "dns"
address = "192.0.2.10"
protocols = ["udp"]
ports = ["*"]
server = [{ address = "10.0.0.1", weight = 0 }]
[[target_set]]
name = "alt"
address = "192.0.2.10"
ports = ["8080"]
server = [{ address = "10.0.0.1", weight = 0 }]
`,
		want: func(s *config.Spec) {
			set := func(name string, p config.Proto, ports ...config.PortRange) config.TargetSet {
				return config.TargetSet{
					Name: name, Address: netip.MustParseAddr("192.0.2.10"),
					Protocols: []config.Proto{p}, Ports: ports,
					Method: "hash", Forwarding: "dsr", DeleteAge: 10 * time.Minute, SynAge: time.Minute, TableSize: 65537,
					Servers:         []config.Server{{Name: "10.0.0.1", Address: netip.MustParseAddr("10.0.0.1")}},
					OnServerFailure: "reselect",
					Health:          defaultHealth("tcp", ports[0].First),
					Balance:         defaultBalance(),
				}
			}
			s.TargetSets = []config.TargetSet{
				set("web", config.ProtoTCP, config.PortRange{First: 80, Last: 80}, config.PortRange{First: 443, Last: 443}),
				set("dns", config.ProtoUDP, config.PortRange{First: 1, Last: 65535}),
				set("alt", config.ProtoTCP, config.PortRange{First: 8080, Last: 8080}),
			}
			s.TargetSets[1].Health = defaultHealth("none", 0) // ports "*"
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := config.Parse("t.toml", []byte(tt.src))
			if err != nil {
				t.Fatalf("Parse() error:\n%v", err)
			}
			want := &config.Spec{
				Dataplane: defaultDataplane(),
				Log:       config.Log{Level: "info", Format: "console"},
				API:       config.API{Listen: "127.0.0.1:9180"},
				Path:      "t.toml",
			}
			tt.want(want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse() =\n%+v\nwant\n%+v", got, want)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate() of a parsed Spec = %v", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	valid := func() *config.Spec {
		return &config.Spec{
			Dataplane: defaultDataplane(),
			Log:       config.Log{Level: "info", Format: "console"},
			API:       config.API{Listen: "127.0.0.1:9180"},
			TargetSets: []config.TargetSet{{
				Name: "web", Address: netip.MustParseAddr("192.0.2.10"),
				Protocols: []config.Proto{config.ProtoTCP}, Ports: []config.PortRange{{First: 80, Last: 80}},
				Method: "hash", Forwarding: "dsr", DeleteAge: time.Minute, TableSize: 251,
				Servers:         []config.Server{{Name: "a", Address: netip.MustParseAddr("10.0.0.1"), Weight: 1}},
				OnServerFailure: config.FailureReselect,
				Health:          defaultHealth(config.HealthTCP, 80),
				Balance:         defaultBalance(),
			}},
		}
	}
	if err := valid().Validate(); err != nil {
		t.Fatalf("Validate() of a valid Spec = %v", err)
	}

	s := valid()
	s.Path = "built"
	s.Dataplane.Frames = 0 // not resolved
	s.TargetSets[0].Protocols = []config.Proto{config.ProtoTCP, 1}
	s.TargetSets[0].Servers = append(s.TargetSets[0].Servers, config.Server{Name: "a", Address: netip.MustParseAddr("2001:db8::1")})
	want := "built: dataplane.frames: frames 0 is not a power of two >= 2 * ring_size (4096) (hint: leave frames = 0 for 8192 (4 * ring_size))\n" +
		"built: target_set[0].protocols[1]: protocol 1 is not tcp (6), udp (17) or sctp (132)\n" +
		"built: target_set[0].server[1].address: server 2001:db8::1 is IPv6 but the VIP 192.0.2.10 is IPv4 " +
		"(hint: with DSR a server has the VIP's IP version; put it in a target set of its own version)\n" +
		"built: target_set[0].server[1].name: server name \"a\" is already used by server[0] " +
		"(hint: server names default to the address and must be unique within a target set)"
	err := s.Validate()
	if err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
}

func TestMatches(t *testing.T) {
	ts := &config.TargetSet{
		Protocols: []config.Proto{config.ProtoTCP, config.ProtoSCTP},
		Ports:     []config.PortRange{{First: 80, Last: 80}, {First: 8000, Last: 8099}},
	}
	all := &config.TargetSet{Protocols: []config.Proto{config.ProtoUDP}, Ports: []config.PortRange{{First: 1, Last: 65535}}}
	tests := []struct {
		ts    *config.TargetSet
		proto uint8
		port  uint16
		want  bool
	}{
		{ts, 6, 80, true},
		{ts, 132, 8000, true},
		{ts, 6, 8099, true},
		{ts, 6, 8100, false},
		{ts, 6, 79, false},
		{ts, 17, 80, false},
		{all, 17, 1, true},
		{all, 17, 65535, true},
		{all, 17, 0, false},
		{all, 6, 53, false},
	}
	for _, tt := range tests {
		if got := tt.ts.Matches(tt.proto, tt.port); got != tt.want {
			t.Errorf("%v %v Matches(%d, %d) = %v, want %v", tt.ts.Protocols, tt.ts.Ports, tt.proto, tt.port, got, tt.want)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{config.ProtoTCP.String(), "tcp"},
		{config.ProtoUDP.String(), "udp"},
		{config.ProtoSCTP.String(), "sctp"},
		{config.Proto(1).String(), "proto(1)"},
		{config.PortRange{First: 80, Last: 80}.String(), "80"},
		{config.PortRange{First: 80, Last: 90}.String(), "80-90"},
		{config.PortRange{First: 1, Last: 65535}.String(), "*"},
	} {
		if tt.got != tt.want {
			t.Errorf("String() = %q, want %q", tt.got, tt.want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte("[dataplane]\ninterfaces = [\"eth1\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := config.Load(good)
	if err != nil || s.Path != good {
		t.Errorf("Load(%q) = %+v, %v; want a Spec with Path %q", good, s, err, good)
	}

	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[dataplane]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(bad); err == nil || !strings.HasPrefix(err.Error(), bad+":1:1: dataplane.interfaces: ") {
		t.Errorf("Load(%q) error = %v, want it at %s:1:1", bad, err, bad)
	}

	missing := filepath.Join(dir, "missing.toml")
	_, err = config.Load(missing)
	var errs config.Errors
	if !errors.Is(err, fs.ErrNotExist) || !errors.As(err, &errs) {
		t.Fatalf("Load(%q) error = %v, want config.Errors wrapping fs.ErrNotExist", missing, err)
	}
	if want := missing + ": cannot read config: no such file or directory"; err.Error() != want {
		t.Errorf("Load(%q) error = %q, want %q", missing, err, want)
	}
}
