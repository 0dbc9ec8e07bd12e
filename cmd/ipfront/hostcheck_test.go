package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/internal/netnstest"
	"github.com/ipfront/ipfront/slowpath/hostcheck"
)

// TestCheckHostOnVeth runs `ipfront check --host --json` on a veth pair in
// a namespace (through ip netns exec, which gives the binary the namespace's
// sysfs), then runs the fix commands the report gives, verbatim, and checks
// again: the problems and warnings they address are gone and the exit status
// follows. veth has no RSS and no interrupts (those checks say skip); what
// it can show is the queue count, GRO and the NAPI defer settings.
func TestCheckHostOnVeth(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and creates namespaces")
	}
	ns := netnstest.New(t, "hostchk")
	peer := netnstest.New(t, "hostchk-p")
	// Four queues at most, two in use: queues = [0, 3] asks for one that
	// is not there until ethtool -L adds it.
	netnstest.VethQueues(t, ns, "h0", peer, "h1", 4)
	ns.Run(t, "ethtool", "-L", "h0", "rx", "2", "tx", "2")
	ns.Run(t, "ethtool", "-K", "h0", "gro", "on")

	bin := filepath.Join(t.TempDir(), "ipfront")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	conf := filepath.Join(t.TempDir(), "host.toml")
	if err := os.WriteFile(conf, []byte(`[dataplane]
interfaces = ["h0"]
queues = [0, 3]
cpus = [0, 1]
xdp_mode = "generic"
busy_poll = false

[[target_set]]
name = "web"
address = "192.0.2.10"
ports = ["80"]
server = [{ address = "198.51.100.11" }]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func() (*hostcheck.Report, int) {
		t.Helper()
		cmd := exec.Command("ip", "netns", "exec", ns.Name, bin, "check", "--host", "--json", "--config", conf)
		out, err := cmd.Output()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("ipfront check --host: %v", err)
		}
		var r hostcheck.Report
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("ipfront check --host --json printed %q: %v", out, err)
		}
		return &r, code
	}
	get := func(r *hostcheck.Report, check string) hostcheck.Finding {
		t.Helper()
		for _, f := range append(append([]hostcheck.Finding(nil), r.Interfaces[0].Findings...), r.Host...) {
			if f.Check == check {
				return f
			}
		}
		t.Fatalf("report has no %q finding: %+v", check, r)
		return hostcheck.Finding{}
	}

	r, code := run()
	if code != 1 || r.Problems != 2 {
		t.Fatalf("first check: exit %d, %d problems, want exit 1 and 2 problems (queue 3 missing, GRO in generic mode): %+v", code, r.Problems, r)
	}
	ifc := r.Interfaces[0]
	if ifc.Name != "h0" || ifc.Driver != "veth" || ifc.RXQueues != 2 || len(ifc.Workers) != 2 || ifc.Workers[1] != (hostcheck.Worker{Queue: 3, CPU: 1}) {
		t.Errorf("interface = %+v, want veth h0 with 2 RX queues and workers on queues 0 and 3 (CPUs 0, 1)", ifc)
	}
	for check, want := range map[string]hostcheck.Status{
		"queues": hostcheck.Problem, "offloads": hostcheck.Problem, "napi_defer": hostcheck.Warn,
		"rss": hostcheck.Skip, "irq_affinity": hostcheck.Skip, "driver": hostcheck.Info,
	} {
		if f := get(r, check); f.Status != want {
			t.Errorf("%s = %+v, want %s", check, f, want)
		}
	}

	// Apply every fix the report gives for h0's findings, as an operator
	// would paste them.
	var fixes []string
	for _, check := range []string{"queues", "offloads", "napi_defer"} {
		fixes = append(fixes, get(r, check).Fix...)
	}
	want := []string{"ethtool -L h0 rx 4", "ethtool -K h0 gro off",
		"echo 2 > /sys/class/net/h0/napi_defer_hard_irqs", "echo 200000 > /sys/class/net/h0/gro_flush_timeout"}
	if strings.Join(fixes, "\n") != strings.Join(want, "\n") {
		t.Fatalf("fixes = %q, want %q", fixes, want)
	}
	for _, fix := range fixes {
		ns.Run(t, "sh", "-c", fix)
	}

	r, code = run()
	if code != 0 || r.Problems != 0 {
		t.Errorf("after the fixes: exit %d, %d problems, want 0 and 0: %+v", code, r.Problems, r)
	}
	for _, check := range []string{"queues", "offloads", "napi_defer"} {
		if f := get(r, check); f.Status != hostcheck.OK && f.Status != hostcheck.Info {
			t.Errorf("after its fix, %s = %+v, want ok", check, f)
		}
	}
	if r.Interfaces[0].RXQueues != 4 {
		t.Errorf("after ethtool -L: %d RX queues, want 4", r.Interfaces[0].RXQueues)
	}
}
