package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRunRefusesALiveAPISocket starts "ipfront run" on a unix socket that
// a live process serves: it must fail, naming the socket as in use, before
// it touches the data plane, and leave the live socket in place.
func TestRunRefusesALiveAPISocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	live, err := net.Listen("unix", sock)
	if err != nil {
		t.Skipf("unix sockets unavailable: %v", err)
	}
	defer live.Close()
	go func() {
		for {
			c, err := live.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	cfg := filepath.Join(dir, "ipfront.toml")
	// The interface does not exist: a daemon that got past the API
	// listener would fail on it instead, with another message.
	text := "[dataplane]\ninterfaces = [\"ipf-nonexist0\"]\n[api]\nlisten = \"unix:" + sock + "\"\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	err = run([]string{"--config", cfg})
	if err == nil || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), sock) {
		t.Errorf("run with a live API socket = %v, want an error naming %s as in use", err, sock)
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatalf("the live socket after the refused start: %v", err)
	}
	c.Close()
}
