package slowpath

import (
	"fmt"
	"slices"
	"testing"
)

// Issue 7: a set without TCP and without [target_set.health] is not
// checked; a TCP check of its first port would mark every server down.
func TestUDPOnlySetNotCheckedByDefault(t *testing.T) {
	spec := parseSpec(t, dataplaneTOML+`
[[target_set]]
name = "dns"
address = "192.0.2.53"
protocols = ["udp"]
ports = ["53"]
  [[target_set.server]]
  address = "198.51.100.11"
[[target_set]]
name = "dns-checked"
address = "192.0.2.54"
protocols = ["udp"]
ports = ["53"]
  [[target_set.server]]
  address = "198.51.100.11"
  [target_set.health]
  type = "tcp"
  port = 8053
[[target_set]]
name = "mixed"
address = "192.0.2.55"
protocols = ["udp", "tcp"]
ports = ["53"]
  [[target_set.server]]
  address = "198.51.100.11"
`)
	var got []string
	for _, tg := range healthTargets(spec) {
		got = append(got, fmt.Sprintf("%s:%s:%d", tg.Set, tg.Check.Type, tg.Check.Port))
	}
	want := []string{"dns-checked:tcp:8053", "mixed:tcp:53"}
	if !slices.Equal(got, want) {
		t.Fatalf("health targets = %v, want %v", got, want)
	}
}
