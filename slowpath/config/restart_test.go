package config_test

import (
	"reflect"
	"testing"

	"github.com/ipfront/ipfront/slowpath/config"
)

// TestRestartKeys checks that RestartKeys names each key of [dataplane],
// [api] and [log] that changed, and nothing for target sets.
func TestRestartKeys(t *testing.T) {
	parse := func(src string) *config.Spec {
		t.Helper()
		s, err := config.Parse("t.toml", []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	base := parse("[dataplane]\ninterfaces = [\"eth1\"]\n[[target_set]]\nname = \"a\"\naddress = \"192.0.2.1\"\nserver = [{ address = \"10.0.0.1\" }]\n")
	tests := []struct {
		src  string
		want []string
	}{
		{"[dataplane]\ninterfaces = [\"eth1\"]\n[[target_set]]\nname = \"b\"\naddress = \"192.0.2.2\"\nserver = [{ address = \"10.0.0.2\" }]\n", nil},
		{"[dataplane]\ninterfaces = [\"eth1\"]\n[log]\nlevel = \"debug\"\nformat = \"json\"\n", []string{"log.level", "log.format"}},
		{"[dataplane]\ninterfaces = [\"eth1\", \"eth2\"]\nqueues = [0]\npartial_queues = true\nxdp_mode = \"native\"\nhash_seed = \"0123456789abcdef\"\nvlans = [5]\n",
			[]string{"dataplane.interfaces", "dataplane.queues", "dataplane.xdp_mode", "dataplane.partial_queues", "dataplane.hash_seed", "dataplane.vlans"}},
		{"[dataplane]\ninterfaces = [\"eth1\"]\ncpus = [1]\n[api]\nlisten = \"127.0.0.1:9999\"\npprof = true\n[log]\nlevel = \"warn\"\n",
			[]string{"dataplane.cpus", "api.listen", "api.pprof", "log.level"}},
	}
	for _, tt := range tests {
		if got := config.RestartKeys(base, parse(tt.src)); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("RestartKeys(base, %q) = %q, want %q", tt.src, got, tt.want)
		}
	}
}
