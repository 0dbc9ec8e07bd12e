package version

import (
	"runtime/debug"
	"testing"
)

// TestFrom: a stamped release version wins over the module's, the VCS
// settings are picked up, and a build without information still names
// itself.
func TestFrom(t *testing.T) {
	info := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20250101000000-abcdef123456"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abcdef1234567890"}, {Key: "vcs.time", Value: "2025-01-01T00:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	want := Info{Version: "v0.0.0-20250101000000-abcdef123456", Revision: "abcdef1234567890", Time: "2025-01-01T00:00:00Z", Modified: true, GoVersion: "go1.26.8"}
	if got := From(info); got != want {
		t.Errorf("From(module build) = %+v, want %+v", got, want)
	}

	Version = "1.2.3"
	t.Cleanup(func() { Version = "" })
	want.Version = "1.2.3"
	if got := From(info); got != want {
		t.Errorf("From(stamped build) = %+v, want %+v", got, want)
	}
	if got := From(nil); got.Version != "1.2.3" || got.GoVersion == "" {
		t.Errorf("From(nil) = %+v, want version 1.2.3 and this toolchain's Go version", got)
	}
	Version = ""
	if got := From(&debug.BuildInfo{}); got.Version != "(devel)" {
		t.Errorf("From(no module version).Version = %q, want (devel)", got.Version)
	}
}
