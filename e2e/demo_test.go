//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

// demoNamespaces lists the namespaces of the demo run by process pid.
func demoNamespaces(t *testing.T, pid int) []string {
	t.Helper()
	entries, err := os.ReadDir("/run/netns")
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), fmt.Sprintf("demo-p%dn", pid)) {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestDemo runs "make demo"'s command with the shipped configuration.
func TestDemo(t *testing.T) {
	requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, iplabBin, "demo", "--config", "../configs/demo.toml", "--ipfront", ipfrontBin, "--conns", strconv.Itoa(demoConns))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.Bytes(), stderr.Bytes())
	if err != nil {
		t.Fatalf("iplab demo: %v", err)
	}
	for _, want := range []string{
		fmt.Sprintf("%d connections, %d ok, 0 failed", demoConns, demoConns),
		"server address          weight  connections   share  expected",
		"s3     198.51.100.13         3",
		"0 lost, 0 mismatched, 0 flows on more than one server",
		"$ ipfront ctl counters",
		"$ ipfront ctl servers",
	} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	spec, err := config.Load("../configs/demo.toml")
	if err != nil {
		t.Fatal(err)
	}
	weights := make(map[string]int)
	for _, s := range spec.TargetSets[0].Servers { // the demo drives TCP to the first set
		weights[s.Name] = s.Weight
	}
	checkDemoSpread(t, stdout.String(), weights)
	if left := demoNamespaces(t, cmd.Process.Pid); len(left) > 0 {
		t.Errorf("demo left namespaces %v", left)
	}
}

// demoConns is how many TCP connections TestDemo opens: enough for the
// spread check below to tell weights apart (at 150 the bound would be
// ±37-82% of each share), few enough to take a fraction of a second.
const demoConns = 1200

// checkDemoSpread checks the demo's table of TCP connections per server
// ("s1  198.51.100.11  1  205  17.1%  16.7%") against weights: every server
// got connections, none went elsewhere, and each count is within the
// binomial bound of its weight share.
//
// Why a binomial bound: each connection has a new source port and the
// Maglev table gives server i exactly w_i/sum(w) of the hash space (to one
// slot in 65537), so server i's count is Binomial(N, p_i), mean N*p_i,
// sigma sqrt(N*p_i*(1-p_i)). With N = 1200 and 1:2:3 that is 200 ± 12.9,
// 400 ± 16.3, 600 ± 17.3. Allowing 4.5 sigma, a correct balancer fails a
// server with probability 7e-6, a run with less than 2.1e-5; equal weights
// (400 each) would put s1 15 sigma out, and a hash on a constant (all on one
// server) fails every bound.
func checkDemoSpread(t *testing.T, out string, weights map[string]int) {
	t.Helper()
	const z = 4.5
	counts := make(map[string]int)
	total, sum := 0, 0
	for _, w := range weights {
		sum += w
	}
	inTable := false
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) > 0 && f[0] == "server" && strings.Contains(line, "connections"):
			inTable = true
		case !inTable:
		case len(f) == 0 || f[0] == "total":
			inTable = false
		case strings.Contains(line, "not in the target set"):
			t.Errorf("connections reached a server outside the target set: %q", line)
		case len(f) >= 4:
			n, err := strconv.Atoi(f[3])
			if err != nil {
				t.Fatalf("spread line %q: connections %q: %v", line, f[3], err)
			}
			counts[f[0]] = n
			total += n
		}
	}
	if total != demoConns {
		t.Fatalf("spread table counts %d connections (%v), want %d", total, counts, demoConns)
	}
	for name, w := range weights {
		n, ok := counts[name]
		if !ok || n == 0 {
			t.Errorf("server %s got no connections (spread %v)", name, counts)
			continue
		}
		p := float64(w) / float64(sum)
		mean, sigma := float64(total)*p, math.Sqrt(float64(total)*p*(1-p))
		if math.Abs(float64(n)-mean) > z*sigma {
			t.Errorf("server %s (weight %d of %d) got %d of %d connections, want %.0f ± %.0f (%.1f sigma)",
				name, w, sum, n, total, mean, z*sigma, z)
		}
	}
}

// TestDemoInterrupted interrupts the demo while its clients run: it must
// tear the lab down and exit non-zero.
func TestDemoInterrupted(t *testing.T) {
	requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Enough connections to be still running when the signal comes.
	cmd := exec.CommandContext(ctx, iplabBin, "demo", "--config", "../configs/demo.toml", "--ipfront", ipfrontBin,
		"--conns", "1000000", "--parallel", "2")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "ipfront ready") {
			break
		}
	}
	if len(demoNamespaces(t, cmd.Process.Pid)) == 0 {
		t.Error("no demo namespaces while the demo runs")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stderr)
	log.Write(rest)
	err = cmd.Wait()
	t.Logf("stderr:\n%s", log.Bytes())
	if err == nil {
		t.Error("interrupted demo exited 0")
	}
	if !strings.Contains(log.String(), "lab torn down") {
		t.Error("interrupted demo did not report tearing down")
	}
	if left := demoNamespaces(t, cmd.Process.Pid); len(left) > 0 {
		t.Errorf("interrupted demo left namespaces %v", left)
	}
}
