//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

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
// cond's last explanation when timeout passes or ipfront exits (when the
// environment runs one: the HA tests run their instances themselves).
func (e *spEnv) waitFor(timeout time.Duration, what string, cond func() (bool, string)) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, timeout)
	defer cancel()
	var exited <-chan struct{} // nil: never
	if e.ipf != nil {
		exited = e.ipf.Done()
	}
	for {
		ok, why := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("%s: not within %v: %s", what, timeout, why)
		case <-exited:
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
