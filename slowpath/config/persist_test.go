package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

// transferSets are two sets of one file-transfer service: TCP control on
// 1364 and UDP data on 33001-33099, on one VIP, with the same servers. The
// first set's name is on line 4.
const transferSets = `[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "cd-tcp"
address = "192.0.2.10"
protocols = ["tcp"]
ports = ["1364"]
delete_age = "10m"
server = [{ address = "198.51.100.11" }, { address = "198.51.100.12" }]
[[target_set]]
name = "cd-udp"
address = "192.0.2.10"
protocols = ["udp"]
ports = ["33001-33099"]
delete_age = "2m"
server = [{ address = "198.51.100.11" }, { address = "198.51.100.12" }]
`

// TestParsePersistence: persistence = "client" gives a set a group of its
// own with the set's delete_age and full-length prefixes unless told
// otherwise; a [[persistence_group]] gives its members its timeout (by
// default the members' longest delete_age) and prefixes; sets without
// either have none.
func TestParsePersistence(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string // after transferSets
		keys string // more keys of the second set (cd-udp)
		want [2]*config.Persistence
	}{{
		name: "none by default",
		want: [2]*config.Persistence{nil, nil},
	}, {
		name: "client with defaults",
		keys: `persistence = "client"`,
		want: [2]*config.Persistence{nil, {Timeout: 2 * time.Minute, IPv4Prefix: 32, IPv6Prefix: 128}},
	}, {
		name: "client with every key",
		keys: "persistence = \"client\"\npersistence_timeout = \"15m\"\npersistence_ipv4_prefix = 24\npersistence_ipv6_prefix = 64",
		want: [2]*config.Persistence{nil, {Timeout: 15 * time.Minute, IPv4Prefix: 24, IPv6Prefix: 64}},
	}, {
		name: "explicit none",
		keys: `persistence = "none"`,
		want: [2]*config.Persistence{nil, nil},
	}, {
		name: "group with defaults: the longest delete age",
		src:  "[[persistence_group]]\nname = \"cd\"\ntarget_sets = [\"cd-tcp\", \"cd-udp\"]\n",
		want: [2]*config.Persistence{
			{Group: "cd", Timeout: 10 * time.Minute, IPv4Prefix: 32, IPv6Prefix: 128},
			{Group: "cd", Timeout: 10 * time.Minute, IPv4Prefix: 32, IPv6Prefix: 128}},
	}, {
		name: "group with every key; a member may say persistence = client",
		keys: `persistence = "client"`,
		src:  "[[persistence_group]]\nname = \"cd\"\ntarget_sets = [\"cd-udp\", \"cd-tcp\"]\ntimeout = \"1h\"\nipv4_prefix = 28\nipv6_prefix = 56\n",
		want: [2]*config.Persistence{
			{Group: "cd", Timeout: time.Hour, IPv4Prefix: 28, IPv6Prefix: 56},
			{Group: "cd", Timeout: time.Hour, IPv4Prefix: 28, IPv6Prefix: 56}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			src := transferSets + tc.keys + "\n" + tc.src
			s, err := config.Parse("t.toml", []byte(src))
			if err != nil {
				t.Fatalf("Parse:\n%s\n%v", src, err)
			}
			for i, want := range tc.want {
				if got := s.TargetSets[i].Persistence; !reflect.DeepEqual(got, want) {
					t.Errorf("target set %s: Persistence = %+v, want %+v", s.TargetSets[i].Name, got, want)
				}
			}
			if len(s.Warnings) != 0 {
				t.Errorf("Warnings = %v, want none", s.Warnings)
			}
		})
	}
}

// TestParseOwnedPortsAndLimit: owned_ports ranges as written (strings and
// bare integers, adjacent ranges of the set's ports); max_persistence_records
// defaults to a quarter of max_associations.
func TestParseOwnedPortsAndLimit(t *testing.T) {
	src := `[dataplane]
interfaces = ["eth1"]
max_associations = 8192
[[target_set]]
name = "fasp"
address = "192.0.2.10"
protocols = ["udp"]
ports = ["33001-33010", "33011-33020", "40000"]
  [[target_set.server]]
  address = "198.51.100.11"
  owned_ports = ["33001-33005", 33006]
  [[target_set.server]]
  address = "198.51.100.12"
  owned_ports = ["33008-33015", "40000"]
  [[target_set.server]]
  address = "198.51.100.13"
`
	s, err := config.Parse("t.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := [][]config.PortRange{
		{{First: 33001, Last: 33005}, {First: 33006, Last: 33006}},
		{{First: 33008, Last: 33015}, {First: 40000, Last: 40000}},
		nil,
	}
	for i, w := range want {
		if got := s.TargetSets[0].Servers[i].OwnedPorts; !reflect.DeepEqual(got, w) {
			t.Errorf("server[%d].OwnedPorts = %v, want %v", i, got, w)
		}
	}
	if got := s.Dataplane.MaxPersistenceRecords; got != 2048 {
		t.Errorf("MaxPersistenceRecords = %d, want 2048 (max_associations / 4)", got)
	}
}

// TestPersistenceErrors: every misuse is an error at the line and column it
// is about, saying what is wrong and how to fix it.
func TestPersistenceErrors(t *testing.T) {
	tests := []struct {
		name string
		keys string // more keys of the second set (cd-udp), from line 17 (a blank line when empty)
		src  string // after them
		want []wantErr
	}{{
		name: "unknown mode",
		keys: `persistence = "sticky"`,
		want: []wantErr{{17, 15, `target_set[1].persistence: unknown value "sticky" (hint: valid values: "none" or "client")`}},
	}, {
		name: "persistence keys without persistence",
		keys: "persistence_timeout = \"5m\"\npersistence_ipv6_prefix = 64",
		want: []wantErr{
			{17, 1, `target_set[1].persistence_timeout: persistence_timeout applies only to a set with persistence = "client" (hint: add persistence = "client", or remove the key)`},
			{18, 1, `target_set[1].persistence_ipv6_prefix: persistence_ipv6_prefix applies only`},
		},
	}, {
		name: "out of range",
		keys: "persistence = \"client\"\npersistence_timeout = \"500ms\"\npersistence_ipv4_prefix = 33\npersistence_ipv6_prefix = 0",
		want: []wantErr{
			{18, 23, "target_set[1].persistence_timeout: persistence_timeout 500ms is shorter than 1s (hint: make it longer than the longest pause between a transfer's flows"},
			{19, 27, "target_set[1].persistence_ipv4_prefix: persistence_ipv4_prefix 33 is out of range 1..32"},
			{20, 27, "target_set[1].persistence_ipv6_prefix: persistence_ipv6_prefix 0 is out of range 1..128"},
		},
	}, {
		name: "a member's own keys are the group's",
		keys: "persistence_timeout = \"5m\"\npersistence_ipv4_prefix = 24",
		src:  "[[persistence_group]]\nname = \"cd\"\ntarget_sets = [\"cd-tcp\", \"cd-udp\"]\n",
		want: []wantErr{
			{17, 1, `target_set[1].persistence_timeout: persistence_timeout belongs to the group: target set "cd-udp" is in persistence_group "cd" (line 19) (hint: set timeout in the group, where it applies to every member, or remove the key)`},
			{18, 1, `target_set[1].persistence_ipv4_prefix: persistence_ipv4_prefix belongs to the group: target set "cd-udp" is in persistence_group "cd" (line 19) (hint: set ipv4_prefix in the group`},
		},
	}, {
		name: "a member cannot opt out",
		keys: `persistence = "none"`,
		src:  "[[persistence_group]]\nname = \"cd\"\ntarget_sets = [\"cd-tcp\", \"cd-udp\"]\n",
		want: []wantErr{{17, 15, `target_set[1].persistence: target set "cd-udp" is in persistence_group "cd" (line 18), which makes it persistent (hint: remove persistence = "none", or take "cd-udp" out of the group's target_sets)`}},
	}, {
		name: "unknown, repeated and doubly grouped members",
		src: `[[persistence_group]]
name = "cd"
target_sets = ["cd-tcp", "cd_udp", "cd-tcp"]
[[persistence_group]]
name = "other"
target_sets = ["cd-udp", "cd-tcp"]
timeout = "0s"
ipv4_prefix = 0
`,
		want: []wantErr{
			{20, 26, `persistence_group[0].target_sets[1]: no target set "cd_udp" (hint: did you mean "cd-udp"?)`},
			{20, 36, `persistence_group[0].target_sets[2]: target set "cd-tcp" is already listed as target_sets[0] (hint: list each target set once)`},
			{23, 26, `persistence_group[1].target_sets[1]: target set "cd-tcp" is already in persistence_group[0] "cd" (line 18) (hint: a target set belongs to one persistence group; merge the groups)`},
			{24, 11, "persistence_group[1].timeout: timeout 0s is shorter than 1s"},
			{25, 15, "persistence_group[1].ipv4_prefix: ipv4_prefix 0 is out of range 1..32"},
		},
	}, {
		name: "group names",
		src:  "[[persistence_group]]\nname = \"cd-tcp\"\ntarget_sets = [\"cd-udp\"]\n[[persistence_group]]\nname = \"Bad Name\"\ntarget_sets = []\n",
		want: []wantErr{
			{19, 8, `persistence_group[0].name: name "cd-tcp" is a target set's`},
			{22, 8, `persistence_group[1].name: invalid persistence group name "Bad Name"`},
			{23, 15, "persistence_group[1].target_sets: no target sets listed"},
		},
	}, {
		name: "missing keys",
		src:  "[[persistence_group]]\ntimeout = \"1m\"\n",
		want: []wantErr{
			{18, 1, "persistence_group[0].name: required key is missing"},
			{18, 1, "persistence_group[0].target_sets: required key is missing"},
		},
	}, {
		name: "unknown group key",
		src:  "[[persistence_group]]\nname = \"cd\"\ntarget_sets = [\"cd-udp\"]\nipv4_prefx = 24\n",
		want: []wantErr{{21, 1, `persistence_group[0].ipv4_prefx: unknown key (hint: did you mean "ipv4_prefix"?)`}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := parseErrors(t, transferSets+tt.keys+"\n"+tt.src)
			for i := 0; i < max(len(errs), len(tt.want)); i++ {
				switch {
				case i >= len(errs):
					t.Errorf("missing error %d: %d:%d: %s", i, tt.want[i].line, tt.want[i].col, tt.want[i].text)
				case i >= len(tt.want):
					t.Errorf("unexpected error %d: %v", i, errs[i])
				default:
					got, want := errs[i], tt.want[i]
					if got.Line != want.line || got.Column != want.col || !strings.Contains(got.Error(), want.text) {
						t.Errorf("error %d = %v, want %d:%d: ...%s...", i, got, want.line, want.col, want.text)
					}
				}
			}
		})
	}
}

// TestPersistenceNeedsRecords: max_persistence_records = 0 is refused when
// a set is persistent (its records would never be kept), accepted when none
// is; a negative count is refused.
func TestPersistenceNeedsRecords(t *testing.T) {
	head := "[dataplane]\ninterfaces = [\"eth1\"]\nmax_persistence_records = %s\n" + transferSets[len("[dataplane]\ninterfaces = [\"eth1\"]\n"):]
	for _, tc := range []struct{ n, keys, want string }{
		{"0", `persistence = "client"`, `test.toml:3:27: dataplane.max_persistence_records: max_persistence_records 0 leaves no room for the clients of target set "cd-udp", which is persistent`},
		{"-1", "", "test.toml:3:27: dataplane.max_persistence_records: max_persistence_records -1 is negative"},
	} {
		src := strings.Replace(head, "%s", tc.n, 1) + tc.keys + "\n"
		errs := parseErrors(t, src)
		if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), tc.want) {
			t.Errorf("Parse(max_persistence_records = %s, %s) = %v, want %s...", tc.n, tc.keys, errs, tc.want)
		}
	}
	if _, err := config.Parse("t.toml", []byte(strings.Replace(head, "%s", "0", 1))); err != nil {
		t.Errorf("Parse(max_persistence_records = 0, no persistent set) = %v, want it valid", err)
	}
}

// TestPersistenceGroupServers: persistence follows a server by address, so
// members sharing no server address are refused, and a member lacking a
// server another member has is valid but warned about, at the member's
// entry in target_sets.
func TestPersistenceGroupServers(t *testing.T) {
	const sets = `[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "a"
address = "192.0.2.10"
ports = ["22"]
server = [{ address = "198.51.100.11" }, { address = "198.51.100.12" }, { address = "198.51.100.13" }]
[[target_set]]
name = "b"
address = "192.0.2.11"
ports = ["22"]
server = [%s]
[[persistence_group]]
name = "g"
target_sets = ["a", "b"]
`
	src := strings.Replace(sets, "%s", `{ address = "198.51.100.21" }`, 1)
	errs := parseErrors(t, src)
	want := `test.toml:15:21: persistence_group[0].target_sets[1]: target sets "a" and "b" share no server address`
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), want) {
		t.Errorf("Parse(disjoint members) = %v, want %s...", errs, want)
	}

	src = strings.Replace(sets, "%s", `{ address = "198.51.100.11" }, { address = "198.51.100.12" }`, 1)
	s, err := config.Parse("test.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want = `test.toml:15:21: warning: persistence_group[0].target_sets[1]: target set "b" has no server 198.51.100.13, which "a" has: ` +
		`clients pinned to it through "a" are balanced anew in "b" (hint: persistence follows a server by address: list the same servers in every member)`
	if len(s.Warnings) != 1 || s.Warnings[0].Error() != want {
		t.Errorf("Warnings = %v, want\n%s", s.Warnings, want)
	}
}

// TestOwnedPortsErrors: owned ranges must lie within the set's ports and
// belong to one server each; each error names the other owner and its line.
func TestOwnedPortsErrors(t *testing.T) {
	const head = `[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "fasp"
address = "192.0.2.10"
protocols = ["udp"]
ports = ["33001-33020", "33030"]
  [[target_set.server]]
  address = "198.51.100.11"
  owned_ports = ["33001-33010"]
  [[target_set.server]]
  address = "198.51.100.12"
`
	for _, tc := range []struct{ owned, want string }{
		{`["33011-33021"]`, `test.toml:13:18: target_set[0].server[1].owned_ports[0]: owned range 33011-33021 is not within the set's ports (33001-33020, 33030) (hint: add the range to the set's ports, or narrow it)`},
		{`["33021-33030"]`, `owned range 33021-33030 is not within the set's ports`},
		{`["33030", "33010-33012"]`, `test.toml:13:27: target_set[0].server[1].owned_ports[1]: owned range 33010-33012 overlaps server[0] "198.51.100.11"'s owned_ports[0] (33001-33010) in 33010 (line 10) (hint: a port is owned by one server)`},
		{`["33011-33015", "33015"]`, `test.toml:13:33: target_set[0].server[1].owned_ports[1]: owned range 33015 overlaps this server's owned_ports[0] (33011-33015) in 33015`},
		{`["*"]`, `target_set[0].server[1].owned_ports[0]: "*" would send every packet of the set to this server`},
		{`["33015-33011"]`, `target_set[0].server[1].owned_ports[0]: port range 33015-33011 is reversed (hint: write "33011-33015")`},
		{`["33x"]`, `target_set[0].server[1].owned_ports[0]: "33x" is not a port number`},
		{`[0]`, `target_set[0].server[1].owned_ports[0]: port 0 is out of range`},
		{`"33011"`, `target_set[0].server[1].owned_ports: expected an array, got string "33011" (hint: use a list: owned_ports = ["33011"])`},
	} {
		errs := parseErrors(t, head+"  owned_ports = "+tc.owned+"\n")
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), tc.want) {
			t.Errorf("Parse(owned_ports = %s) = %v, want one error containing\n%s", tc.owned, errs, tc.want)
		}
	}
}

// TestValidatePersistenceInCode: a Spec built in code must keep a member's
// persistence equal to its group's, and a group's members persistent.
func TestValidatePersistenceInCode(t *testing.T) {
	s, err := config.Parse("t.toml", []byte(transferSets+"[[persistence_group]]\nname = \"cd\"\ntarget_sets = [\"cd-tcp\", \"cd-udp\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatalf("Validate() of a parsed spec = %v", err)
	}
	s.TargetSets[1].Persistence.Timeout = time.Minute
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), `persistence of target set "cd-udp" differs from its persistence_group "cd"`) {
		t.Errorf("Validate(member timeout changed) = %v, want the difference reported", err)
	}
	s.TargetSets[1].Persistence = nil
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), `target set "cd-udp" is in persistence_group "cd" but has no persistence`) {
		t.Errorf("Validate(member without persistence) = %v, want it reported", err)
	}
	s.TargetSets[1].Persistence = &config.Persistence{Group: "other", Timeout: time.Minute, IPv4Prefix: 32, IPv6Prefix: 128}
	s.PersistenceGroups[0].TargetSets = []string{"cd-tcp"}
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), `persistence_group "other" does not list target set "cd-udp"`) {
		t.Errorf("Validate(unknown group) = %v, want it reported", err)
	}
}
