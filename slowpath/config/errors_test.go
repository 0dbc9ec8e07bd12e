package config_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/slowpath/config"
)

// wantErr is one expected error: its position and a substring of Error().
type wantErr struct {
	line, col int
	text      string
}

// parseErrors parses src and returns its Errors, failing if it parses.
func parseErrors(t *testing.T, src string) config.Errors {
	t.Helper()
	s, err := config.Parse("test.toml", []byte(src))
	if err == nil {
		t.Fatalf("Parse() = %+v, want errors", s)
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse() error = %T %v, want config.Errors", err, err)
	}
	return errs
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []wantErr
	}{{
		name: "syntax error",
		src:  "[dataplane\ninterfaces = [\"eth1\"]\n",
		want: []wantErr{{1, 11, "invalid TOML: "}},
	}, {
		name: "duplicate key",
		src:  "[dataplane]\ninterfaces = [\"a\"]\ninterfaces = [\"b\"]\n",
		want: []wantErr{{3, 1, "already defined (hint: each key and table may be defined once"}},
	}, {
		name: "unknown keys with suggestions",
		src: `[dataplane]
interfaces = ["eth1"]
ring_sise = 64
[logg]
level = "info"
[metrics]
`,
		want: []wantErr{
			{3, 1, `dataplane.ring_sise: unknown key (hint: did you mean "ring_size"?)`},
			{4, 2, `logg: unknown table (hint: did you mean "log"?)`},
			{6, 2, `metrics: unknown table (hint: valid keys in the top level: dataplane, log, api, target_set, persistence_group, bgp, ha)`},
		},
	}, {
		name: "misspelt required key is not also missing",
		src:  "[dataplane]\ninterface = [\"eth1\"]\n",
		want: []wantErr{{2, 1, `dataplane.interface: unknown key (hint: did you mean "interfaces"?)`}},
	}, {
		name: "key in the wrong table",
		src:  "interfaces = [\"eth1\"]\n",
		want: []wantErr{
			{1, 1, `interfaces: unknown key (hint: "interfaces" belongs in [dataplane])`},
			{1, 1, "dataplane.interfaces: required key is missing"},
		},
	}, {
		name: "empty file",
		src:  "",
		want: []wantErr{{1, 1, `dataplane.interfaces: required key is missing (hint: list the NICs`}},
	}, {
		name: "wrong types",
		src: `[dataplane]
interfaces = "eth1"
busy_poll = "false"
batch_size = 64.0
[log]
level = 3
`,
		want: []wantErr{
			{2, 14, `dataplane.interfaces: expected an array, got string "eth1" (hint: use a list: interfaces = ["eth1"])`},
			{3, 13, `expected true or false, got string "false" (hint: write false without quotes)`},
			{4, 14, "dataplane.batch_size: expected an integer, got float 64"},
			{6, 9, `log.level: expected a string, got integer 3 (hint: put it in quotes: level = "3")`},
		},
	}, {
		name: "dataplane ranges",
		src: `[dataplane]
interfaces = ["eth1", "eth1", "this-name-is-too-long"]
queues = []
cpus = [-1, 2, 2]
batch_size = 4096
ring_size = 2048
frame_size = 1500
frames = 3000
max_associations = 10
zero_copy = "yes"
xdp_mode = "Native"
`,
		want: []wantErr{
			{2, 23, `dataplane.interfaces[1]: interface "eth1" is already listed as interfaces[0]`},
			{2, 31, "longer than 15 bytes"},
			{3, 10, `dataplane.queues: no queues listed (hint: write queues = "all"`},
			{4, 9, "dataplane.cpus[0]: CPU id -1 is out of range"},
			{4, 16, "dataplane.cpus[2]: CPU 2 is already listed at index 1"},
			{5, 14, "batch_size 4096 is out of range 1..1024"},
			{7, 14, "frame_size 1500 is not 2048 or 4096"},
			{8, 10, "frames 3000 is not a power of two >= 2 * ring_size (4096) (hint: leave frames = 0 for 8192"},
			{9, 20, "max_associations 10 is below the minimum of 1024"},
			{10, 13, `dataplane.zero_copy: unknown value "yes" (hint: valid values: "auto", "on" or "off")`},
			{11, 12, `dataplane.xdp_mode: unknown value "Native" (hint: did you mean "native"?)`},
		},
	}, {
		name: "batch larger than ring",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\nring_size = 64\nbatch_size = 128\n",
		want: []wantErr{{4, 14, "batch_size 128 is larger than ring_size 64"}},
	}, {
		name: "ring size not a power of two",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\nring_size = 1000\nframes = 1000\n",
		// frames is not checked against an invalid ring size.
		want: []wantErr{{3, 13, "ring_size 1000 is not a power of two in 64..16384"}},
	}, {
		name: "queues neither all nor a list",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\nqueues = \"some\"\n",
		want: []wantErr{{3, 10, `dataplane.queues: expected "all" or a list of queue ids, got "some"`}},
	}, {
		name: "queues list with a string",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\nqueues = [0, \"1\", 0]\n",
		want: []wantErr{
			{3, 14, `dataplane.queues[1]: expected an integer, got string "1" (hint: write 1 without quotes)`},
			{3, 19, "dataplane.queues[2]: queue 0 is already listed at index 0"},
		},
	}, {
		name: "dotted keys",
		src:  "dataplane.interfaces = [\"eth1\"]\ndataplane.ring_size = 100\n",
		want: []wantErr{{2, 23, "dataplane.ring_size: ring_size 100"}},
	}, {
		name: "api without token on a public address",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\n[api]\nlisten = \"0.0.0.0:9180\"\n",
		want: []wantErr{{4, 10, `api.listen: "0.0.0.0:9180" is reachable from other hosts but api.token is empty`}},
	}, {
		name: "api with a token on a public address but no TLS",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\n[api]\nlisten = \"0.0.0.0:9180\"\ntoken = \"t\"\n",
		want: []wantErr{{4, 10, `api.listen: "0.0.0.0:9180" is reachable from other hosts but has no TLS: the token would travel in clear`}},
	}, {
		name: "api TLS key without certificate",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\n[api]\nlisten = \"127.0.0.1:9180\"\ntls_key = \"/k.pem\"\n",
		want: []wantErr{{5, 11, `api.tls_key: api.tls_key is set but api.tls_cert is not`}},
	}, {
		name: "api TLS files on relative paths",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\n[api]\nlisten = \"127.0.0.1:9180\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n",
		want: []wantErr{
			{5, 12, `api.tls_cert: "c.pem" is not an absolute path`},
			{6, 11, `api.tls_key: "k.pem" is not an absolute path`},
		},
	}, {
		name: "api TLS on a unix socket",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\n[api]\nlisten = \"unix:/run/ipfront/api.sock\"\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n",
		want: []wantErr{{5, 12, `api.tls_cert: TLS is for TCP listeners; "unix:/run/ipfront/api.sock" is a unix socket`}},
	}, {
		name: "api listen on a host name",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\n[api]\nlisten = \"lb.example.com:9180\"\ntoken = \"t\"\n",
		want: []wantErr{{4, 10, `listen host "lb.example.com" is not an IP address`}},
	}, {
		name: "api listen on a relative unix socket",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\n[api]\nlisten = \"unix:api.sock\"\n",
		want: []wantErr{{4, 10, `unix socket path "api.sock" is not absolute`}},
	}, {
		name: "api listen without port",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\n[api]\nlisten = \"127.0.0.1\"\n",
		want: []wantErr{{4, 10, `invalid listen address "127.0.0.1"`}},
	}, {
		name: "log values",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\n[log]\nlevel = \"warning\"\nformat = \"text\"\n",
		want: []wantErr{
			{4, 9, `log.level: unknown value "warning" (hint: valid values: "debug", "info", "warn" or "error")`},
			{5, 10, `log.format: unknown value "text" (hint: valid values: "console" or "json")`},
		},
	}, {
		name: "target set values",
		src: `[dataplane]
interfaces = ["eth1"]

[[target_set]]
name = "Web"
address = "192.0.2.300"
protocols = ["tcp", "icmp", "tcp"]
ports = ["80-70", "x", "*"]
method = "least-load"
forwarding = "gre"
delete_age = "500ms"
table_size = 1000
`,
		want: []wantErr{
			{4, 1, "target_set[0].server: no servers (hint: add at least one [[target_set.server]]"},
			{5, 8, `target_set[0].name: invalid target set name "Web"`},
			{6, 11, `target_set[0].address: invalid IP address "192.0.2.300"`},
			{7, 21, `target_set[0].protocols[1]: unknown protocol "icmp"`},
			{7, 29, "target_set[0].protocols[2]: protocol tcp is listed twice"},
			{8, 10, `target_set[0].ports[0]: port range 80-70 is reversed (hint: write "70-80")`},
			{8, 19, `target_set[0].ports[1]: "x" is not a port number`},
			{9, 10, `target_set[0].method: unknown value "least-load" (hint: did you mean "least_load"?)`},
			{10, 14, `target_set[0].forwarding: unknown value "gre" (hint: did you mean "gue"?)`},
			{11, 14, "target_set[0].delete_age: delete_age 500ms is shorter than 1s"},
			{12, 14, "target_set[0].table_size: table_size 1000 is not prime (hint: the next prime is 1009)"},
		},
	}, {
		name: "target set syntax of values",
		src: `[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "web"
address = "10.0.0.0/24"
ports = [80, 70000, " 443 ", "1-2-3", true]
delete_age = 30
table_size = 100
server = [{ address = "10.0.0.1" }]
`,
		want: []wantErr{
			{5, 11, `invalid IP address "10.0.0.0/24" (hint: write the address without a prefix length: "10.0.0.0")`},
			{6, 14, "target_set[0].ports[1]: port 70000 is out of range (hint: ports are 1..65535)"},
			{6, 30, `target_set[0].ports[3]: port range "1-2-3": "2-3" is not a port number`},
			{6, 39, "target_set[0].ports[4]: expected a port string"},
			{7, 14, `target_set[0].delete_age: expected a duration string, got integer 30 (hint: add a unit: delete_age = "30s")`},
			{8, 14, "table_size 100 is out of range 251..1000003"},
		},
	}, {
		name: "missing keys point at the table header",
		src: `[dataplane]
interfaces = ["eth1"]

[[target_set]]
  [[target_set.server]]
  weight = 1
`,
		want: []wantErr{
			{4, 1, "target_set[0].name: required key is missing"},
			{4, 1, "target_set[0].address: required key is missing"},
			{5, 3, "target_set[0].server[0].address: required key is missing"},
		},
	}, {
		name: "servers",
		src: `[dataplane]
interfaces = ["eth1"]

[[target_set]]
name = "web"
address = "2001:db8::10"
  [[target_set.server]]
  address = "10.0.0.1"
  [[target_set.server]]
  address = "2001:db8::10"
  [[target_set.server]]
  address = "2001:db8::11"
  weight = -1
  [[target_set.server]]
  address = "2001:db8::11"
  name = "bad name"
  [[target_set.server]]
  address = "::ffff:10.0.0.1"
  [[target_set.server]]
  address = "2001:db8::12"
  nmae = "x"
`,
		want: []wantErr{
			{8, 13, "target_set[0].server[0].address: server 10.0.0.1 is IPv4 but the VIP 2001:db8::10 is IPv6 (hint: with DSR"},
			{10, 13, "target_set[0].server[1].address: server address 2001:db8::10 is the VIP"},
			{13, 12, "target_set[0].server[2].weight: weight -1 is out of range 0..1000"},
			{15, 13, "target_set[0].server[3].address: server 2001:db8::11 is already listed as server[2]"},
			{16, 10, `target_set[0].server[3].name: invalid server name "bad name"`},
			{18, 13, "server address ::ffff:10.0.0.1 is an IPv4-mapped IPv6 address (hint: write it as 10.0.0.1)"},
			{21, 3, `target_set[0].server[5].nmae: unknown key (hint: did you mean "name"?)`},
		},
	}, {
		name: "special addresses",
		src: `[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "web"
address = "0.0.0.0"
server = [{ address = "127.0.0.1" }, { address = "224.0.0.1" }, { address = "255.255.255.255" }]
`,
		want: []wantErr{
			{5, 11, "VIP 0.0.0.0 is unspecified"},
			{6, 23, "server address 127.0.0.1 is a loopback address"},
			{6, 50, "server address 224.0.0.1 is a multicast address"},
			{6, 77, "server address 255.255.255.255 is the broadcast address"},
		},
	}, {
		name: "inline server tables",
		src: `[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "a"
address = "192.0.2.10"
server = [
  { address = "10.0.0.1" },
  { address = "10.0.0.2", weight = 5000 },
]
`,
		want: []wantErr{{8, 36, "target_set[0].server[1].weight: weight 5000 is out of range"}},
	}, {
		name: "duplicate name and overlapping VIP",
		src: `[dataplane]
interfaces = ["eth1"]

[[target_set]]
name = "a"
address = "192.0.2.10"
protocols = ["tcp", "udp"]
ports = ["80", "443"]
server = [{ address = "10.0.0.1" }]

[[target_set]]
name = "b"
address = "192.0.2.10"
protocols = ["udp"]
ports = ["53"]
server = [{ address = "10.0.0.1" }]

[[target_set]]
name = "a"
address = "192.0.2.10"
protocols = ["sctp", "tcp"]
ports = ["1-100"]
server = [{ address = "10.0.0.1" }]
`,
		want: []wantErr{
			{19, 8, `target_set[2].name: name "a" is already used by target_set[0] (line 4)`},
			{20, 11, `target_set[2].address: VIP 192.0.2.10 tcp/80 is already served by target_set[0] "a" (line 4) (hint: two target sets may share a VIP only if their protocols or ports are disjoint)`},
		},
	}, {
		name: "overlapping ports in one set",
		src: `[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "a"
address = "192.0.2.10"
ports = ["8000-8099", "8050", "*"]
server = [{ address = "10.0.0.1" }]
`,
		want: []wantErr{
			{6, 23, "target_set[0].ports[1]: 8050 overlaps ports[0] (8000-8099) (hint: list each port once)"},
			{6, 31, `target_set[0].ports[2]: * overlaps ports[0] (8000-8099) (hint: "*" already covers every port`},
		},
	}, {
		name: "single table instead of an array of tables",
		src:  "[dataplane]\ninterfaces = [\"eth1\"]\n[target_set]\nname = \"x\"\n",
		want: []wantErr{{3, 1, "target_set: expected an array of tables, got a table (hint: write [[target_set]] with double brackets)"}},
	}, {
		name: "array element that is not a table",
		src:  "target_set = [5]\n[dataplane]\ninterfaces = [\"eth1\"]\n",
		want: []wantErr{{1, 15, "target_set[0]: expected a table, got integer 5"}},
	}, {
		name: "misspelt server table",
		src: `[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "a"
address = "192.0.2.10"
  [[target_set.servers]]
  address = "10.0.0.1"
`,
		// Not also "no servers": that follows from the typo.
		want: []wantErr{{6, 16, `target_set[0].servers: unknown table (hint: did you mean "server"?)`}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := parseErrors(t, tt.src)
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

func TestTooManyServers(t *testing.T) {
	var b strings.Builder
	b.WriteString("[dataplane]\ninterfaces = [\"eth1\"]\n[[target_set]]\nname = \"big\"\naddress = \"192.0.2.1\"\n")
	for i := range config.MaxServers + 2 {
		fmt.Fprintf(&b, "[[target_set.server]]\naddress = \"10.0.0.%d\"\n", i+1)
	}
	errs := parseErrors(t, b.String())
	// Five lines of head, then two lines per server: the 17th starts at line 38.
	want := "test.toml:38:1: target_set[0].server[16]: 18 servers, more than 16 " +
		"(hint: a target set holds at most 16 servers; split into two sets or two VIPs)"
	if len(errs) != 1 || errs[0].Error() != want {
		t.Errorf("Parse() = %v, want %s", errs, want)
	}
}

// TestErrorFormat pins the exact text `ipfront check` prints.
func TestErrorFormat(t *testing.T) {
	errs := parseErrors(t, "[dataplane]\ninterfaces = [\"eth1\"]\nring_sise = 64\n[log]\nlevel = \"loud\"\n")
	want := `test.toml:3:1: dataplane.ring_sise: unknown key (hint: did you mean "ring_size"?)` + "\n" +
		`test.toml:5:9: log.level: unknown value "loud" (hint: valid values: "debug", "info", "warn" or "error")`
	if got := errs.Error(); got != want {
		t.Errorf("Errors.Error() =\n%s\nwant\n%s", got, want)
	}

	for _, tt := range []struct {
		err  config.Error
		want string
	}{
		{config.Error{File: "a.toml", Line: 1, Column: 2, Msg: "m", Hint: "h"}, "a.toml:1:2: m (hint: h)"},
		{config.Error{File: "a.toml", Line: 1, Column: 2, Msg: "m"}, "a.toml:1:2: m"},
		{config.Error{File: "a.toml", Msg: "m"}, "a.toml: m"},
		{config.Error{Msg: "m", Hint: "h"}, "m (hint: h)"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("%#v.Error() = %q, want %q", tt.err, got, tt.want)
		}
	}
}
