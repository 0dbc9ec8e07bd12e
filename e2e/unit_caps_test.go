//go:build linux

package e2e

// The service unit's capability set, tried on the real data plane: ipfront
// started with exactly the capabilities packaging/ipfront.service grants
// (as systemd would bound them) must come up and forward, and without one
// of them it must refuse to start rather than run half working.

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unitCapabilities returns the capabilities of packaging/ipfront.service's
// CapabilityBoundingSet, as setpriv names them (net_admin, ...).
func unitCapabilities(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "packaging", "ipfront.service"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "CapabilityBoundingSet="); ok {
			var caps []string
			for _, c := range strings.Fields(v) {
				caps = append(caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
			}
			return caps
		}
	}
	t.Fatal("packaging/ipfront.service has no CapabilityBoundingSet line")
	return nil
}

// boundedTo is the setpriv command line that runs a program with caps as
// its bounding set (root keeps no other capability).
func boundedTo(caps []string) []string {
	set := "-all"
	for _, c := range caps {
		set += ",+" + c
	}
	return []string{"setpriv", "--bounding-set", set, "--"}
}

// capMask is the capability bit mask of setpriv names (capabilities(7)).
func capMask(t *testing.T, caps []string) uint64 {
	t.Helper()
	bits := map[string]uint{"net_bind_service": 10, "net_admin": 12, "net_raw": 13, "ipc_lock": 14,
		"sys_admin": 21, "sys_resource": 24, "perfmon": 38, "bpf": 39}
	var m uint64
	for _, c := range caps {
		bit, ok := bits[c]
		if !ok {
			t.Fatalf("capability %q: not in the test's table", c)
		}
		m |= 1 << bit
	}
	return m
}

// TestUnitCapabilities: with the unit's capabilities and no others,
// ipfront attaches, becomes ready and forwards real connections, and its
// effective set is within them; without CAP_BPF it exits with an error
// that names it.
func TestUnitCapabilities(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	caps := unitCapabilities(t)
	if !slices.Contains(caps, "bpf") {
		t.Fatalf("the unit grants %v: no CAP_BPF, the negative case below means nothing", caps)
	}
	e := startSP(t, 2, spConfig{Servers: []spServer{{"s1", 1}, {"s2", 1}}, Wrap: boundedTo(caps)})
	requireAllOK(t, "connections through ipfront bounded to the unit's capabilities", e.tcpBatch(20))

	// The wrapper took: the process (ip netns exec and setpriv exec it in
	// place) holds nothing beyond the unit's set.
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(e.ipf.Cmd.Process.Pid), "status"))
	if err != nil {
		t.Fatal(err)
	}
	allowed := capMask(t, caps)
	for line := range strings.SplitSeq(string(status), "\n") {
		for _, field := range []string{"CapEff:", "CapBnd:"} {
			if v, ok := strings.CutPrefix(line, field); ok {
				m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
				if err != nil {
					t.Fatalf("%s %q: %v", field, v, err)
				}
				if m&^allowed != 0 {
					t.Errorf("%s %#x holds capabilities outside the unit's %#x", field, m, allowed)
				}
			}
		}
	}
	if err := e.ipf.Stop(10 * time.Second); err != nil {
		t.Fatalf("ipfront under the unit's capabilities did not stop cleanly: %v", err)
	}

	without := slices.DeleteFunc(slices.Clone(caps), func(c string) bool { return c == "bpf" })
	var out strings.Builder
	p, err := e.lab.StartProc(e.lab.LB().NS, "ipfront without CAP_BPF", &out,
		append(boundedTo(without), ipfrontBin, "run", "--config", e.cfgPath)...)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		_ = p.Stop(time.Second)
		t.Fatalf("ipfront without CAP_BPF still runs after 20 s:\n%s", out.String())
	}
	if p.Err() == nil {
		t.Errorf("ipfront without CAP_BPF exited 0:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "lacks CAP_BPF") {
		t.Errorf("ipfront without CAP_BPF does not say so:\n%s", out.String())
	}
	t.Logf("without CAP_BPF: %v; last output: %s", p.Err(), lastLine(out.String()))
}

// lastLine is the last non-empty line of s.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
