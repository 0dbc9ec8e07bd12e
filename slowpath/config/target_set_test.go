package config_test

import (
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

// setHead is a valid [dataplane] and the start of a target set; tests append
// the set's other keys and tables. The set's first key is on line 6.
const setHead = `[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "web"
address = "192.0.2.10"
`

// TestParseTargetSetOptions checks the selection, failure, health, peer
// group and balance keys of a target set, and their defaults.
func TestParseTargetSetOptions(t *testing.T) {
	tests := []struct {
		name string
		src  string                     // after setHead
		want func(ts *config.TargetSet) // edits the defaults of a set with ports 8000-8099 and 443
	}{{
		name: "defaults",
		src:  "ports = [\"8000-8099\", \"443\"]\nserver = [{ address = \"10.0.0.1\" }]\n",
		want: func(ts *config.TargetSet) {},
	}, {
		name: "least load, keep",
		src: `ports = ["8000-8099", "443"]
method = "least_load"
on_server_failure = "keep"
server = [{ address = "10.0.0.1" }]
`,
		want: func(ts *config.TargetSet) {
			ts.Method = config.MethodLeastLoad
			ts.OnServerFailure = config.FailureKeep
		},
	}, {
		name: "ports * without a health table: not checked",
		src:  "server = [{ address = \"10.0.0.1\" }]\n",
		want: func(ts *config.TargetSet) {
			ts.Ports = []config.PortRange{{First: 1, Last: 65535}}
			ts.Health.Type, ts.Health.Port = config.HealthNone, 0
		},
	}, {
		name: "ports * with type none",
		src:  "server = [{ address = \"10.0.0.1\" }]\n[target_set.health]\ntype = \"none\"\n",
		want: func(ts *config.TargetSet) {
			ts.Ports = []config.PortRange{{First: 1, Last: 65535}}
			ts.Health.Type, ts.Health.Port = config.HealthNone, 0
		},
	}, {
		name: "ports * with a port",
		src:  "ports = [\"*\"]\nserver = [{ address = \"10.0.0.1\" }]\n[target_set.health]\nport = 9000\n",
		want: func(ts *config.TargetSet) {
			ts.Ports = []config.PortRange{{First: 1, Last: 65535}}
			ts.Health.Port = 9000
		},
	}, {
		name: "bare port, empty health table",
		src:  "ports = [25]\nserver = [{ address = \"10.0.0.1\" }]\n[target_set.health]\n",
		want: func(ts *config.TargetSet) {
			ts.Ports = []config.PortRange{{First: 25, Last: 25}}
			ts.Health.Port = 25
		},
	}, {
		name: "http defaults",
		src:  "ports = [\"8000-8099\", \"443\"]\nserver = [{ address = \"10.0.0.1\" }]\nhealth.type = \"http\"\n",
		want: func(ts *config.TargetSet) { ts.Health = defaultHealth(config.HealthHTTP, 8000) },
	}, {
		name: "every health key",
		src: `ports = ["8000-8099", "443"]
server = [{ address = "10.0.0.1" }]
  [target_set.health]
  type = "http"
  port = 65535
  path = "/status?verbose=1&x=%41"
  expect_status = 599
  interval = "100ms"
  timeout = "99ms"
  rise = 100
  fall = 1
`,
		want: func(ts *config.TargetSet) {
			ts.Health = config.Health{
				Type: config.HealthHTTP, Port: 65535, Path: "/status?verbose=1&x=%41", ExpectStatus: 599,
				Interval: 100 * time.Millisecond, Timeout: 99 * time.Millisecond, Rise: 100, Fall: 1,
			}
		},
	}, {
		name: "type none keeps the other keys",
		src:  "ports = [\"8000-8099\", \"443\"]\nserver = [{ address = \"10.0.0.1\" }]\nhealth = { type = \"none\", port = 1, interval = \"1m\" }\n",
		want: func(ts *config.TargetSet) {
			ts.Health.Type, ts.Health.Port, ts.Health.Interval = config.HealthNone, 1, time.Minute
		},
	}, {
		name: "balance: integers for floats, clear follows threshold",
		src: `ports = ["8000-8099", "443"]
server = [{ address = "10.0.0.1" }]
[target_set.balance]
threshold = 0.5
window = "1m"
`,
		want: func(ts *config.TargetSet) {
			ts.Balance.Threshold, ts.Balance.Clear, ts.Balance.Window = 0.5, 0.25, time.Minute
		},
	}, {
		name: "every balance key",
		src: `ports = ["8000-8099", "443"]
server = [{ address = "10.0.0.1" }]
balance = { enabled = false, threshold = 0.99, clear = 0, window = "1s", sustain = "0s" }
`,
		want: func(ts *config.TargetSet) {
			ts.Balance = config.Balance{Enabled: false, Threshold: 0.99, Clear: 0, Window: time.Second, Sustain: 0}
		},
	}, {
		name: "peer groups",
		src: `ports = ["8000-8099", "443"]
method = "peer_aware_least_load"
server = [{ address = "10.0.0.1" }]
  [[target_set.peer_group]]
  name = "mme-pool-a"
  prefixes = ["198.51.100.0/28", "203.0.113.7/32"]
  [[target_set.peer_group]]
  name = "rest_0"
  prefixes = ["0.0.0.0/0", "198.51.100.0/24"]
`,
		want: func(ts *config.TargetSet) {
			ts.Method = config.MethodPeerAware
			ts.PeerGroups = []config.PeerGroup{
				{Name: "mme-pool-a", Prefixes: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/28"), netip.MustParsePrefix("203.0.113.7/32")}},
				{Name: "rest_0", Prefixes: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("198.51.100.0/24")}},
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := config.Parse("t.toml", []byte(setHead+tt.src))
			if err != nil {
				t.Fatalf("Parse() error:\n%v", err)
			}
			want := config.TargetSet{
				Name:            "web",
				Address:         netip.MustParseAddr("192.0.2.10"),
				Protocols:       []config.Proto{config.ProtoTCP},
				Ports:           []config.PortRange{{First: 8000, Last: 8099}, {First: 443, Last: 443}},
				Method:          config.MethodHash,
				Forwarding:      "dsr",
				DeleteAge:       10 * time.Minute,
				SynAge:          time.Minute,
				TableSize:       65537,
				Servers:         []config.Server{{Name: "10.0.0.1", Address: netip.MustParseAddr("10.0.0.1"), Weight: 1}},
				OnServerFailure: config.FailureReselect,
				Health:          defaultHealth(config.HealthTCP, 8000),
				Balance:         defaultBalance(),
			}
			tt.want(&want)
			if len(s.TargetSets) != 1 || !reflect.DeepEqual(s.TargetSets[0], want) {
				t.Errorf("Parse() target sets =\n%+v\nwant\n%+v", s.TargetSets, want)
			}
			if err := s.Validate(); err != nil {
				t.Errorf("Validate() of a parsed Spec = %v", err)
			}
		})
	}
}

// TestParseTargetSetOptionErrors pins every error of the selection, failure,
// health, peer group and balance keys: position and whole text.
func TestParseTargetSetOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string   // after setHead, from line 6
		want []string // "line:col: path: message (hint: ...)"
	}{{
		name: "method and failure values",
		src: `method = "peer_aware"
on_server_failure = "Keep"
server = [{ address = "10.0.0.1" }]
`,
		want: []string{
			`6:10: target_set[0].method: unknown value "peer_aware" (hint: valid values: "hash", "least_load" or "peer_aware_least_load")`,
			`7:21: target_set[0].on_server_failure: unknown value "Keep" (hint: did you mean "keep"?)`,
		},
	}, {
		name: "peer aware without peer groups",
		src:  "method = \"peer_aware_least_load\"\nserver = [{ address = \"10.0.0.1\" }]\n",
		want: []string{
			`3:1: target_set[0].peer_group: method "peer_aware_least_load" needs at least one peer group ` +
				`(hint: add a [[target_set.peer_group]] with a name and prefixes, or use method = "least_load")`,
		},
	}, {
		name: "peer groups with another method",
		src: `method = "least_load"
server = [{ address = "10.0.0.1" }]
  [[target_set.peer_group]]
  name = "a"
  prefixes = ["198.51.100.0/28"]
`,
		want: []string{
			`8:3: target_set[0].peer_group: peer groups are only used by method "peer_aware_least_load", not "least_load" ` +
				`(hint: set method = "peer_aware_least_load")`,
		},
	}, {
		name: "peer group values",
		src: `method = "peer_aware_least_load"
server = [{ address = "10.0.0.1" }]
  [[target_set.peer_group]]
  name = "Pool A"
  prefixes = ["198.51.100.7", "198.51.100.1/28", "2001:db8::/32", "::ffff:198.51.100.0/120", 5, "10.0.0.0/8", "10.0.0.0/8"]
  [[target_set.peer_group]]
  name = "b"
  prefixes = []
  [[target_set.peer_group]]
  name = "b"
  prefixes = ["10.0.0.0/8", "10.0.0.0/33"]
  [[target_set.peer_group]]
  prefix = ["192.0.2.0/24"]
`,
		want: []string{
			`9:10: target_set[0].peer_group[0].name: invalid peer group name "Pool A" (hint: use 1 to 32 characters from a-z, 0-9, '_' and '-')`,
			`10:15: target_set[0].peer_group[0].prefixes[0]: invalid prefix "198.51.100.7" (hint: write a single address with its length: "198.51.100.7/32")`,
			`10:31: target_set[0].peer_group[0].prefixes[1]: prefix 198.51.100.1/28 has bits set after the first 28 (hint: write "198.51.100.0/28")`,
			`10:50: target_set[0].peer_group[0].prefixes[2]: prefix 2001:db8::/32 is IPv6 but the VIP 192.0.2.10 is IPv4 ` +
				`(hint: clients reach the VIP with its IP version; put peers of the other version in a target set of their own)`,
			`10:67: target_set[0].peer_group[0].prefixes[3]: prefix ::ffff:198.51.100.0/120 is an IPv4-mapped IPv6 prefix (hint: write it as 198.51.100.0/24)`,
			`10:94: target_set[0].peer_group[0].prefixes[4]: expected a string, got integer 5 (hint: put it in quotes: "5")`,
			`10:111: target_set[0].peer_group[0].prefixes[6]: prefix 10.0.0.0/8 is already listed as prefixes[5] (hint: list each prefix once)`,
			`13:14: target_set[0].peer_group[1].prefixes: no prefixes listed (hint: list the peers' source prefixes, such as prefixes = ["198.51.100.0/28"])`,
			`15:10: target_set[0].peer_group[2].name: name "b" is already used by peer_group[1] (hint: peer group names must be unique within a target set)`,
			`16:15: target_set[0].peer_group[2].prefixes[0]: prefix 10.0.0.0/8 is already in peer_group[0] "Pool A" (hint: a peer belongs to one group of a target set)`,
			`16:29: target_set[0].peer_group[2].prefixes[1]: invalid prefix "10.0.0.0/33" (hint: write a prefix such as "198.51.100.0/28" or "2001:db8:1::/48")`,
			`17:3: target_set[0].peer_group[3].name: required key is missing (hint: name the peer group: name = "pool-a")`,
			`18:3: target_set[0].peer_group[3].prefix: unknown key (hint: did you mean "prefixes"?)`,
		},
	}, {
		name: "peer group written as a table",
		src:  "server = [{ address = \"10.0.0.1\" }]\n[target_set.peer_group]\nname = \"a\"\n",
		want: []string{
			`7:1: target_set[0].peer_group: expected an array of tables, got a table (hint: write [[target_set.peer_group]] with double brackets)`,
		},
	}, {
		name: "no port to check",
		src:  "server = [{ address = \"10.0.0.1\" }]\n  [target_set.health]\n  rise = 3\n",
		want: []string{
			`7:3: target_set[0].health.port: no port to check: the set's first port range is "*" ` +
				`(hint: set the port the checks connect to, such as port = 80, or type = "none")`,
		},
	}, {
		name: "no port to check, inline",
		src:  "ports = [\"*\"]\nserver = [{ address = \"10.0.0.1\" }]\nhealth = { type = \"http\" }\n",
		want: []string{
			`8:10: target_set[0].health.port: no port to check: the set's first port range is "*" ` +
				`(hint: set the port the checks connect to, such as port = 80, or type = "none")`,
		},
	}, {
		name: "health values",
		src: `ports = ["80"]
server = [{ address = "10.0.0.1" }]
  [target_set.health]
  type = "http"
  port = 0
  path = "healthz"
  expect_status = 99
  interval = "50ms"
  timeout = "0s"
  rise = 0
  fall = 101
`,
		want: []string{
			`10:10: target_set[0].health.port: port 0 is out of range (hint: ports are 1..65535)`,
			`11:10: target_set[0].health.path: path "healthz" does not start with '/' (hint: write "/healthz")`,
			`12:19: target_set[0].health.expect_status: expect_status 99 is out of range 100..599 (hint: the default is 200)`,
			`13:14: target_set[0].health.interval: interval 50ms is shorter than 100ms (hint: the default is 1s)`,
			`14:13: target_set[0].health.timeout: timeout 0s is not positive (hint: the default is 500ms)`,
			`15:10: target_set[0].health.rise: rise 0 is out of range 1..100 (hint: checks passed in a row that mark a server up; the default is 2)`,
			`16:10: target_set[0].health.fall: fall 101 is out of range 1..100 (hint: checks failed in a row that mark a server down; the default is 2)`,
		},
	}, {
		name: "health types of values",
		src: `server = [{ address = "10.0.0.1" }]
  [target_set.health]
  port = "80"
  interval = 5
  timeout = "5"
  rise = 2.0
`,
		want: []string{
			`8:10: target_set[0].health.port: expected an integer, got string "80" (hint: write 80 without quotes)`,
			`9:14: target_set[0].health.interval: expected a duration string, got integer 5 (hint: add a unit: interval = "5s")`,
			`10:13: target_set[0].health.timeout: invalid duration "5" (hint: use a Go duration such as "30s", "10m" or "1h30m")`,
			`11:10: target_set[0].health.rise: expected an integer, got float 2`,
		},
	}, {
		name: "port out of range, timeout longer than interval",
		src: `server = [{ address = "10.0.0.1" }]
health = { port = 70000, interval = "1s", timeout = "1001ms" }
`,
		want: []string{
			`7:19: target_set[0].health.port: port 70000 is out of range (hint: ports are 1..65535)`,
			`7:53: target_set[0].health.timeout: timeout 1.001s is not shorter than interval 1s (hint: a check must end before the next one starts)`,
		},
	}, {
		name: "timeout equal to interval",
		src:  "ports = [\"80\"]\nserver = [{ address = \"10.0.0.1\" }]\nhealth = { interval = \"1s\", timeout = \"1000ms\" }\n",
		want: []string{`8:39: target_set[0].health.timeout: timeout 1s is not shorter than interval 1s (hint: a check must end before the next one starts)`},
	}, {
		name: "timeout is not compared with a bad interval",
		src:  "ports = [\"80\"]\nserver = [{ address = \"10.0.0.1\" }]\nhealth.interval = \"10ms\"\n",
		want: []string{`8:19: target_set[0].health.interval: interval 10ms is shorter than 100ms (hint: the default is 1s)`},
	}, {
		name: "http keys with another type",
		src: `ports = ["80"]
server = [{ address = "10.0.0.1" }]
health = { path = "/", expect_status = 200 }
`,
		want: []string{
			`8:19: target_set[0].health.path: path is set but type is "tcp" (hint: path and expect_status apply to type = "http" only)`,
			`8:40: target_set[0].health.expect_status: expect_status is set but type is "tcp" (hint: path and expect_status apply to type = "http" only)`,
		},
	}, {
		name: "a bad type hides the checks that depend on it",
		src: `ports = ["80"]
server = [{ address = "10.0.0.1" }]
health = { type = "HTTP", path = "x" }
`,
		want: []string{`8:19: target_set[0].health.type: unknown value "HTTP" (hint: did you mean "http"?)`},
	}, {
		name: "http paths",
		src: `ports = ["80", "81", "82", "83", "84"]
server = [{ address = "10.0.0.1" }]
[[target_set]]
name = "b"
address = "192.0.2.11"
ports = ["80"]
server = [{ address = "10.0.0.1" }]
health = { type = "http", path = "//lb/x" }
[[target_set]]
name = "c"
address = "192.0.2.12"
ports = ["80"]
server = [{ address = "10.0.0.1" }]
health = { type = "http", path = "/a b" }
[[target_set]]
name = "d"
address = "192.0.2.13"
ports = ["80"]
server = [{ address = "10.0.0.1" }]
health = { type = "http", path = "/a#top" }
[[target_set]]
name = "e"
address = "192.0.2.14"
ports = ["80"]
server = [{ address = "10.0.0.1" }]
health = { type = "http", path = "/100%" }
`,
		want: []string{
			`13:34: target_set[1].health.path: path "//lb/x" starts with "//", which reads as a host name (hint: start it with a single '/')`,
			`19:34: target_set[2].health.path: path "/a b" has a blank or control character at byte 2 (hint: percent-encode it, such as %20 for a blank)`,
			`25:34: target_set[3].health.path: path "/a#top" has a fragment (hint: a fragment ('#...') is never sent to the server; remove it)`,
			`31:34: target_set[4].health.path: path "/100%" is not a valid request path (hint: percent-encode a '%' that does not start an escape as %25)`,
		},
	}, {
		name: "balance values",
		src: `server = [{ address = "10.0.0.1" }]
  [target_set.balance]
  threshold = 0.5
  clear = 0.5
  window = "999ms"
  sustain = "-1s"
  enabled = "yes"
`,
		want: []string{
			`9:11: target_set[0].balance.clear: clear 0.5 is not below threshold 0.5 ` +
				`(hint: the alarm clears when the deviation falls below clear; the default is threshold / 2)`,
			`10:12: target_set[0].balance.window: window 999ms is shorter than 1s (hint: the default is 10s)`,
			`11:13: target_set[0].balance.sustain: sustain -1s is negative (hint: "0s" raises the alarm at once; the default is 5s)`,
			`12:13: target_set[0].balance.enabled: expected true or false, got string "yes"`,
		},
	}, {
		name: "bad threshold: clear is checked on its own",
		src: `server = [{ address = "10.0.0.1" }]
balance = { threshold = 1, clear = 0.9 }
[[target_set]]
name = "b"
address = "192.0.2.11"
server = [{ address = "10.0.0.1" }]
balance = { threshold = nan, clear = -0.1 }
[[target_set]]
name = "c"
address = "192.0.2.12"
server = [{ address = "10.0.0.1" }]
balance = { threshold = "0.3", clear = "x" }
[[target_set]]
name = "d"
address = "192.0.2.13"
server = [{ address = "10.0.0.1" }]
balance = { threshold = -inf }
`,
		want: []string{
			`7:25: target_set[0].balance.threshold: threshold 1 is not between 0 and 1 (exclusive) (hint: the default is 0.2)`,
			`12:25: target_set[1].balance.threshold: threshold NaN is not between 0 and 1 (exclusive) (hint: the default is 0.2)`,
			`12:38: target_set[1].balance.clear: clear -0.1 is not >= 0 ` +
				`(hint: the alarm clears when the deviation falls below clear; the default is threshold / 2)`,
			`17:25: target_set[2].balance.threshold: expected a number, got string "0.3" (hint: write 0.3 without quotes)`,
			`17:40: target_set[2].balance.clear: expected a number, got string "x"`,
			`22:25: target_set[3].balance.threshold: threshold -Inf is not between 0 and 1 (exclusive) (hint: the default is 0.2)`,
		},
	}, {
		name: "unknown keys and tables",
		src: `threshold = 0.1
server = [{ address = "10.0.0.1" }]
  [target_set.helth]
  [target_set.health]
  intervall = "1s"
  type = "none"
  [target_set.balance]
  path = "/"
`,
		want: []string{
			`6:1: target_set[0].threshold: unknown key (hint: "threshold" belongs in [target_set.balance])`,
			`8:15: target_set[0].helth: unknown table (hint: did you mean "health"?)`,
			`10:3: target_set[0].health.intervall: unknown key (hint: did you mean "interval"?)`,
			`13:3: target_set[0].balance.path: unknown key (hint: "path" belongs in [target_set.health])`,
		},
	}, {
		name: "health written as a value",
		src:  "server = [{ address = \"10.0.0.1\" }]\nhealth = \"tcp\"\n",
		want: []string{
			`7:10: target_set[0].health: expected a table, got string "tcp" (hint: write the keys under a [target_set.health] header)`,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := parseErrors(t, setHead+tt.src)
			got := make([]string, len(errs))
			for i, e := range errs {
				got[i] = strings.TrimPrefix(e.Error(), "test.toml:")
				if want := strconv.Itoa(e.Line) + ":" + strconv.Itoa(e.Column) + ": "; !strings.HasPrefix(got[i], want) {
					t.Errorf("error %d = %q, want it to start with its position %s", i, e.Error(), want)
				}
			}
			for i := range max(len(got), len(tt.want)) {
				switch {
				case i >= len(got):
					t.Errorf("missing error %d: %s", i, tt.want[i])
				case i >= len(tt.want):
					t.Errorf("unexpected error %d: %s", i, got[i])
				case got[i] != tt.want[i]:
					t.Errorf("error %d =\n\t%s\nwant\n\t%s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// TestValidateTargetSetOptions checks the new keys' invariants on a Spec
// built in code, where nothing was filled in by Parse.
func TestValidateTargetSetOptions(t *testing.T) {
	s := &config.Spec{
		Path:      "built",
		Dataplane: defaultDataplane(),
		Log:       config.Log{Level: "info", Format: "console"},
		API:       config.API{Listen: "127.0.0.1:9180"},
		TargetSets: []config.TargetSet{{
			Name: "web", Address: netip.MustParseAddr("2001:db8::10"),
			Protocols: []config.Proto{config.ProtoSCTP}, Ports: []config.PortRange{{First: 1, Last: 65535}},
			Method: config.MethodPeerAware, Forwarding: "dsr", DeleteAge: time.Minute, TableSize: 251,
			Servers:         []config.Server{{Name: "a", Address: netip.MustParseAddr("2001:db8::11"), Weight: 1}},
			OnServerFailure: config.FailureKeep,
			Health:          defaultHealth(config.HealthNone, 0),
			PeerGroups:      []config.PeerGroup{{Name: "p", Prefixes: []netip.Prefix{netip.MustParsePrefix("2001:db8:1::/48")}}},
			Balance:         defaultBalance(),
		}},
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate() of a valid Spec = %v", err)
	}

	ts := &s.TargetSets[0]
	ts.OnServerFailure = ""
	ts.Health = config.Health{Type: config.HealthTCP, Path: "/", Interval: time.Second, Timeout: time.Second / 2, Rise: 1, Fall: 1}
	ts.PeerGroups = append(ts.PeerGroups, config.PeerGroup{Name: "q", Prefixes: []netip.Prefix{{}, netip.MustParsePrefix("2001:db8:1::1/48")}})
	ts.Balance.Clear = 0.3
	want := `built: target_set[0].on_server_failure: unknown value "" (hint: valid values: "reselect" or "keep")` + "\n" +
		`built: target_set[0].health.port: no port to check: the set's first port range is "*" (hint: set the port the checks connect to, such as port = 80, or type = "none")` + "\n" +
		`built: target_set[0].health.path: path is set but type is "tcp" (hint: path and expect_status apply to type = "http" only)` + "\n" +
		`built: target_set[0].peer_group[1].prefixes[0]: prefix is not set` + "\n" +
		`built: target_set[0].peer_group[1].prefixes[1]: prefix 2001:db8:1::1/48 has bits set after the first 48 (hint: write "2001:db8:1::/48")` + "\n" +
		`built: target_set[0].balance.clear: clear 0.3 is not below threshold 0.2 (hint: the alarm clears when the deviation falls below clear; the default is threshold / 2)`
	if err := s.Validate(); err == nil || err.Error() != want {
		t.Errorf("Validate() =\n%v\nwant\n%s", err, want)
	}
}
