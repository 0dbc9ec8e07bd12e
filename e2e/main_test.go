//go:build linux

// Package e2e runs ipfront end to end on the namespace lab (internal/lab):
// real binaries, real sockets, real XDP and AF_XDP on veth.
//
// TestMain builds ipfront and iplab into a temporary directory (or takes
// ipfront from $IPFRONT_E2E_BINARY); each
// test makes its own lab, writes its own configuration, starts the servers
// and ipfront, drives traffic with iplab's clients and checks their JSON
// reports. Everything a test creates is removed by its cleanups; on SIGINT
// or SIGTERM every lab of the run is removed before exiting; a run killed
// harder leaves namespaces that the next run removes.
//
// The tests need root and ip(8) and skip without them.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/ipfront/ipfront/internal/lab"
)

var (
	// skipReason is why the environment cannot run the tests, if it cannot.
	skipReason string
	// buildErr is the error building the binaries, if any.
	buildErr error
	// Paths of the binaries under test.
	ipfrontBin, iplabBin string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	switch {
	case os.Geteuid() != 0:
		skipReason = "needs root (network namespaces, XDP, AF_XDP)"
	default:
		if _, err := exec.LookPath("ip"); err != nil {
			skipReason = "needs ip(8) from iproute2"
		}
	}
	if skipReason != "" {
		return m.Run()
	}

	dir, err := os.MkdirTemp("", "ipfront-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ipfrontBin, iplabBin = filepath.Join(dir, "ipfront"), filepath.Join(dir, "iplab")
	buildErr = build(iplabBin, "github.com/ipfront/ipfront/cmd/iplab")
	if bin := os.Getenv(ipfrontEnv); bin != "" {
		ipfrontBin = bin
	} else if buildErr == nil {
		buildErr = build(ipfrontBin, "github.com/ipfront/ipfront/cmd/ipfront")
	}

	lab.RemoveStale()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		s := <-sigs
		err := lab.CloseAll()
		os.RemoveAll(dir)
		fmt.Fprintf(os.Stderr, "e2e: %v: labs removed (%v)\n", s, err)
		os.Exit(2)
	}()
	return m.Run()
}

// ipfrontEnv names an environment variable that, when set, gives an ipfront
// binary to test instead of building one (a release build, say).
const ipfrontEnv = "IPFRONT_E2E_BINARY"

// build compiles the package pkg into the file out.
func build(out, pkg string) error {
	goTool, err := exec.LookPath("go")
	if err != nil {
		return fmt.Errorf("go tool not found: %w", err)
	}
	if b, err := exec.Command(goTool, "build", "-o", out, pkg).CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// requireEnv skips t without root or ip(8) and fails it if the binaries did
// not build.
func requireEnv(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}
