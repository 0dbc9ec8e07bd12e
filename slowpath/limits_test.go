package slowpath

import (
	"testing"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/slowpath/config"
)

// TestConfigLimitsMatchDataplane keeps the limits the configuration is
// validated against equal to those the data plane enforces: config does not
// import the fast path, so a limit changed on one side only would let
// `ipfront check` pass what the daemon then refuses (or refuse what works).
func TestConfigLimitsMatchDataplane(t *testing.T) {
	for _, c := range []struct {
		name         string
		config, fast int
	}{
		{"MaxTargetSets", config.MaxTargetSets, fastpath.MaxSets},
		{"MaxTargetSets (record key)", config.MaxTargetSets, assoc.MaxSetID + 1},
		{"MaxPeerGroups", config.MaxPeerGroups, fastpath.MaxPeerGroups},
		{"MaxInterfaces", config.MaxInterfaces, fastpath.MaxInterfaces},
		{"MaxServers", config.MaxServers, fastpath.MaxServers},
		{"RecordBytes", config.RecordBytes, 2 * assoc.SlotBytes},
	} {
		if c.config != c.fast {
			t.Errorf("config.%s = %d, want the data plane's %d", c.name, c.config, c.fast)
		}
	}
	if _, err := assoc.NewShard(config.MaxWorkerRecords + 1); err == nil {
		t.Errorf("assoc.NewShard(config.MaxWorkerRecords+1) succeeded: the per-worker limit is larger than config.MaxWorkerRecords = %d", config.MaxWorkerRecords)
	}
}
