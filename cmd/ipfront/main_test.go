package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every shipped configuration must pass `ipfront check`.
func TestCheckShippedConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.toml")
	if len(files) == 0 {
		t.Fatal("no configs found")
	}
	for _, f := range files {
		var out bytes.Buffer
		if err := check([]string{"--config", f}, &out); err != nil {
			t.Errorf("ipfront check %s: %v", f, err)
		}
		if !strings.Contains(out.String(), "ok") {
			t.Errorf("ipfront check %s printed %q", f, out.String())
		}
	}
}

// A broken configuration is refused with every error located.
func TestCheckReportsEveryErrorWithPosition(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	bad := `[dataplane]
interfaces = ["eth1"]
batch_sise = 64

[[target_set]]
name = "web"
address = "192.0.2.300"
  [[target_set.server]]
  address = "2001:db8::1"
`
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	err := check([]string{"--config", path}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("check accepted a broken config")
	}
	msg := err.Error()
	for _, want := range []string{path + ":3:1:", "batch_size", path + ":7:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("check error lacks %q:\n%s", want, msg)
		}
	}
}
