//go:build linux

package e2e

// Helpers of the slow-path tests (slowpath_*_test.go): a lab whose servers
// can be stopped and restarted one by one, an ipfront whose configuration a
// test rewrites and reloads and whose JSON log it can wait on, the control
// API and "ipfront ctl" from the load balancer's namespace, /metrics parsed,
// and the long-running clients "iplab hold" and "iplab load".
//
// Tests synchronise on events: a log line, an API state, a process exit.
// Every wait is bounded by the test's deadline (spEnv.ctx).

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// spTimeout bounds one slow-path test, set-up included.
const spTimeout = 90 * time.Second

// spServer is one [[target_set.server]] of a test configuration: lab
// server Role with Weight.
type spServer struct {
	Role   string
	Weight int
}

// spConfig is what a slow-path test configures; the rest is fixed (one set
// on the IPv4 VIP, TCP and UDP on ports 7000-7010, JSON logs).
type spConfig struct {
	SetName   string // default setName
	Servers   []spServer
	DeleteAge string // default "30s"
	MaxAssoc  int    // default 65536
	// Health and Balance are the bodies of [target_set.health] and
	// [target_set.balance], one key a line; empty omits the table
	// (defaults: tcp checks every second; balance alarm enabled).
	Health  string
	Balance string
}

// balanceOff disables the balance alarm. Tests that change weights under
// long-lived traffic need it: until those connections end, the servers'
// shares of the traffic trail the new weight shares, which is exactly what
// the alarm reports, and while it is active new associations are steered
// away from the weights on purpose.
const balanceOff = "enabled = false"

// setName is the target set every test configures.
const setName = "e2e"

// weights returns the configured weights of the lab servers in hosts order,
// 0 for servers the configuration leaves out.
func (c spConfig) weights(hosts []lab.Host) []int {
	w := make([]int, len(hosts))
	for i, h := range hosts {
		for _, s := range c.Servers {
			if s.Role == h.Role {
				w[i] = s.Weight
			}
		}
	}
	return w
}

// spEnv is one slow-path test's lab: servers, ipfront, its log and config.
type spEnv struct {
	*env
	t   *testing.T
	ctx context.Context // the test's deadline

	cfgPath string
	cfg     spConfig // last written with writeConfig (valid or not)
	ipf     *lab.Proc
	log     *procLog

	outMu   sync.Mutex // serialises the programs' output lines in the test log
	srvMu   sync.Mutex
	servers map[string]*lab.Proc // running iplab serve by role

	sportMu sync.Mutex
	sport   int // next free fixed client source port
}

// startSP builds a lab with n servers (all running "iplab serve", whether
// configured or not), writes cfg, starts ipfront and waits until it is
// ready and every configured server's MAC is resolved.
func startSP(t *testing.T, n int, cfg spConfig) *spEnv {
	t.Helper()
	requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), spTimeout)
	t.Cleanup(cancel)
	l, err := lab.New(lab.UniquePrefix("e2e"), n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	e := &spEnv{env: &env{lab: l, vip: l.VIP(false)}, t: t, ctx: ctx, servers: map[string]*lab.Proc{}, sport: 20000}
	e.cfgPath = filepath.Join(t.TempDir(), "ipfront.toml")
	t.Cleanup(func() {
		e.srvMu.Lock()
		defer e.srvMu.Unlock()
		for role, p := range e.servers {
			if err := p.Stop(2 * time.Second); err != nil {
				t.Errorf("server %s: %v", role, err)
			}
		}
	})
	for _, s := range l.Servers() {
		e.startServer(s.Role)
	}

	e.writeConfig(cfg)
	e.log = &procLog{t: t, prefix: "ipfront | ", mu: &e.outMu, notify: make(chan struct{})}
	e.ipf, err = l.StartProc(l.LB().NS, "ipfront", e.log, ipfrontBin, "run", "--config", e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.ipf.Stop(10 * time.Second); err != nil {
			t.Errorf("ipfront did not exit cleanly on SIGTERM: %v", err)
		}
	})
	if err := lab.WaitReady(ctx, l.LB().NS, apiURL+"/v1/status", e.ipf.Done()); err != nil {
		t.Fatalf("ipfront not ready: %v", err)
	}
	e.waitResolved()
	// Registered last, so it runs first: the counters while ipfront runs.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		body, err := lab.GetJSON(ctx, l.LB().NS, apiURL+"/v1/counters")
		if err != nil {
			t.Logf("GET /v1/counters: %v", err)
			return
		}
		var compact bytes.Buffer
		_ = json.Compact(&compact, body)
		t.Logf("ipfront counters: %s", compact.Bytes())
	})
	return e
}

// writeConfig (re)writes the configuration file; the running ipfront reads
// it at its next reload. The file is replaced by a rename, so a reload
// never sees half of it.
func (e *spEnv) writeConfig(cfg spConfig) {
	e.t.Helper()
	e.cfg = cfg
	var b strings.Builder
	fmt.Fprintf(&b, `[dataplane]
interfaces = [%q]
queues = "all"
busy_poll = false
max_associations = %d

[log]
format = "json"

[api]
listen = %q

[[target_set]]
name = %q
address = %q
protocols = ["tcp", "udp"]
ports = [%q]
delete_age = %q
`, lab.LBIfname, orDefault(cfg.MaxAssoc, 65536), apiListen, orDefault(cfg.SetName, setName), e.vip, ports, orDefault(cfg.DeleteAge, "30s"))
	for _, s := range cfg.Servers {
		fmt.Fprintf(&b, `
  [[target_set.server]]
  name = %q
  address = %q
  weight = %d
`, s.Role, e.host(s.Role).IPv4, s.Weight)
	}
	for _, tbl := range []struct{ name, body string }{{"health", cfg.Health}, {"balance", cfg.Balance}} {
		if tbl.body != "" {
			fmt.Fprintf(&b, "\n  [target_set.%s]\n", tbl.name)
			for line := range strings.SplitSeq(strings.TrimSpace(tbl.body), "\n") {
				fmt.Fprintf(&b, "  %s\n", strings.TrimSpace(line))
			}
		}
	}
	e.writeFile(b.String())
}

// writeFile replaces the configuration file with text.
func (e *spEnv) writeFile(text string) {
	e.t.Helper()
	tmp := e.cfgPath + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.cfgPath); err != nil {
		e.t.Fatal(err)
	}
}

// orDefault returns v, or def if v is the zero value.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// host returns the lab server called role.
func (e *spEnv) host(role string) lab.Host {
	e.t.Helper()
	for _, s := range e.lab.Servers() {
		if s.Role == role {
			return s
		}
	}
	e.t.Fatalf("no lab server %q", role)
	return lab.Host{}
}

// startServer starts "iplab serve" on server role and waits until it greets.
func (e *spEnv) startServer(role string) {
	e.t.Helper()
	h := e.host(role)
	w := &lab.PrefixWriter{W: testLog{e.t}, Prefix: role + " | ", Mu: &e.outMu}
	p, err := e.lab.StartProc(h.NS, role, w, iplabBin, "serve", "--name", role, "--tcp", ports, "--udp", ports)
	if err != nil {
		e.t.Fatal(err)
	}
	e.srvMu.Lock()
	e.servers[role] = p
	e.srvMu.Unlock()
	if err := lab.WaitGreeting(e.ctx, e.lab.Client().NS, netip.AddrPortFrom(h.IPv4, 7000), role, p.Done()); err != nil {
		e.t.Fatalf("server %s: %v", role, err)
	}
}

// stopServer stops server role's "iplab serve" and returns once it exited.
func (e *spEnv) stopServer(role string) {
	e.t.Helper()
	e.srvMu.Lock()
	p := e.servers[role]
	delete(e.servers, role)
	e.srvMu.Unlock()
	if p == nil {
		e.t.Fatalf("server %s is not running", role)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		e.t.Fatalf("stop server %s: %v", role, err)
	}
}

// sports reserves n consecutive fixed client source ports and returns the
// first. Fixed ports, never reused within a lab, make every run hash the
// same flows (ipfront's flow hash has fixed keys) and keep clear of the
// client's TIME_WAIT sockets.
func (e *spEnv) sports(n int) int {
	e.sportMu.Lock()
	defer e.sportMu.Unlock()
	p := e.sport
	e.sport += n
	if e.sport > 32768 { // the kernel's ephemeral range starts here
		e.t.Fatalf("out of fixed source ports")
	}
	return p
}

// tcpBatch opens n short TCP connections through the VIP from fixed source
// ports, each verifying 1 KiB of echo, and returns the report.
func (e *spEnv) tcpBatch(n int) lab.TCPReport {
	e.t.Helper()
	var r lab.TCPReport
	e.client(e.t, &r, "tcp", "--vip", e.vip.String(), "--port", port, "--conns", strconv.Itoa(n),
		"--parallel", "16", "--bytes", "1024", "--timeout", "5s", "--sport", strconv.Itoa(e.sports(n)))
	return r
}

// requireAllOK fails the test unless every connection of r was verified.
func requireAllOK(t *testing.T, what string, r lab.TCPReport) {
	t.Helper()
	if r.OK != r.Conns || r.Failed != 0 {
		t.Errorf("%s: %d of %d connections ok, %d failed: %v %+v", what, r.OK, r.Conns, r.Failed, r.Reasons, r.Failures)
	}
}

// ---------------------------------------------------------------------------
// ipfront's log

// procLog collects a program's output lines (ipfront's JSON log), copies
// them to the test log and lets a test wait for a line.
type procLog struct {
	t      *testing.T
	prefix string
	mu     *sync.Mutex // shared with the other programs' writers

	lmu    sync.Mutex
	buf    []byte
	lines  []logLine
	notify chan struct{} // closed and replaced at every new line
}

// logLine is one line of ipfront's JSON log, decoded; Fields is nil for a
// line that is not a JSON object.
type logLine struct {
	Text   string
	Fields map[string]any
}

// Str returns a field's value as text ("" if absent).
func (l logLine) Str(key string) string {
	switch v := l.Fields[key].(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// Msg and Level are the message and level fields.
func (l logLine) Msg() string   { return l.Str("message") }
func (l logLine) Level() string { return l.Str("level") }

func (p *procLog) Write(b []byte) (int, error) {
	p.lmu.Lock()
	p.buf = append(p.buf, b...)
	var added []string
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		text := string(p.buf[:i])
		p.buf = p.buf[i+1:]
		ll := logLine{Text: text}
		_ = json.Unmarshal([]byte(text), &ll.Fields)
		p.lines = append(p.lines, ll)
		added = append(added, text)
	}
	if len(added) > 0 {
		close(p.notify)
		p.notify = make(chan struct{})
	}
	p.lmu.Unlock()
	p.mu.Lock()
	for _, text := range added {
		p.t.Log(p.prefix + text)
	}
	p.mu.Unlock()
	return len(b), nil
}

// mark returns the number of lines so far: waits from a mark see only the
// lines logged after it.
func (p *procLog) mark() int {
	p.lmu.Lock()
	defer p.lmu.Unlock()
	return len(p.lines)
}

// since returns the lines logged after mark that satisfy match.
func (p *procLog) since(mark int, match func(logLine) bool) []logLine {
	p.lmu.Lock()
	defer p.lmu.Unlock()
	var out []logLine
	for _, l := range p.lines[mark:] {
		if match(l) {
			out = append(out, l)
		}
	}
	return out
}

// waitLine waits for a line after mark that satisfies match and returns it
// with the mark after it. It fails the test when ctx ends or ipfront exits
// first.
func (e *spEnv) waitLine(ctx context.Context, mark int, what string, match func(logLine) bool) (logLine, int) {
	e.t.Helper()
	p := e.log
	for {
		p.lmu.Lock()
		for i := mark; i < len(p.lines); i++ {
			if match(p.lines[i]) {
				l := p.lines[i]
				p.lmu.Unlock()
				return l, i + 1
			}
		}
		mark = len(p.lines)
		notify := p.notify
		p.lmu.Unlock()
		select {
		case <-notify:
		case <-ctx.Done():
			e.t.Fatalf("no ipfront log line %s: %v", what, ctx.Err())
		case <-e.ipf.Done():
			e.t.Fatalf("ipfront exited (%v) while waiting for log line %s", e.ipf.Err(), what)
		}
	}
}

// msgIs matches log lines with this message.
func msgIs(msg string) func(logLine) bool {
	return func(l logLine) bool { return l.Msg() == msg }
}

// ---------------------------------------------------------------------------
// The control API, ctl and /metrics

// The API's replies, declared here rather than taken from slowpath so that
// a change of the wire format breaks these tests.
type (
	apiStatus struct {
		Ready      bool   `json:"ready"`
		Generation uint64 `json:"generation"`
		Interfaces []struct {
			Name    string `json:"name"`
			Index   int    `json:"ifindex"`
			XDPMode string `json:"xdp_mode"`
			Queues  []int  `json:"queues"`
		} `json:"interfaces"`
		Workers []struct {
			Name         string `json:"name"`
			Associations int    `json:"associations"`
			Capacity     int    `json:"capacity"`
			RxPackets    uint64 `json:"rx_packets"`
			TxPackets    uint64 `json:"tx_packets"`
		} `json:"workers"`
	}
	apiServer struct {
		Set             string  `json:"set"`
		Name            string  `json:"name"`
		Address         string  `json:"address"`
		Weight          int     `json:"weight"`
		EffectiveWeight uint32  `json:"effective_weight"`
		Drained         bool    `json:"drained"`
		Healthy         bool    `json:"healthy"`
		Resolved        bool    `json:"resolved"`
		Associations    int     `json:"associations"`
		Packets         uint64  `json:"packets"`
		Bytes           uint64  `json:"bytes"`
		PPS             float64 `json:"pps"`
		BPS             float64 `json:"bps"`
		Share           float64 `json:"share"`
	}
	apiServers struct {
		Interval float64     `json:"interval_seconds"`
		Servers  []apiServer `json:"servers"`
	}
	apiSets struct {
		Sets []struct {
			Name         string   `json:"name"`
			VIP          string   `json:"vip"`
			Protocols    []string `json:"protocols"`
			Ports        []string `json:"ports"`
			Method       string   `json:"method"`
			Forwarding   string   `json:"forwarding"`
			DeleteAge    string   `json:"delete_age"`
			Servers      int      `json:"servers"`
			Associations int      `json:"associations"`
		} `json:"sets"`
	}
	apiCounters struct {
		RxPackets    uint64            `json:"rx_packets"`
		TxPackets    uint64            `json:"tx_packets"`
		Dropped      uint64            `json:"dropped"`
		Drops        map[string]uint64 `json:"drops"`
		Associations int               `json:"associations"`
		Servers      []struct {
			Set     string `json:"set"`
			Name    string `json:"name"`
			Address string `json:"address"`
			Packets uint64 `json:"packets"`
			Bytes   uint64 `json:"bytes"`
		} `json:"servers"`
		Workers []struct {
			Name      string `json:"name"`
			RxPackets uint64 `json:"rx_packets"`
		} `json:"workers"`
	}
	apiAlarm struct {
		ID        string    `json:"id"`
		Set       string    `json:"set"`
		Active    bool      `json:"active"`
		Raised    time.Time `json:"raised"`
		Cleared   time.Time `json:"cleared"`
		Deviation float64   `json:"deviation"`
		Servers   []struct {
			Name        string  `json:"name"`
			Address     string  `json:"address"`
			WeightShare float64 `json:"weight_share"`
			PacketShare float64 `json:"packet_share"`
			AssocShare  float64 `json:"association_share"`
		} `json:"servers"`
	}
	apiAlarms struct {
		Alarms []apiAlarm `json:"alarms"`
	}
	apiAssoc struct {
		Worker   string   `json:"worker"`
		Client   string   `json:"client"`
		Port     int      `json:"port"`
		Protocol string   `json:"protocol"`
		Set      string   `json:"set"`
		Server   string   `json:"server"`
		Address  string   `json:"address"`
		Idle     int      `json:"idle_seconds"`
		Flags    []string `json:"flags"`
	}
	apiAssocs struct {
		Associations []apiAssoc `json:"associations"`
		NextCursor   string     `json:"next_cursor"`
	}
)

// get fetches an API path from the load balancer's namespace; any status
// is returned.
func (e *spEnv) get(path string) ([]byte, int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := lab.HTTPClient(e.lab.LB().NS, 5*time.Second).Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	return body, resp.StatusCode
}

// api decodes the JSON reply to GET path into v; it must come with 200.
func (e *spEnv) api(path string, v any) {
	e.t.Helper()
	body, code := e.get(path)
	if code != http.StatusOK {
		e.t.Fatalf("GET %s: status %d: %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		e.t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
}

func (e *spEnv) status() apiStatus {
	e.t.Helper()
	var s apiStatus
	e.api("/v1/status", &s)
	return s
}

// serverStates returns /v1/servers by server name.
func (e *spEnv) serverStates() map[string]apiServer {
	e.t.Helper()
	var r apiServers
	e.api("/v1/servers", &r)
	m := map[string]apiServer{}
	for _, s := range r.Servers {
		m[s.Name] = s
	}
	return m
}

// waitFor polls cond every 20 ms until it holds, failing the test with
// cond's last explanation when timeout passes or ipfront exits.
func (e *spEnv) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	for {
		ok, why := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("%s: not within %v: %s", what, timeout, why)
		case <-e.ipf.Done():
			e.t.Fatalf("%s: ipfront exited: %v", what, e.ipf.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitResolved waits until /v1/servers lists exactly the configured servers
// with their configured weights and every MAC resolved: a configuration is
// in force, and new associations can go to any server in it.
func (e *spEnv) waitResolved() {
	e.t.Helper()
	e.waitFor(10*time.Second, "configured servers resolved", func() (bool, string) {
		st := e.serverStates()
		if len(st) != len(e.cfg.Servers) {
			return false, fmt.Sprintf("/v1/servers has %d servers, want %d: %+v", len(st), len(e.cfg.Servers), st)
		}
		for _, s := range e.cfg.Servers {
			got, ok := st[s.Role]
			if !ok || got.Weight != s.Weight || !got.Resolved || got.Address != e.host(s.Role).IPv4.String() {
				return false, fmt.Sprintf("server %s: %+v, want weight %d, resolved", s.Role, got, s.Weight)
			}
		}
		return true, ""
	})
}

// ctlResult is the outcome of one "ipfront ctl".
type ctlResult struct {
	args           []string
	stdout, stderr string
	err            error // the exit status
}

// ctl runs "ipfront ctl --api ADDR args..." in the load balancer's
// namespace.
func (e *spEnv) ctl(args ...string) ctlResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 40*time.Second)
	defer cancel()
	full := append([]string{ipfrontBin, "ctl", "--api", apiListen}, args...)
	cmd := e.lab.CommandContext(ctx, e.lab.LB().NS, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := ctlResult{args: args, stdout: stdout.String(), stderr: stderr.String(), err: err}
	e.t.Logf("ipfront ctl %s: exit %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, r.stdout, r.stderr)
	return r
}

// ctlOK runs ctl and fails the test unless it exits 0.
func (e *spEnv) ctlOK(args ...string) ctlResult {
	e.t.Helper()
	r := e.ctl(args...)
	if r.err != nil {
		e.t.Fatalf("ipfront ctl %s: %v\n%s", strings.Join(args, " "), r.err, r.stderr)
	}
	return r
}

// ctlJSON runs "ctl -o json args..." and decodes its output into v.
func (e *spEnv) ctlJSON(v any, args ...string) {
	e.t.Helper()
	r := e.ctlOK(append([]string{"-o", "json"}, args...)...)
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		e.t.Fatalf("ipfront ctl -o json %s: output is not the JSON wanted: %v", strings.Join(args, " "), err)
	}
}

// table is an aligned table from ctl's human output.
type table struct {
	header []string
	rows   []map[string]string
}

// findTable finds, in ctl's output, the table whose header line is exactly
// the given columns and returns its rows up to the next blank line. Cells
// must not contain blanks (ctl's never do).
func findTable(t *testing.T, out string, columns ...string) table {
	t.Helper()
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		if !slices.Equal(strings.Fields(l), columns) {
			continue
		}
		tb := table{header: columns}
		for _, r := range lines[i+1:] {
			f := strings.Fields(r)
			if len(f) == 0 {
				break
			}
			if len(f) != len(columns) {
				t.Fatalf("table %v: row %q has %d cells, want %d", columns, r, len(f), len(columns))
			}
			row := map[string]string{}
			for j, c := range columns {
				row[c] = f[j]
			}
			tb.rows = append(tb.rows, row)
		}
		return tb
	}
	t.Fatalf("no table with header %v in:\n%s", columns, out)
	return table{}
}

// row returns the table's row whose column col is val.
func (tb table) row(t *testing.T, col, val string) map[string]string {
	t.Helper()
	for _, r := range tb.rows {
		if r[col] == val {
			return r
		}
	}
	t.Fatalf("table %v has no row with %s = %s: %v", tb.header, col, val, tb.rows)
	return nil
}

// metric is one sample of the Prometheus text exposition.
type metric struct {
	name   string
	labels map[string]string
	value  float64
}

// metrics fetches /metrics and parses its samples (the text format's
// "name{label="value",...} value" lines).
func (e *spEnv) metrics() []metric {
	e.t.Helper()
	body, code := e.get("/metrics")
	if code != http.StatusOK {
		e.t.Fatalf("GET /metrics: status %d: %s", code, body)
	}
	ms, err := parseMetrics(string(body))
	if err != nil {
		e.t.Fatalf("GET /metrics: %v", err)
	}
	return ms
}

func parseMetrics(text string) ([]metric, error) {
	var out []metric
	for n, line := range strings.Split(text, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := metric{labels: map[string]string{}}
		rest := line
		if i := strings.IndexAny(rest, "{ "); i >= 0 && rest[i] == '{' {
			m.name = rest[:i]
			end := strings.LastIndexByte(rest, '}')
			if end < i {
				return nil, fmt.Errorf("line %d: %q: unterminated labels", n+1, line)
			}
			for _, kv := range splitLabels(rest[i+1 : end]) {
				k, v, ok := strings.Cut(kv, "=")
				uq, err := strconv.Unquote(v)
				if !ok || err != nil {
					return nil, fmt.Errorf("line %d: %q: bad label %q", n+1, line, kv)
				}
				m.labels[k] = uq
			}
			rest = strings.TrimSpace(rest[end+1:])
		} else {
			m.name, rest, _ = strings.Cut(rest, " ")
		}
		val, _, _ := strings.Cut(strings.TrimSpace(rest), " ") // a timestamp may follow
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return nil, fmt.Errorf("line %d: %q: value: %v", n+1, line, err)
		}
		m.value = v
		out = append(out, m)
	}
	return out, nil
}

// splitLabels splits `a="x",b="y,z"` at the commas between labels.
func splitLabels(s string) []string {
	var out []string
	inQuote, start := false, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			inQuote = !inQuote
		case ',':
			if !inQuote {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// find returns the samples called name whose labels include want.
func findMetrics(ms []metric, name string, want map[string]string) []metric {
	var out []metric
	for _, m := range ms {
		if m.name != name {
			continue
		}
		ok := true
		for k, v := range want {
			if m.labels[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// metricValue returns the value of the one sample called name with exactly
// the labels want, failing the test if there is not exactly one.
func metricValue(t *testing.T, ms []metric, name string, want map[string]string) float64 {
	t.Helper()
	found := findMetrics(ms, name, want)
	if len(found) != 1 {
		t.Fatalf("metric %s%v: %d samples, want 1: %v", name, want, len(found), found)
	}
	return found[0].value
}

// ---------------------------------------------------------------------------
// Long-running clients

// streamClient is a running "iplab hold" or "iplab load" with -o json: it
// reports once ready and once stopped (see lab.HoldReport).
type streamClient[R any] struct {
	name    string
	cmd     *stdCmd
	reports chan R
	ready   R
}

// stdCmd is a started program with its exit.
type stdCmd struct {
	pid  int
	done chan struct{}
	err  error
	sig  func(os.Signal) error
}

// startStream starts "iplab <sub> --vip VIP -o json args..." in the
// client's namespace and returns once its ready report arrived.
func startStream[R any](e *spEnv, sub string, args ...string) *streamClient[R] {
	e.t.Helper()
	full := append([]string{iplabBin, sub, "--vip", e.vip.String(), "--port", port, "-o", "json"}, args...)
	cmd := e.lab.CommandContext(e.ctx, e.lab.Client().NS, full...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	cmd.Stderr = &lab.PrefixWriter{W: testLog{e.t}, Prefix: "iplab " + sub + " | ", Mu: &e.outMu}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	c := &streamClient[R]{name: "iplab " + sub, reports: make(chan R, 2),
		cmd: &stdCmd{pid: cmd.Process.Pid, done: make(chan struct{}), sig: cmd.Process.Signal}}
	go func() {
		defer close(c.reports)
		dec := json.NewDecoder(bufio.NewReader(stdout))
		for {
			var r R
			if err := dec.Decode(&r); err != nil {
				if !errors.Is(err, io.EOF) {
					e.t.Logf("%s: report unreadable: %v", c.name, err)
				}
				break
			}
			c.reports <- r
		}
		c.cmd.err = cmd.Wait()
		close(c.cmd.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-c.cmd.done:
		default:
			_ = cmd.Process.Kill()
			<-c.cmd.done
		}
	})
	select {
	case r, ok := <-c.reports:
		if !ok {
			<-c.cmd.done
			e.t.Fatalf("%s exited (%v) without a ready report", c.name, c.cmd.err)
		}
		c.ready = r
	case <-e.ctx.Done():
		e.t.Fatalf("%s: no ready report: %v", c.name, e.ctx.Err())
	}
	return c
}

// stop sends SIGTERM and returns the final report.
func (c *streamClient[R]) stop(e *spEnv) R {
	e.t.Helper()
	if err := c.cmd.sig(syscall.SIGTERM); err != nil {
		e.t.Fatalf("%s: %v", c.name, err)
	}
	var final R
	select {
	case r, ok := <-c.reports:
		if !ok {
			e.t.Fatalf("%s exited (%v) without a final report", c.name, c.cmd.err)
		}
		final = r
	case <-e.ctx.Done():
		e.t.Fatalf("%s: no final report: %v", c.name, e.ctx.Err())
	}
	<-c.cmd.done
	b, _ := json.Marshal(final)
	e.t.Logf("%s final report (exit %v): %s", c.name, c.cmd.err, b)
	return final
}

// startHold starts "iplab hold" with n connections from fixed source ports
// echoing bytes every interval, and returns once every connection has
// echoed.
func (e *spEnv) startHold(n int, interval time.Duration, bytes int) *streamClient[lab.HoldReport] {
	e.t.Helper()
	return e.startHoldFrom(e.sports(n), n, interval, bytes)
}

// startHoldFrom is startHold from source ports sport..sport+n-1, which the
// caller chose outside those sports hands out (20000 up).
func (e *spEnv) startHoldFrom(sport, n int, interval time.Duration, bytes int) *streamClient[lab.HoldReport] {
	e.t.Helper()
	h := startStream[lab.HoldReport](e, "hold", "--conns", strconv.Itoa(n), "--interval", interval.String(),
		"--bytes", strconv.Itoa(bytes), "--timeout", "3s", "--sport", strconv.Itoa(sport))
	if h.ready.Connected != n || h.ready.Failed != 0 {
		e.t.Fatalf("iplab hold: %d of %d connections greeted, %d failed: %+v", h.ready.Connected, n, h.ready.Failed, h.ready.Connections)
	}
	e.t.Logf("iplab hold: %d connections up, by server %v", n, h.ready.Servers)
	e.waitEchoed(h, time.Now(), nil, "iplab hold starting")
	return h
}

// connsOn returns the indices of the hold connections greeted by server.
func connsOn(r lab.HoldReport, server string) []int {
	var out []int
	for _, c := range r.Connections {
		if c.Server == server {
			out = append(out, c.Conn)
		}
	}
	return out
}

// failedConns returns the indices of the failed hold connections.
func failedConns(r lab.HoldReport) []int {
	var out []int
	for _, c := range r.Connections {
		if !c.FailedAt.IsZero() {
			out = append(out, c.Conn)
		}
	}
	return out
}

// requireEchoedAfter fails the test unless hold connection c verified an
// echo after t0 and did not fail.
func requireEchoedAfter(t *testing.T, c lab.HoldConn, t0 time.Time, what string) {
	t.Helper()
	if !c.FailedAt.IsZero() {
		t.Errorf("hold connection %d (port %d, %s): failed at %s (%s: %s: %s), want it %s",
			c.Conn, c.SourcePort, c.Server, c.FailedAt.Format(time.StampMilli), c.Stage, c.Kind, c.Error, what)
		return
	}
	if !c.LastEcho.After(t0) {
		t.Errorf("hold connection %d (port %d, %s): last echo at %s, not after %s: want it %s",
			c.Conn, c.SourcePort, c.Server, c.LastEcho.Format(time.StampMilli), t0.Format(time.StampMilli), what)
	}
}

// reload makes the running ipfront re-read its configuration file, by
// SIGHUP (how "sighup") or "ipfront ctl reload" (how "ctl"), waits for its
// "reloaded" log line and for the new servers to be resolved, and returns
// the generation it published, which must exceed the one before.
func (e *spEnv) reload(how string) uint64 {
	e.t.Helper()
	before := e.status().Generation
	mark := e.log.mark()
	var ctlGen uint64
	switch how {
	case "sighup":
		if err := e.ipf.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			e.t.Fatal(err)
		}
	case "ctl":
		r := e.ctlOK("reload")
		if _, err := fmt.Sscanf(r.stdout, "reloaded: tables generation %d", &ctlGen); err != nil {
			e.t.Fatalf("ipfront ctl reload printed %q, want \"reloaded: tables generation N\"", r.stdout)
		}
	default:
		e.t.Fatalf("reload how %q", how)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	line, _ := e.waitLine(ctx, mark, `"reloaded"`, msgIs("reloaded"))
	gen, err := strconv.ParseUint(line.Str("generation"), 10, 64)
	if err != nil {
		e.t.Fatalf("reloaded log line without a generation: %s", line.Text)
	}
	if how == "ctl" && ctlGen != gen {
		e.t.Errorf("ipfront ctl reload said generation %d, the log %d", ctlGen, gen)
	}
	if gen <= before {
		e.t.Errorf("reload (%s) published generation %d, want more than %d (before)", how, gen, before)
	}
	if now := e.status().Generation; now < gen {
		e.t.Errorf("/v1/status generation %d after a reload that published %d", now, gen)
	}
	e.waitResolved()
	return gen
}

// snapshot asks a running "iplab hold" for a report (SIGUSR1) and returns it.
func (c *streamClient[R]) snapshot(e *spEnv) R {
	e.t.Helper()
	if err := c.cmd.sig(syscall.SIGUSR1); err != nil {
		e.t.Fatalf("%s: %v", c.name, err)
	}
	select {
	case r, ok := <-c.reports:
		if !ok {
			e.t.Fatalf("%s exited (%v) instead of reporting", c.name, c.cmd.err)
		}
		return r
	case <-e.ctx.Done():
		e.t.Fatalf("%s: no snapshot report: %v", c.name, e.ctx.Err())
	}
	panic("unreachable")
}

// waitEchoed waits until every connection of a running "iplab hold",
// except those listed, has verified an echo after t0. It fails the test at
// once if one of them failed, and after a few seconds if one is silent.
func (e *spEnv) waitEchoed(h *streamClient[lab.HoldReport], t0 time.Time, except []int, what string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := h.snapshot(e)
		var waiting []int
		for _, c := range r.Connections {
			if slices.Contains(except, c.Conn) {
				continue
			}
			if !c.FailedAt.IsZero() {
				e.t.Fatalf("%s: long-lived connection %d (port %d, %s) failed at %s: %s (%s: %s)", what, c.Conn, c.SourcePort,
					c.Server, c.FailedAt.Format(time.StampMilli), c.Kind, c.Stage, c.Error)
			}
			if !c.LastEcho.After(t0) {
				waiting = append(waiting, c.Conn)
			}
		}
		if len(waiting) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: long-lived connections %v verified no echo since %s", what, waiting, t0.Format(time.StampMilli))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// tcpRetransmits returns the TCP segments retransmitted so far in namespace
// ns (RetransSegs of /proc/net/snmp): on the quiet lab, any retransmission
// means a segment was lost.
func (e *spEnv) tcpRetransmits(ns string) uint64 {
	e.t.Helper()
	out, err := e.lab.Exec(ns, "cat", "/proc/net/snmp")
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RetransSegs" && i < len(f) {
				v, err := strconv.ParseUint(f[i], 10, 64)
				if err != nil {
					e.t.Fatalf("RetransSegs %q: %v", f[i], err)
				}
				return v
			}
		}
	}
	e.t.Fatalf("no RetransSegs in /proc/net/snmp of %s:\n%s", ns, out)
	return 0
}

// requireNoDrops fails the test if ipfront dropped anything.
func (e *spEnv) requireNoDrops(what string) {
	e.t.Helper()
	var c apiCounters
	e.api("/v1/counters", &c)
	if c.Dropped != 0 {
		var reasons []string
		for r, n := range c.Drops {
			if n > 0 {
				reasons = append(reasons, fmt.Sprintf("%s=%d", r, n))
			}
		}
		e.t.Errorf("%s: ipfront dropped %d frames: %s", what, c.Dropped, strings.Join(reasons, " "))
	}
}
