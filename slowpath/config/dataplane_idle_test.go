package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

// TestIdleAndHugePageKeys: the [dataplane] keys of the idle mode and the
// UMEM's pages: defaults, accepted values, and errors at the value's
// file:line:column.
func TestIdleAndHugePageKeys(t *testing.T) {
	const head = "[dataplane]\ninterfaces = [\"eth1\"]\n"
	s, err := config.Parse("t.toml", []byte(head))
	if err != nil {
		t.Fatal(err)
	}
	if d := s.Dataplane; d.IdleSpin != 50*time.Microsecond || !d.PreferBusyPoll || d.HugePages != config.HugePagesAuto {
		t.Errorf("defaults: idle_spin %v, prefer_busy_poll %v, huge_pages %q; want 50µs, true, auto", d.IdleSpin, d.PreferBusyPoll, d.HugePages)
	}

	for _, c := range []struct {
		src  string
		spin time.Duration
		huge string
	}{
		{`idle_spin = "0s"`, 0, config.HugePagesAuto},
		{`idle_spin = "1s"`, time.Second, config.HugePagesAuto},
		{"idle_spin = \"2ms\"\nhuge_pages = \"off\"", 2 * time.Millisecond, config.HugePagesOff},
		{`huge_pages = "on"`, 50 * time.Microsecond, config.HugePagesOn},
	} {
		s, err := config.Parse("t.toml", []byte(head+c.src+"\n"))
		if err != nil {
			t.Errorf("Parse(%q) = %v", c.src, err)
			continue
		}
		if s.Dataplane.IdleSpin != c.spin || s.Dataplane.HugePages != c.huge {
			t.Errorf("Parse(%q): idle_spin %v, huge_pages %q; want %v, %q", c.src, s.Dataplane.IdleSpin, s.Dataplane.HugePages, c.spin, c.huge)
		}
	}

	for _, c := range []struct {
		src  string
		want wantErr // line 3: the key after head
	}{
		{`idle_spin = "2s"`, wantErr{3, 13, `dataplane.idle_spin: idle_spin 2s is outside 0s..1s (hint: the default is "50us"`}},
		{`idle_spin = "-1us"`, wantErr{3, 13, "idle_spin -1µs is outside 0s..1s"}},
		{`idle_spin = 50`, wantErr{3, 13, `dataplane.idle_spin: expected a duration string`}},
		{`idle_spin = "fast"`, wantErr{3, 13, `invalid duration "fast"`}},
		{`huge_pages = "yes"`, wantErr{3, 14, `dataplane.huge_pages: unknown value "yes" (hint: valid values: "auto", "on" or "off")`}},
		{`prefer_busy_poll = "true"`, wantErr{3, 20, "dataplane.prefer_busy_poll: expected true or false"}},
	} {
		errs := parseErrors(t, head+c.src+"\n")
		if len(errs) != 1 {
			t.Errorf("Parse(%q) = %d errors %v, want 1", c.src, len(errs), errs)
			continue
		}
		e := errs[0]
		if e.Line != c.want.line || e.Column != c.want.col || !strings.Contains(e.Error(), c.want.text) {
			t.Errorf("Parse(%q) = %v (line %d, column %d), want line %d, column %d, containing %q",
				c.src, e, e.Line, e.Column, c.want.line, c.want.col, c.want.text)
		}
	}
}

// TestExampleDocumentsIdleKeys: configs/example.toml lists the new keys
// with their defaults (TestExampleConfigListsDefaults checks the values).
func TestExampleDocumentsIdleKeys(t *testing.T) {
	b, err := readExample()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{`idle_spin = "50us"`, "prefer_busy_poll = true", `huge_pages = "auto"`} {
		if !strings.Contains(b, "\n"+line+"\n") {
			t.Errorf("configs/example.toml lacks the line %q", line)
		}
	}
}

func readExample() (string, error) {
	b, err := os.ReadFile(filepath.Join(configsDir, "example.toml"))
	return string(b), err
}
