package slowpath

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestReloadReportsKeysNotApplied checks that a reload changing [log]
// applies the rest of the file and names the [log] keys it could not apply
// (before, they were ignored silently), again on every reload until a
// restart; and that a [dataplane] change is refused naming its keys.
func TestReloadReportsKeysNotApplied(t *testing.T) {
	base := dataplaneTOML + checkedSet("web", "192.0.2.10", "reselect", 2)
	h := startDaemon(t, base)
	gen := h.d.Generation()

	withLog := dataplaneTOML + "[log]\nlevel = \"debug\"\nformat = \"json\"\n" + checkedSet("web", "192.0.2.10", "reselect", 2) +
		checkedSet("new", "192.0.2.20", "reselect", 2)
	h.write(t, withLog)
	res, err := h.d.Reload(t.Context())
	if err != nil {
		t.Fatalf("Reload() with a [log] change = %v, want it applied", err)
	}
	if want := []string{"log.level", "log.format"}; !slices.Equal(res.NotApplied, want) {
		t.Errorf("Reload().NotApplied = %q, want %q", res.NotApplied, want)
	}
	if res.Generation <= gen || res.Generation != h.d.Generation() {
		t.Errorf("Reload().Generation = %d, want the new generation %d (> %d)", res.Generation, h.d.Generation(), gen)
	}
	spec := h.d.Spec()
	if len(spec.TargetSets) != 2 {
		t.Errorf("after the reload %d target sets are in force, want 2: the rest of the file applies", len(spec.TargetSets))
	}
	if spec.Log.Level != "info" || spec.Log.Format != "console" {
		t.Errorf("spec in force has [log] %+v, want the one the daemon runs with (info, console)", spec.Log)
	}

	// Still not applied: reported again.
	res, err = h.d.Reload(t.Context())
	if err != nil || !slices.Equal(res.NotApplied, []string{"log.level", "log.format"}) {
		t.Errorf("second Reload() = %+v, %v; want log.level and log.format reported again", res, err)
	}

	// Back to the [log] in force: nothing to report.
	h.write(t, base)
	if res, err = h.d.Reload(t.Context()); err != nil || res.NotApplied != nil {
		t.Errorf("Reload() of the [log] in force = %+v, %v; want nothing reported", res, err)
	}

	// [dataplane] changes refuse the whole file and name the keys.
	h.write(t, "[dataplane]\ninterfaces = [\"eth1\"]\nbatch_size = 32\nvlans = [7]\n"+checkedSet("web", "192.0.2.10", "reselect", 2))
	gen = h.d.Generation()
	_, err = h.d.Reload(t.Context())
	if !errors.Is(err, ErrRestartNeeded) || !strings.Contains(err.Error(), "dataplane.batch_size, dataplane.vlans changed") {
		t.Errorf("Reload() with a [dataplane] change = %v, want ErrRestartNeeded naming dataplane.batch_size, dataplane.vlans", err)
	}
	if h.d.Generation() != gen {
		t.Errorf("a refused reload published generation %d, want %d kept", h.d.Generation(), gen)
	}
}
