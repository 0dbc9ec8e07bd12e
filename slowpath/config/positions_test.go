package config_test

import (
	"strings"
	"testing"

	"github.com/ipfront/ipfront/slowpath/config"
)

// TestErrorPositionsInLaterTables checks that an error anywhere in a file
// with several target sets names the line and column it is about: in the
// [[target_set.server]], [target_set.health], [[target_set.peer_group]] and
// [target_set.balance] tables of the second and third sets (whose paths
// depend on counting earlier headers), in a middle element of an array
// (single- and multi-line, after comments), and in an element that is itself
// an array (which go-toml gives no position of its own).
func TestErrorPositionsInLaterTables(t *testing.T) {
	const src = `[dataplane]
interfaces = ["eth1"]
cpus = [
  0,
  [1],
  2,
]

[[target_set]]
name = "first"
address = "192.0.2.10"
ports = ["80"]
  [[target_set.server]]
  address = "198.51.100.11"
  [target_set.health]
  interval = "1s"

[[target_set]]
name = "second"
address = "192.0.2.11"
method = "peer_aware_least_load"
protocols = ["tcp", "udx", "udp"]
ports = [
  "80",  # web
  # the next one is wrong
  "9x",
  "443",
]
  [[target_set.server]]
  address = "198.51.100.21"
  [[target_set.server]]
  address = "198.51.100.2x"
  [[target_set.server]]
  address = "198.51.100.23"
  weight = 5000
  [target_set.health]
  interval = "1q"
  fall = 0
  [[target_set.peer_group]]
  name = "a"
  prefixes = ["203.0.113.0/25"]
  [[target_set.peer_group]]
  name = "b"
  prefixes = ["203.0.113.128/25", "bad", "198.51.100.0/24"]
  [target_set.balance]
  threshold = "high"

[[target_set]]
name = "third"
address = "192.0.2.12"
protocols = [
  "tcp",
  ["udp"],
]
ports = ["81"]
  [target_set.health]
  type = "tcpx"
  [[target_set.server]]
  weight = 2
  [[target_set.server]]
  address = "198.51.100.32"
  nme = "x"
  [[target_set.server]]
  address = "198.51.100.33"
  weight = -1
`
	want := []string{
		"test.toml:5:3: dataplane.cpus[1]: expected an integer, got an array",
		"test.toml:22:21: target_set[1].protocols[1]: unknown protocol \"udx\"",
		"test.toml:26:3: target_set[1].ports[1]: \"9x\" is not a port number",
		"test.toml:32:13: target_set[1].server[1].address: invalid IP address",
		"test.toml:35:12: target_set[1].server[2].weight: weight 5000 is out of range",
		"test.toml:37:14: target_set[1].health.interval: invalid duration \"1q\"",
		"test.toml:38:10: target_set[1].health.fall: fall 0 is out of range",
		"test.toml:44:35: target_set[1].peer_group[1].prefixes[1]: invalid prefix \"bad\"",
		"test.toml:46:15: target_set[1].balance.threshold: expected a number",
		"test.toml:53:3: target_set[2].protocols[1]: expected a string, got an array",
		"test.toml:57:10: target_set[2].health.type: unknown value \"tcpx\"",
		// A missing key is reported at the header of its table.
		"test.toml:58:3: target_set[2].server[0].address: required key is missing",
		"test.toml:62:3: target_set[2].server[1].nme: unknown key",
		"test.toml:65:12: target_set[2].server[2].weight: weight -1 is out of range",
	}
	checkErrorPrefixes(t, parseErrors(t, src), want)
}

// TestErrorsNameTheOtherSetsLine checks the second position a message
// gives: the line of the earlier target set a later one collides with.
func TestErrorsNameTheOtherSetsLine(t *testing.T) {
	const src = `[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "a"
address = "192.0.2.10"
ports = ["80"]
  [[target_set.server]]
  address = "198.51.100.11"
[[target_set]]
name = "b"
address = "192.0.2.11"
ports = ["80"]
  [[target_set.server]]
  address = "198.51.100.11"
[[target_set]]
name = "b"
address = "192.0.2.11"
ports = ["79-81"]
  [[target_set.server]]
  address = "198.51.100.11"
`
	want := []string{
		`test.toml:16:8: target_set[2].name: name "b" is already used by target_set[1] (line 9)`,
		`test.toml:17:11: target_set[2].address: VIP 192.0.2.11 tcp/80 is already served by target_set[1] "b" (line 9)`,
	}
	checkErrorPrefixes(t, parseErrors(t, src), want)
}

// checkErrorPrefixes checks that errs are, in order, errors whose text
// starts with want: "file:line:column: path: message".
func checkErrorPrefixes(t *testing.T, errs config.Errors, want []string) {
	t.Helper()
	for i := range max(len(errs), len(want)) {
		switch {
		case i >= len(errs):
			t.Errorf("missing error %d: %s", i, want[i])
		case i >= len(want):
			t.Errorf("unexpected error %d: %v", i, errs[i])
		case !strings.HasPrefix(errs[i].Error(), want[i]):
			t.Errorf("error %d = %v, want %s...", i, errs[i], want[i])
		}
	}
}
