package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const script = "../kernel-pktgen.sh"

// runScript runs bench/kernel-pktgen.sh and returns its exit code and
// standard error.
func runScript(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{script}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stderr.String()
	}
	t.Fatalf("run %s: %v", script, err)
	return 0, ""
}

// TestKernelPktgenScript: the script's usage errors, its help, and, on a
// kernel without pktgen (the lab's), exit status 2 with the message that
// points to bin/pktgen.
func TestKernelPktgenScript(t *testing.T) {
	if code, _ := runScript(t, "--help"); code != 0 {
		t.Errorf("--help exited %d, want 0", code)
	}
	if code, msg := runScript(t, "--dev", "x", "--bogus"); code != 64 || !strings.Contains(msg, "unknown argument") {
		t.Errorf("--bogus exited %d (%q), want 64", code, msg)
	}
	if _, err := os.Stat("/proc/net/pktgen"); err == nil {
		if code, msg := runScript(t, "--dev", "x", "--dst-mac", "02:00:00:00:00:01", "--size", "10"); code != 64 {
			t.Errorf("--size 10 exited %d (%q), want 64", code, msg)
		}
	} else {
		const want = "kernel pktgen not available: this kernel has no pktgen module (CONFIG_NET_PKTGEN); use bin/pktgen (AF_XDP) instead"
		for _, args := range [][]string{{"--check"}, {"--dev", "eth9", "--dst-mac", "02:00:00:00:00:01"}} {
			code, msg := runScript(t, args...)
			if code != 2 || !strings.Contains(msg, want) {
				t.Errorf("%q on a kernel without pktgen exited %d with %q; want 2 and %q", args, code, msg, want)
			}
		}
	}
}

// TestKernelPktgenScriptLint: the script passes shellcheck. CI installs
// shellcheck (.ci/run); elsewhere the test is skipped, visibly, rather than
// passing without having linted anything.
func TestKernelPktgenScriptLint(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Skip("shellcheck not installed (Debian package shellcheck; .ci/run installs it): script not linted")
	}
	if out, err := exec.Command("shellcheck", script).CombinedOutput(); err != nil {
		t.Errorf("shellcheck %s: %v\n%s", script, err, out)
	}
}
