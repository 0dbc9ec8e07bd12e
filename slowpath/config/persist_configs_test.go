package config_test

import (
	"path/filepath"
	"testing"

	"github.com/ipfront/ipfront/slowpath/config"
)

// TestShippedConfigsWarnNothing: no shipped configuration draws a warning.
func TestShippedConfigsWarnNothing(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(configsDir, "*.toml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		s, err := config.Load(f)
		if err != nil {
			t.Errorf("Load(%q): %v", f, err)
			continue
		}
		if len(s.Warnings) != 0 {
			t.Errorf("Load(%q) warns:\n%v", f, s.Warnings)
		}
	}
}

// TestFileTransferConfigs pins what the file-transfer examples promise:
// the HSAO Option 1 sets share one persistence group; in the owned-port
// examples every port of the data set belongs to exactly one server.
func TestFileTransferConfigs(t *testing.T) {
	load := func(name string) *config.Spec {
		t.Helper()
		s, err := config.Load(filepath.Join(configsDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	set := func(s *config.Spec, name string) *config.TargetSet {
		t.Helper()
		for i := range s.TargetSets {
			if s.TargetSets[i].Name == name {
				return &s.TargetSets[i]
			}
		}
		t.Fatalf("%s: no target set %q", s.Path, name)
		return nil
	}

	s := load("hsao-client-persistence.toml")
	ctl, fasp := set(s, "cd-control"), set(s, "cd-fasp")
	if ctl.Persistence == nil || fasp.Persistence == nil || ctl.Persistence.Group == "" || *ctl.Persistence != *fasp.Persistence {
		t.Errorf("%s: persistence %+v and %+v, want one group", s.Path, ctl.Persistence, fasp.Persistence)
	}

	for _, tc := range []struct{ file, set string }{{"hsao-udp-ports.toml", "cd-fasp"}, {"aspera.toml", "aspera-nodes"}} {
		ts := set(load(tc.file), tc.set)
		owners := map[uint16]int{}
		for _, srv := range ts.Servers {
			for _, r := range srv.OwnedPorts {
				for p := int(r.First); p <= int(r.Last); p++ {
					owners[uint16(p)]++
				}
			}
		}
		for _, r := range ts.Ports {
			for p := int(r.First); p <= int(r.Last); p++ {
				if owners[uint16(p)] != 1 {
					t.Errorf("%s: %s port %d has %d owners, want 1", tc.file, tc.set, p, owners[uint16(p)])
				}
			}
		}
	}
	if ts := set(load("aspera.toml"), "aspera"); ts.Persistence == nil || ts.Persistence.Group != "" {
		t.Errorf("aspera.toml: set aspera persistence %+v, want its own", ts.Persistence)
	}
}
