//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

const (
	// apiListen is ipfront's API address, inside the load balancer's
	// namespace (so every test's ipfront may use the same one).
	apiListen = "127.0.0.1:9180"
	apiURL    = "http://" + apiListen
	ports     = "7000-7010"
	port      = "7000"
	// tcpSourcePort is the first of the TCP clients' source ports. Fixed
	// ports (outside the kernel's ephemeral range, so no clash in a fresh
	// lab) make the spread reproducible: ipfront's flow hash has fixed
	// keys, so the same connections land on the same servers on every run,
	// where kernel-chosen ports would miss the 8-point bound by chance about
	// once in a hundred runs.
	tcpSourcePort = "20000"
)

// quickHealthTOML is a set's [target_set.health] table for tests that watch
// a server fail: TCP checks of port every 500 ms, down after two failures,
// up after one success.
const quickHealthTOML = `  [target_set.health]
  type = "tcp"
  port = ` + port + `
  interval = "500ms"
  timeout = "300ms"
  fall = 2
  rise = 1
`

// setupTimeout bounds lab, server and ipfront start-up in one test.
const setupTimeout = 30 * time.Second

// env is one test's lab with its servers and ipfront running.
type env struct {
	lab *lab.Lab
	vip netip.Addr
}

// setup builds a lab with one server per weight, starts "iplab serve" on
// each, writes a configuration balancing TCP and UDP on ports 7000-7010 of
// the lab's VIP of the chosen family over the servers' addresses of that
// family, starts ipfront with it and waits until ipfront reports ready.
// Cleanups stop ipfront (it must exit 0 on SIGTERM), the servers and the lab.
func setup(t *testing.T, v6 bool, weights []int) *env {
	t.Helper()
	requireEnv(t)
	l, err := lab.New(lab.UniquePrefix("e2e"), len(weights))
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, l)
	e := &env{lab: l, vip: l.VIP(v6)}
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	logTo := testLogTo(t)
	startLabServers(t, ctx, l, logTo)

	cfg := writeConfig(t, e.vip, l.Servers(), weights)
	startIpfront(t, ctx, l, cfg, logTo("ipfront"))
	return e
}

// startLabServers runs "iplab serve" on ports on every server of l, returns
// once each greets, and stops them when the test ends.
func startLabServers(t *testing.T, ctx context.Context, l *lab.Lab, logTo func(string) io.Writer) {
	t.Helper()
	servers, err := l.StartServers(ctx, iplabBin, ports, ports, logTo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range servers {
			if err := s.Stop(2 * time.Second); err != nil {
				t.Errorf("server: %v", err)
			}
		}
	})
}

// closeAtEnd closes lab l when the test ends, failing it if that fails
// (a namespace left behind).
func closeAtEnd(t *testing.T, l interface{ Close() error }) {
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
}

// testLogTo returns writers that put each program's output into the test
// log, line by line, prefixed with the name given.
func testLogTo(t *testing.T) func(name string) io.Writer {
	var mu sync.Mutex
	return func(name string) io.Writer { return &lab.PrefixWriter{W: testLog{t}, Prefix: name + " | ", Mu: &mu} }
}

// startIpfront runs ipfront with cfg in the lab's load-balancer namespace,
// its output to log, waits until its API says ready, and stops it (SIGTERM,
// a clean exit required) and logs its counters when the test ends.
func startIpfront(t *testing.T, ctx context.Context, l *lab.Lab, cfg string, log io.Writer) {
	t.Helper()
	ipf, err := l.StartProc(l.LB().NS, "ipfront", log, ipfrontBin, "run", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ipf.Stop(10 * time.Second); err != nil {
			t.Errorf("ipfront did not exit cleanly on SIGTERM: %v", err)
		}
	})
	if err := lab.WaitReady(ctx, l.LB().NS, apiURL+"/v1/status", ipf.Done()); err != nil {
		t.Fatalf("ipfront not ready: %v", err)
	}
	logCountersAtCleanup(t, l.LB().NS, apiURL, true)
}

// logCountersAtCleanup logs ipfront's counters when the test ends. Register
// it last, so that it runs first, while ipfront still runs. With mustReach,
// an API that does not answer then fails the test.
func logCountersAtCleanup(t *testing.T, ns, apiURL string, mustReach bool) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		body, err := lab.GetJSON(ctx, ns, apiURL+"/v1/counters")
		if err != nil && mustReach {
			t.Errorf("GET /v1/counters: %v", err)
			return
		}
		if err != nil {
			t.Logf("GET /v1/counters: %v", err)
			return
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, body)
		t.Logf("ipfront counters: %s", compact.Bytes())
	})
}

// writeConfig writes ipfront's configuration for the test into its
// temporary directory and returns the path.
func writeConfig(t *testing.T, vip netip.Addr, servers []lab.Host, weights []int) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(dataplaneTOML([]string{lab.LBIfname}, 65536))
	fmt.Fprintf(&b, `
[[target_set]]
name = "e2e"
address = %q
protocols = ["tcp", "udp"]
ports = [%q]
delete_age = "30s"
`, vip, ports)
	for i, s := range servers {
		fmt.Fprintf(&b, `
  [[target_set.server]]
  name = %q
  address = %q
  weight = %d
`, s.Role, s.Addr(vip.Is6()), weights[i])
	}
	return writeTempConfig(t, "ipfront.toml", b.String())
}

// dataplaneTOML is how every lab test's configuration starts: the
// [dataplane] table on ifaces (all their queues, no busy polling, since the
// lab's two cores are shared; room for maxAssoc associations) with the
// extra lines given, and the [api] table on apiListen. Sets follow.
func dataplaneTOML(ifaces []string, maxAssoc int, extra ...string) string {
	quoted := make([]string, len(ifaces))
	for i, name := range ifaces {
		quoted[i] = strconv.Quote(name)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[dataplane]\ninterfaces = [%s]\nqueues = \"all\"\nbusy_poll = false\nmax_associations = %d\n",
		strings.Join(quoted, ", "), maxAssoc)
	for _, line := range extra {
		b.WriteString(line + "\n")
	}
	fmt.Fprintf(&b, "\n[api]\nlisten = %q\n", apiListen)
	return b.String()
}

// writeTempConfig writes text as name in t's temporary directory and
// returns its path.
func writeTempConfig(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// client runs "iplab <args> -o json" in the client's namespace and decodes
// its report into r. The exit status is not checked: the report says what
// failed, and the tests check it.
func (e *env) client(t *testing.T, r any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := e.lab.CommandContext(ctx, e.lab.Client().NS, append(append([]string{iplabBin}, args...), "-o", "json")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if err := json.Unmarshal(stdout.Bytes(), r); err != nil {
		t.Fatalf("iplab %s: %v, report unreadable: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), runErr, err, stdout.Bytes(), stderr.Bytes())
	}
	t.Logf("iplab %s: exit %v\n%s", strings.Join(args, " "), runErr, stdout.Bytes())
}

// testLog is an io.Writer for lab.PrefixWriter that logs each line to t.
type testLog struct{ t *testing.T }

func (w testLog) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func TestTCPWeightedIPv4(t *testing.T) { testTCPWeighted(t, false) }

func TestTCPWeightedIPv6(t *testing.T) { testTCPWeighted(t, true) }

// testTCPWeighted sends 300 TCP connections through the VIP to servers
// weighted 1:2:3 and checks every echoed byte and each server's share.
func testTCPWeighted(t *testing.T, v6 bool) {
	weights := []int{1, 2, 3}
	e := setup(t, v6, weights)
	const conns = 300
	var r lab.TCPReport
	e.client(t, &r, "tcp", "--vip", e.vip.String(), "--port", port, "--conns", strconv.Itoa(conns),
		"--parallel", "16", "--bytes", "4096", "--timeout", "5s", "--sport", tcpSourcePort)

	if r.Conns != conns || r.OK != conns || r.Failed != 0 {
		t.Errorf("connections: %d ok, %d failed of %d, want all %d ok; reasons %v, first failures %+v",
			r.OK, r.Failed, r.Conns, conns, r.Reasons, r.Failures)
	}
	if want := int64(conns * 4096); r.BytesVerified != want {
		t.Errorf("bytes verified = %d, want %d", r.BytesVerified, want)
	}
	if r.DistinctSourcePorts != conns {
		t.Errorf("distinct source ports = %d, want %d", r.DistinctSourcePorts, conns)
	}
	checkShares(t, r.Servers, e.lab.Servers(), weights, 8)
}

// checkShares checks that each server's share of the counts is within tol
// percentage points of its weight's share, and that no count names anything
// but a lab server.
func checkShares(t *testing.T, counts map[string]int, servers []lab.Host, weights []int, tol float64) {
	t.Helper()
	total, wsum := 0, 0
	for _, n := range counts {
		total += n
	}
	for _, w := range weights {
		wsum += w
	}
	if total == 0 {
		t.Fatal("no connection reached a server")
	}
	known := map[string]bool{}
	for i, s := range servers {
		known[s.Role] = true
		got := 100 * float64(counts[s.Role]) / float64(total)
		want := 100 * float64(weights[i]) / float64(wsum)
		t.Logf("%s weight %d: %d connections, %.1f%% (weight share %.1f%%)", s.Role, weights[i], counts[s.Role], got, want)
		if got < want-tol || got > want+tol {
			t.Errorf("%s share = %.1f%%, want %.1f%% ± %.0f points", s.Role, got, want, tol)
		}
	}
	for name := range counts {
		if !known[name] {
			t.Errorf("%d connections answered by unknown server %q", counts[name], name)
		}
	}
}

// TestUDPFlowsKeepServer sends 50 UDP flows of 20 datagrams, each datagram
// waiting for its reply: every flow must stay on one server, no reply may be
// lost (the lab is quiet), and the flows must spread over several servers.
func TestUDPFlowsKeepServer(t *testing.T) {
	e := setup(t, false, []int{1, 1, 1})
	const flows, packets = 50, 20
	var r lab.UDPReport
	e.client(t, &r, "udp", "--vip", e.vip.String(), "--port", port,
		"--flows", strconv.Itoa(flows), "--packets", strconv.Itoa(packets), "--timeout", "1s")

	if r.Flows != flows || r.Sent != flows*packets {
		t.Errorf("sent %d datagrams in %d flows, want %d in %d; errors %v", r.Sent, r.Flows, flows*packets, flows, r.Errors)
	}
	if r.Replies != flows*packets || r.Lost != 0 || r.Mismatched != 0 {
		t.Errorf("replies %d, lost %d, mismatched %d; want %d, 0, 0", r.Replies, r.Lost, r.Mismatched, flows*packets)
	}
	if r.MultiServerFlows != 0 || r.SilentFlows != 0 {
		t.Errorf("%d flows answered by more than one server, %d by none; want 0 and 0: %v", r.MultiServerFlows, r.SilentFlows, r.Errors)
	}
	if r.DistinctSourcePorts != flows {
		t.Errorf("distinct source ports = %d, want %d", r.DistinctSourcePorts, flows)
	}
	if len(r.Servers) < 2 {
		t.Errorf("flows per server = %v, want flows on more than one server", r.Servers)
	}
	t.Logf("flows per server: %v", r.Servers)
}
