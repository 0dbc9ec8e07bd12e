package slowpath

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestReloadMetrics: ipfront_config_last_reload_successful and its success
// timestamp follow the daemon's reloads as Prometheus's own do: 1 and the
// start time before any reload, 1 and the reload's time after one that
// applied, 0 with the earlier success time kept after one that was refused,
// and back to 1 once a good file is reloaded.
func TestReloadMetrics(t *testing.T) {
	base := dataplaneTOML + checkedSet("web", "192.0.2.10", "reselect", 2)
	h := startDaemon(t, base)
	c := opsCollector{h.d, func() Plane { return nil }}
	names := []string{"ipfront_config_last_reload_successful", "ipfront_config_last_reload_success_timestamp_seconds", "ipfront_config_reloads_total"}
	check := func(what string, ok int, at time.Time, successes, failures int) {
		t.Helper()
		want := fmt.Sprintf(`
# HELP ipfront_config_last_reload_successful %s
# TYPE ipfront_config_last_reload_successful gauge
ipfront_config_last_reload_successful %d
# HELP ipfront_config_last_reload_success_timestamp_seconds %s
# TYPE ipfront_config_last_reload_success_timestamp_seconds gauge
ipfront_config_last_reload_success_timestamp_seconds %d
# HELP ipfront_config_reloads_total %s
# TYPE ipfront_config_reloads_total counter
ipfront_config_reloads_total{result="failure"} %d
ipfront_config_reloads_total{result="success"} %d
`, help(descReloadOK), ok, help(descReloadOKTime), at.Unix(), help(descReloads), failures, successes)
		if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	start := h.clock.Now()
	check("at start", 1, start, 0, 0)

	h.clock.Advance(time.Minute)
	if _, err := h.d.Reload(t.Context()); err != nil {
		t.Fatalf("Reload() = %v", err)
	}
	good := h.clock.Now()
	check("after a reload that applied", 1, good, 1, 0)

	h.clock.Advance(time.Minute)
	h.write(t, base+"[[target_set]]\nname = \"broken\"\n")
	if _, err := h.d.Reload(t.Context()); err == nil {
		t.Fatal("Reload() of an invalid file = nil, want an error")
	}
	check("after a refused reload", 0, good, 1, 1)

	h.clock.Advance(time.Minute)
	h.write(t, base)
	if _, err := h.d.Reload(t.Context()); err != nil {
		t.Fatalf("Reload() = %v", err)
	}
	check("after a good reload again", 1, h.clock.Now(), 2, 1)
}

// help is a description's help text, for expected exposition.
func help(d interface{ String() string }) string {
	s := d.String()
	i := strings.Index(s, `help: "`)
	if i < 0 {
		return ""
	}
	s = s[i+len(`help: "`):]
	return s[:strings.Index(s, `"`)]
}
