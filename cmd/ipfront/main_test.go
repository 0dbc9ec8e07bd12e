package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// Every shipped configuration must pass `ipfront check`.
func TestCheckShippedConfigs(t *testing.T) {
	files, _ := filepath.Glob("../../configs/*.toml")
	if len(files) == 0 {
		t.Fatal("no configs found")
	}
	for _, f := range files {
		var out bytes.Buffer
		if err := check([]string{"--config", f}, &out); err != nil {
			t.Errorf("ipfront check %s: %v", f, err)
		}
		if !strings.Contains(out.String(), "ok") {
			t.Errorf("ipfront check %s printed %q", f, out.String())
		}
	}
}

// A broken configuration is refused with every error located.
func TestCheckReportsEveryErrorWithPosition(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.toml")
	bad := `[dataplane]
interfaces = ["eth1"]
batch_sise = 64

[[target_set]]
name = "web"
address = "192.0.2.300"
  [[target_set.server]]
  address = "2001:db8::1"
`
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	err := check([]string{"--config", path}, &bytes.Buffer{})
	if err == nil {
		t.Fatal("check accepted a broken config")
	}
	msg := err.Error()
	for _, want := range []string{path + ":3:1:", "batch_size", path + ":7:"} {
		if !strings.Contains(msg, want) {
			t.Errorf("check error lacks %q:\n%s", want, msg)
		}
	}
}

func TestVersionLine(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.24.0", Main: debug.Module{Path: "github.com/ipfront/ipfront", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2030-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "false"}}}
	modified := *stamped
	modified.Settings = append([]debug.BuildSetting{{Key: "vcs.modified", Value: "true"}}, stamped.Settings[:3]...)
	tests := []struct {
		info *debug.BuildInfo
		want string
	}{
		{stamped, "ipfront v1.2.3 revision 0123456789abcdef0123456789abcdef01234567 2030-01-02T03:04:05Z go1.24.0"},
		{&modified, "ipfront v1.2.3 revision 0123456789abcdef0123456789abcdef01234567 (modified) 2030-01-02T03:04:05Z go1.24.0"},
		{&debug.BuildInfo{GoVersion: "go1.24.0", Main: debug.Module{Version: "(devel)"}}, "ipfront (devel) (no VCS revision) go1.24.0"},
		{nil, "ipfront (no build information)"},
	}
	for _, tc := range tests {
		if got := versionLine(tc.info); got != tc.want {
			t.Errorf("versionLine(%v) = %q, want %q", tc.info, got, tc.want)
		}
	}
}

// The binary go build makes from this repository says which commit it was
// built from, for both spellings of the command.
func TestVersionCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git not installed: go build cannot stamp a revision")
	}
	bin := filepath.Join(t.TempDir(), "ipfront")
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rev := regexp.MustCompile(`^ipfront \S+ revision ([0-9a-f]{40})( \(modified\))? \S+ go\S+\n$`)
	for _, arg := range []string{"version", "--version"} {
		out, err := exec.Command(bin, arg).Output()
		if err != nil {
			t.Fatalf("ipfront %s: %v", arg, err)
		}
		m := rev.FindSubmatch(out)
		if m == nil {
			t.Fatalf("ipfront %s = %q, want \"ipfront VERSION revision HASH [(modified)] TIME GOVERSION\"", arg, out)
		}
		if err := exec.Command(gitPath, "cat-file", "-e", string(m[1])+"^{commit}").Run(); err != nil {
			t.Errorf("ipfront %s names revision %s, which is no commit of this repository", arg, m[1])
		}
	}
}
