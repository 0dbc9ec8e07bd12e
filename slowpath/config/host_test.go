package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/slowpath/config"
)

// fakeHost has interfaces eth1 (4 RX queues) and eth2 (1), and avail bytes
// of memory.
func fakeHost(avail, hugeFree uint64) config.Host {
	queues := map[string]int{"eth1": 4, "eth2": 1}
	return config.Host{
		RXQueues:     func(name string) (int, bool) { n, ok := queues[name]; return n, ok },
		MemAvailable: avail, HugeFree: hugeFree,
	}
}

// loadOn writes src to a file and loads it with LoadOn.
func loadOn(t *testing.T, src string, h config.Host) (*config.Spec, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.toml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := config.LoadOn(path, h)
	if err != nil {
		// Drop the temporary directory from the messages.
		return s, errorString(strings.ReplaceAll(err.Error(), path, "test.toml"))
	}
	return s, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

// TestLoadOnQueues checks that a list of queues must name every RX queue of
// its interface: VIP traffic the NIC delivers to another queue would reach
// the kernel instead of ipfront. Before LoadOn the daemon started and lost
// that traffic silently.
func TestLoadOnQueues(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name, dp string
		want     string // "" for valid
	}{
		{"all queues", `interfaces = ["eth1", "eth2"]`, ""},
		{"every queue listed", "interfaces = [\"eth1\"]\nqueues = [3, 2, 1, 0]", ""},
		{"a subset", "interfaces = [\"eth1\"]\nqueues = [0, 1]",
			"test.toml:3:10: dataplane.queues: eth1 has 4 RX queues and queues leaves out 2, 3: VIP traffic the NIC delivers there would bypass ipfront and reach the kernel " +
				`(hint: write queues = "all"; or shrink the NIC to the served queues (ethtool -L eth1 combined 2); or, if its RSS table and flow rules send VIP traffic to the listed queues only (ipfront check --host shows the RSS table), set partial_queues = true)`},
		{"a subset, said to be partial", "interfaces = [\"eth1\"]\nqueues = [0, 1]\npartial_queues = true", ""},
		{"a queue that does not exist", "interfaces = [\"eth2\"]\nqueues = [0, 1]\npartial_queues = true",
			"test.toml:3:10: dataplane.queues: eth2 has 1 RX queues: queues 1 do not exist (hint: list queues 0..0, or grow the NIC's queues (ethtool -L eth2 combined N))"},
		{"an interface this machine lacks", "interfaces = [\"eth9\"]\nqueues = [0]", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadOn(t, "[dataplane]\n"+tt.dp+"\n", fakeHost(64*gib, 0))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("LoadOn() = %q,\nwant %q", got, tt.want)
			}
		})
	}
}

// TestLoadOnMemory checks that tables and UMEMs that do not fit the
// machine's available memory are refused before anything is mapped: the
// tables are touched only as they fill, so the daemon would start and then,
// under a SYN flood, be OOM-killed.
func TestLoadOnMemory(t *testing.T) {
	const mib = 1 << 20
	// One worker (eth2): 1M associations + 256K persistence records at
	// 64 bytes = 80 MiB of tables, and a UMEM of 8192 frames * 4 KiB =
	// 32 MiB.
	dp := "[dataplane]\ninterfaces = [\"eth2\"]\n"
	tests := []struct {
		name            string
		avail, hugeFree uint64
		extra           string
		want            string
	}{
		{"fits", 112 * mib, 0, "", ""},
		{"unknown memory", 0, 0, "", ""},
		{"does not fit", 111 * mib, 0, "",
			"test.toml:1:1: dataplane.max_associations: the association tables (80 MiB for 1 workers) and UMEMs (32 MiB) need 112 MiB, more than the 111 MiB available (MemAvailable)"},
		{"UMEM in hugetlb pages", 80 * mib, 32 * mib, "", ""},
		{"hugetlb pages not used", 80 * mib, 32 * mib, "huge_pages = \"off\"\n",
			"test.toml:1:1: dataplane.max_associations: the association tables (80 MiB for 1 workers) and UMEMs (32 MiB) need 112 MiB, more than the 80 MiB"},
		{"far beyond memory, placed at the key", 1 << 30, 0, "max_associations = 1000000000\nmax_persistence_records = 0\n",
			"test.toml:3:20: dataplane.max_associations: the association tables (61035 MiB for 1 workers) and UMEMs (32 MiB) need 61067 MiB, more than the 1024 MiB available"},
		{"one worker's table", 1 << 62, 0, "max_associations = 1073741824\nmax_persistence_records = 0\n", ""},
		{"one worker's table overflows", 1 << 62, 0, "max_associations = 1073741825\nmax_persistence_records = 0\n",
			"test.toml:3:20: dataplane.max_associations: 1073741825 records per worker (1 workers) is more than one worker's table holds (1073741824)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadOn(t, dp+tt.extra, fakeHost(tt.avail, tt.hugeFree))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("LoadOn() = %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Errorf("LoadOn() = %v,\nwant %s...", err, tt.want)
			}
		})
	}
}

// TestLoadOnThisHost checks ThisHost on the machine the tests run on: lo
// exists with one RX queue, memory is known, and the shipped example (whose
// interface eth1 may not exist here) loads.
func TestLoadOnThisHost(t *testing.T) {
	h := config.ThisHost()
	if n, ok := h.RXQueues("lo"); !ok || n < 1 {
		t.Errorf("ThisHost().RXQueues(lo) = %d, %v; want >= 1, true", n, ok)
	}
	if _, ok := h.RXQueues("no-such-if0"); ok {
		t.Errorf("ThisHost().RXQueues(no-such-if0) = _, true; want false")
	}
	if h.MemAvailable == 0 {
		t.Errorf("ThisHost().MemAvailable = 0, want /proc/meminfo's MemAvailable")
	}
	if _, err := config.LoadOn(filepath.Join(configsDir, "demo.toml"), h); err != nil {
		t.Errorf("LoadOn(demo.toml) = %v", err)
	}
}

// TestCheckHostBuiltInCode checks CheckHost on a Spec built in code.
func TestCheckHostBuiltInCode(t *testing.T) {
	s, err := config.Parse("built", []byte("[dataplane]\ninterfaces = [\"eth1\"]\nqueues = [0]\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = s.CheckHost(fakeHost(1<<40, 0))
	if err == nil || !strings.HasPrefix(err.Error(), "built: dataplane.queues: eth1 has 4 RX queues and queues leaves out 1, 2, 3") {
		t.Errorf("CheckHost() = %v, want the subset refused", err)
	}
}
