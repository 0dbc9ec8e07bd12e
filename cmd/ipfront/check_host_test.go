package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckAgainstThisMachine checks that `ipfront check` (and so `ipfront
// run`, which loads the file the same way) compares [dataplane] with this
// machine: lo has one RX queue, so a second one is refused with its
// position, where before the file passed and the daemon failed later.
func TestCheckAgainstThisMachine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lo.toml")
	src := "[dataplane]\ninterfaces = [\"lo\"]\nqueues = [0, 1]\npartial_queues = true\n"
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	err := check([]string{"--config", path}, &bytes.Buffer{})
	want := path + ":3:10: dataplane.queues: lo has 1 RX queues: queues 1 do not exist"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("ipfront check = %v, want %s...", err, want)
	}
}
