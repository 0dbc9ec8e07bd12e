package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestOpsMetricsOnTheDataPlane is issue 13's "new metrics in /metrics" on
// the real data plane (AF_XDP workers on the namespace lab): the build's
// identity; each worker's busy and idle seconds, together no more than the
// process has lived; where each worker's UMEM frames are, adding up to its
// UMEM; its slow-path rings with their capacities; and the reload metrics
// following a refused and then an applied reload (the refused one keeps the
// earlier success time).
func TestOpsMetricsOnTheDataPlane(t *testing.T) {
	e := startSP(t, 2, spConfig{Servers: []spServer{{"s1", 1}, {"s2", 1}}, Balance: balanceOff})
	ms := e.metrics()
	build := findMetrics(ms, "ipfront_build_info", nil)
	if len(build) != 1 || build[0].value != 1 || !strings.HasPrefix(build[0].labels["goversion"], "go") || build[0].labels["version"] == "" {
		t.Errorf("ipfront_build_info = %v, want one sample 1 with version and goversion", build)
	}

	st := e.status()
	if len(st.Workers) == 0 {
		t.Fatal("no workers in /v1/status")
	}
	// The UMEM gauges are refreshed once a second by each worker.
	e.waitFor(10*time.Second, "UMEM gauges of every worker", func() (bool, string) {
		ms = e.metrics()
		n := len(findMetrics(ms, "ipfront_umem_capacity_frames", nil))
		return n == len(st.Workers), fmt.Sprintf("%d of %d workers", n, len(st.Workers))
	})
	start := metricValue(t, ms, "process_start_time_seconds", nil)
	now := float64(time.Now().UnixNano()) / 1e9
	for _, wk := range st.Workers {
		w := map[string]string{"worker": wk.Name}
		busy := metricValue(t, ms, "ipfront_worker_busy_seconds_total", w)
		idle := metricValue(t, ms, "ipfront_worker_idle_seconds_total", w)
		if idle <= 0 || busy < 0 || busy+idle > now-start+1 {
			t.Errorf("worker %s: busy %.3f s + idle %.3f s, want idle > 0 and the sum within the process's %.3f s", wk.Name, busy, idle, now-start)
		}
		capacity := metricValue(t, ms, "ipfront_umem_capacity_frames", w)
		var sum float64
		for _, state := range []string{"free", "fill_rx", "held", "tx"} {
			sum += metricValue(t, ms, "ipfront_umem_frames", map[string]string{"worker": wk.Name, "state": state})
		}
		if capacity <= 0 || sum != capacity {
			t.Errorf("worker %s: UMEM frames by state add up to %v, want the capacity %v (> 0)", wk.Name, sum, capacity)
		}
		for _, ring := range []string{"punt", "inject", "control"} {
			rl := map[string]string{"worker": wk.Name, "ring": ring}
			if c, n := metricValue(t, ms, "ipfront_ring_capacity_entries", rl), metricValue(t, ms, "ipfront_ring_entries", rl); c <= 0 || n < 0 || n > c {
				t.Errorf("worker %s ring %s: %v entries of %v, want 0 <= entries <= capacity > 0", wk.Name, ring, n, c)
			}
		}
	}

	if v := metricValue(t, ms, "ipfront_config_last_reload_successful", nil); v != 1 {
		t.Errorf("ipfront_config_last_reload_successful at start = %v, want 1", v)
	}
	atStart := metricValue(t, ms, "ipfront_config_last_reload_success_timestamp_seconds", nil)
	if atStart < start-1 || atStart > now+1 {
		t.Errorf("last reload success at start = %v, want the start time %v", atStart, start)
	}

	good, err := os.ReadFile(e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	e.writeFile(string(good) + "\n[[target_set]]\nname = \"broken\"\n")
	if r := e.ctl("reload"); r.err == nil {
		t.Fatal("ctl reload of an invalid file succeeded")
	}
	ms = e.metrics()
	if v := metricValue(t, ms, "ipfront_config_last_reload_successful", nil); v != 0 {
		t.Errorf("ipfront_config_last_reload_successful after a refused reload = %v, want 0", v)
	}
	if v := metricValue(t, ms, "ipfront_config_last_reload_success_timestamp_seconds", nil); v != atStart {
		t.Errorf("success timestamp after a refused reload = %v, want the start's %v kept", v, atStart)
	}
	if v := metricValue(t, ms, "ipfront_config_reloads_total", map[string]string{"result": "failure"}); v != 1 {
		t.Errorf("ipfront_config_reloads_total{result=failure} = %v, want 1", v)
	}

	e.writeFile(string(good))
	e.ctlOK("reload")
	ms = e.metrics()
	if v := metricValue(t, ms, "ipfront_config_last_reload_successful", nil); v != 1 {
		t.Errorf("ipfront_config_last_reload_successful after a good reload = %v, want 1", v)
	}
	if v := metricValue(t, ms, "ipfront_config_last_reload_success_timestamp_seconds", nil); v < atStart {
		t.Errorf("success timestamp after a good reload = %v, want at least the start's %v", v, atStart)
	}
}
