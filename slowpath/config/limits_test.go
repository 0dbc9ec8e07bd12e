package config_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/slowpath/config"
)

// TestDataplaneLimits checks that configurations the data plane cannot hold
// are refused by Parse (and so by ipfront check) at the element beyond the
// limit, instead of failing when the daemon builds its tables.
func TestDataplaneLimits(t *testing.T) {
	sets := func(n int) string {
		var b strings.Builder
		b.WriteString("[dataplane]\ninterfaces = [\"eth1\"]\n")
		for i := range n {
			fmt.Fprintf(&b, "[[target_set]]\nname = \"s%d\"\naddress = \"192.0.2.1\"\nports = [\"%d\"]\nserver = [{ address = \"198.51.100.1\" }]\n", i, 1000+i)
		}
		return b.String()
	}
	groups := func(n int) string {
		var b strings.Builder
		b.WriteString("[dataplane]\ninterfaces = [\"eth1\"]\n[[target_set]]\nname = \"mme\"\naddress = \"192.0.2.1\"\n" +
			"method = \"peer_aware_least_load\"\nserver = [{ address = \"198.51.100.1\" }]\n")
		for i := range n {
			fmt.Fprintf(&b, "[[target_set.peer_group]]\nname = \"g%d\"\nprefixes = [\"203.0.%d.0/24\"]\n", i, i)
		}
		return b.String()
	}
	ifaces := func(n int) string {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("%q", fmt.Sprintf("eth%d", i))
		}
		return "[dataplane]\ninterfaces = [" + strings.Join(names, ", ") + "]\n"
	}
	tests := []struct {
		name string
		src  string
		want string // "" for valid
	}{
		{"256 target sets", sets(config.MaxTargetSets), ""},
		// Two lines of [dataplane], five per set: the 257th starts at line 1283.
		{"257 target sets", sets(config.MaxTargetSets + 1),
			"test.toml:1283:1: target_set[256]: 257 target sets, more than 256"},
		{"64 peer groups", groups(config.MaxPeerGroups), ""},
		// Seven lines of head, three per group: the 65th starts at line 200.
		{"65 peer groups", groups(config.MaxPeerGroups + 1),
			"test.toml:200:1: target_set[0].peer_group[64]: 65 peer groups, more than 64"},
		{"8 interfaces", ifaces(config.MaxInterfaces), ""},
		{"9 interfaces", ifaces(config.MaxInterfaces + 1),
			`test.toml:2:79: dataplane.interfaces[8]: 9 interfaces, more than 8`},
		{"records beyond any memory", "[dataplane]\ninterfaces = [\"eth1\"]\nmax_associations = 1099511627777\n",
			"test.toml:3:20: dataplane.max_associations: max_associations 1099511627777 is more than any machine's memory holds"},
		{"persistence records beyond any memory", "[dataplane]\ninterfaces = [\"eth1\"]\nmax_persistence_records = 2000000000000\n",
			"test.toml:3:27: dataplane.max_persistence_records: max_persistence_records 2000000000000 is more than any machine's memory holds"},
		{"one worker's table full", "[dataplane]\ninterfaces = [\"eth1\"]\nqueues = [0]\nmax_associations = 1073741824\n",
			"test.toml:4:20: dataplane.max_associations: 1342177280 records per worker (1 workers) is more than one worker's table holds (1073741824)"},
		{"spread over the workers", "[dataplane]\ninterfaces = [\"eth1\", \"eth2\"]\nqueues = [0, 1]\nmax_associations = 1073741824\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Parse("test.toml", []byte(tt.src))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Parse() = %v, want no error", err)
			case tt.want != "" && err == nil:
				t.Errorf("Parse() = nil, want %s", tt.want)
			case tt.want != "" && !strings.HasPrefix(err.Error(), tt.want):
				t.Errorf("Parse() = %v, want %s...", err, tt.want)
			}
		})
	}
}

// TestWorkerRecords pins how the limits are divided over the workers: as
// the data plane divides them, rounding each share up.
func TestWorkerRecords(t *testing.T) {
	d := config.Dataplane{MaxAssociations: 1000, MaxPersistenceRecords: 250}
	for _, tt := range []struct{ workers, want int }{{0, 1250}, {1, 1250}, {3, 334 + 84}, {4, 250 + 63}} {
		if got := d.WorkerRecords(tt.workers); got != tt.want {
			t.Errorf("WorkerRecords(%d) = %d, want %d", tt.workers, got, tt.want)
		}
	}
}
