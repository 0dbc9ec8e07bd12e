// Package contrib holds what operators load into other tools: a Grafana
// dashboard (grafana/ipfront.json) and Prometheus alerting rules
// (prometheus/alerts.yml, with promtool unit tests in alerts_test.yml). Its
// test keeps them true to the daemon: every metric they query must be one
// /metrics exports, so renaming a metric fails here, not on an operator's
// screen at 3 a.m.
package contrib

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/slowpath"
)

// metricRef matches the names of metrics ipfront exports (its own and the
// Go and process collectors') inside PromQL. Names of other exporters
// (up) are not ipfront's to check.
var metricRef = regexp.MustCompile(`\b(?:ipfront|go|process)_[a-zA-Z0-9_]*[a-zA-Z0-9]\b`)

// dashboardExprs returns every PromQL expression of a Grafana dashboard:
// panel targets (rows' nested panels included), template variable queries
// and annotations, by panel title.
func dashboardExprs(data []byte) (map[string][]string, error) {
	var d struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Annotations struct {
			List []struct {
				Name string `json:"name"`
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	type panel struct {
		Title   string            `json:"title"`
		Type    string            `json:"type"`
		Panels  []json.RawMessage `json:"panels"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	var walk func(raw []json.RawMessage) error
	walk = func(raw []json.RawMessage) error {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				return err
			}
			if p.Type != "row" && len(p.Targets) == 0 {
				return fmt.Errorf("panel %q has no query", p.Title)
			}
			for _, t := range p.Targets {
				if strings.TrimSpace(t.Expr) == "" {
					return fmt.Errorf("panel %q has a target without expr", p.Title)
				}
				out["panel "+p.Title] = append(out["panel "+p.Title], t.Expr)
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	for _, v := range d.Templating.List {
		var q struct {
			Query string `json:"query"`
		}
		var s string
		if json.Unmarshal(v.Query, &q) == nil && q.Query != "" {
			out["variable "+v.Name] = append(out["variable "+v.Name], q.Query)
		} else if json.Unmarshal(v.Query, &s) == nil && strings.Contains(s, "(") {
			out["variable "+v.Name] = append(out["variable "+v.Name], s)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out["annotation "+a.Name] = append(out["annotation "+a.Name], a.Expr)
		}
	}
	return out, nil
}

// alertExprs returns each alerting rule's expression, by alert name, from a
// rules file: single-line `expr:` values and `expr: |` blocks. It reads the
// layout this file uses, not any YAML; promtool (below) checks the YAML.
func alertExprs(data []byte) (map[string][]string, error) {
	out := map[string][]string{}
	var alert string
	sc := bufio.NewScanner(bytes.NewReader(data))
	var block []string
	blockIndent := -1
	flush := func() {
		if block != nil {
			out[alert] = append(out[alert], strings.Join(block, " "))
			block, blockIndent = nil, -1
		}
	}
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		indent := len(line) - len(strings.TrimLeft(line, " "))
		if block != nil {
			if trimmed == "" || indent > blockIndent {
				block = append(block, trimmed)
				continue
			}
			flush()
		}
		switch {
		case strings.HasPrefix(trimmed, "- alert:"):
			alert = strings.TrimSpace(strings.TrimPrefix(trimmed, "- alert:"))
		case strings.HasPrefix(trimmed, "expr:"):
			if alert == "" {
				return nil, fmt.Errorf("expr before any alert: %q", line)
			}
			v := strings.TrimSpace(strings.TrimPrefix(trimmed, "expr:"))
			if v == "|" || v == ">" {
				block, blockIndent = []string{}, indent
				continue
			}
			out[alert] = append(out[alert], v)
		}
	}
	flush()
	return out, sc.Err()
}

// unexported returns, for each expression owner, the metric names its
// queries use that are not among names.
func unexported(exprs map[string][]string, names []string) []string {
	var bad []string
	for owner, list := range exprs {
		for _, e := range list {
			for _, m := range metricRef.FindAllString(e, -1) {
				if !slices.Contains(names, m) {
					bad = append(bad, fmt.Sprintf("%s uses %s", owner, m))
				}
			}
		}
	}
	slices.Sort(bad)
	return slices.Compact(bad)
}

func load(t *testing.T) (dash, alerts map[string][]string) {
	t.Helper()
	data, err := os.ReadFile("grafana/ipfront.json")
	if err != nil {
		t.Fatal(err)
	}
	if dash, err = dashboardExprs(data); err != nil {
		t.Fatalf("grafana/ipfront.json: %v", err)
	}
	if data, err = os.ReadFile("prometheus/alerts.yml"); err != nil {
		t.Fatal(err)
	}
	if alerts, err = alertExprs(data); err != nil {
		t.Fatalf("prometheus/alerts.yml: %v", err)
	}
	return dash, alerts
}

// TestDashboardAndAlertsUseExportedMetrics: every metric the dashboard and
// the alerts query is one the daemon exports (slowpath.MetricNames, from the
// same collectors as /metrics), and they cover what issue 13 asks for.
func TestDashboardAndAlertsUseExportedMetrics(t *testing.T) {
	dash, alerts := load(t)
	names := slowpath.MetricNames()
	for _, bad := range unexported(dash, names) {
		t.Errorf("grafana/ipfront.json: %s, which ipfront does not export", bad)
	}
	for _, bad := range unexported(alerts, names) {
		t.Errorf("prometheus/alerts.yml: %s, which ipfront does not export", bad)
	}

	var used []string
	for _, list := range dash {
		for _, e := range list {
			used = append(used, metricRef.FindAllString(e, -1)...)
		}
	}
	for _, m := range []string{"ipfront_build_info", "ipfront_config_last_reload_successful", "ipfront_config_last_reload_success_timestamp_seconds",
		"ipfront_worker_busy_seconds_total", "ipfront_worker_idle_seconds_total", "ipfront_umem_frames", "ipfront_ring_entries",
		"ipfront_server_up", "ipfront_drops_total", "ipfront_associations", "ipfront_balance_alarm_active"} {
		if !slices.Contains(used, m) {
			t.Errorf("grafana/ipfront.json shows no %s", m)
		}
	}
	for _, a := range []string{"IpfrontServerDown", "IpfrontBalanceAlarm", "IpfrontAssociationTableHigh", "IpfrontReloadFailed", "IpfrontDropsRising"} {
		if len(alerts[a]) == 0 {
			t.Errorf("prometheus/alerts.yml has no alert %s", a)
		}
	}
}

// TestRenameIsCaught: the check above fails when the daemon stops
// exporting a name the files use: with ipfront_worker_busy_seconds_total
// renamed, both the dashboard and the alerts are reported.
func TestRenameIsCaught(t *testing.T) {
	dash, alerts := load(t)
	renamed := slices.DeleteFunc(slowpath.MetricNames(), func(n string) bool { return n == "ipfront_worker_busy_seconds_total" })
	renamed = append(renamed, "ipfront_worker_busy_nanoseconds_total")
	if bad := unexported(dash, renamed); !slices.ContainsFunc(bad, func(s string) bool { return strings.HasSuffix(s, " uses ipfront_worker_busy_seconds_total") }) {
		t.Errorf("dashboard check with the metric renamed reported %q, want its use of ipfront_worker_busy_seconds_total", bad)
	}
	if bad := unexported(alerts, renamed); !slices.Contains(bad, "IpfrontWorkerSaturated uses ipfront_worker_busy_seconds_total") {
		t.Errorf("alerts check with the metric renamed reported %q, want IpfrontWorkerSaturated's use", bad)
	}
}

// TestPromtool: promtool (Debian package prometheus) accepts the rules,
// their unit tests in alerts_test.yml pass (the alerts fire when they
// should and only then), and every dashboard query parses as PromQL
// (Grafana's variables replaced by values).
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus): rules checked by the name test only")
	}
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	dash, _ := load(t)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for owner, list := range dash {
		if strings.HasPrefix(owner, "variable ") {
			continue // label_values() is Grafana's, not PromQL
		}
		for _, e := range list {
			e = strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*").Replace(e)
			q, _ := json.Marshal(e)
			fmt.Fprintf(&rules, "      - record: dashboard_query_%d\n        expr: %s\n", n, q)
			n++
		}
	}
	path := filepath.Join(t.TempDir(), "dashboard.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("dashboard queries do not all parse: %v\n%s", err, out)
	}
}
