package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/slowpath/config"
)

// TestCheckPrintsWarnings: a valid file whose persistence group lacks a
// server in one member passes "ipfront check" and prints the warning with
// its position.
func TestCheckPrintsWarnings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.toml")
	src := `[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "a"
address = "192.0.2.10"
ports = ["22"]
server = [{ address = "198.51.100.11" }, { address = "198.51.100.12" }]
[[target_set]]
name = "b"
address = "192.0.2.11"
ports = ["22"]
server = [{ address = "198.51.100.11" }]
[[persistence_group]]
name = "g"
target_sets = ["a", "b"]
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := check([]string{"--config", path}, &out); err != nil {
		t.Fatalf("ipfront check: %v", err)
	}
	want := path + `:15:21: warning: persistence_group[0].target_sets[1]: target set "b" has no server 198.51.100.12`
	if !strings.Contains(out.String(), "ok (2 target sets)") || !strings.Contains(out.String(), want) {
		t.Errorf("ipfront check printed\n%s\nwant ok and %s...", out.String(), want)
	}
}

// TestDataplaneConfigPersistence: max_persistence_records reaches the data
// plane, which sizes the shards for it.
func TestDataplaneConfigPersistence(t *testing.T) {
	s, err := config.Parse("t.toml", []byte("[dataplane]\ninterfaces = [\"eth1\"]\nmax_associations = 4096\nmax_persistence_records = 3000\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := dataplaneConfig(&s.Dataplane); got.MaxPersistenceRecords != 3000 || got.MaxAssociations != 4096 {
		t.Errorf("dataplaneConfig() = MaxPersistenceRecords %d, MaxAssociations %d; want 3000, 4096",
			got.MaxPersistenceRecords, got.MaxAssociations)
	}
}
