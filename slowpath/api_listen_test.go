package slowpath_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfront/ipfront/slowpath"
	"github.com/ipfront/ipfront/slowpath/apitest"
	"github.com/ipfront/ipfront/slowpath/config"
)

func TestListenUnixSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	// A stale socket from a previous run is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Skipf("unix sockets unavailable: %v", err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	b := apitest.NewBackend(apitest.Spec(t, apitest.ScenarioTOML))
	api, err := slowpath.Listen(b, config.API{Listen: "unix:" + path})
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- api.Serve() }()
	defer func() {
		api.Shutdown()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("socket mode = %o, want 600", mode)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return new(net.Dialer).DialContext(ctx, "unix", path)
	}}}
	resp, err := hc.Get("http://ipfront/v1/sets")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/sets over the socket = %d", resp.StatusCode)
	}
}

func TestListenRefusesToReplaceAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "precious")
	if err := os.WriteFile(path, []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := apitest.NewBackend(apitest.Spec(t, apitest.ScenarioTOML))
	if _, err := slowpath.Listen(b, config.API{Listen: "unix:" + path}); err == nil {
		t.Fatal("Listen replaced a regular file")
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "data" {
		t.Errorf("file after Listen: %q, %v", data, err)
	}
}

func TestListenTCPServes(t *testing.T) {
	b := apitest.NewBackend(apitest.Spec(t, apitest.ScenarioTOML))
	api, err := slowpath.Listen(b, config.API{Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	go api.Serve()
	defer api.Shutdown()
	resp, err := http.Get("http://" + api.Addr().String() + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /v1/status = %d", resp.StatusCode)
	}
}
