// Package archtest enforces the project's package boundaries, so that they
// hold by test rather than by hope.
package archtest

import (
	"os/exec"
	"strings"
	"testing"
)

// rule forbids packages under a prefix from depending (directly or
// transitively) on an import path prefix.
type rule struct {
	pkgPrefix string
	forbidden string
	except    string // package (and its tests) allowed to break the rule, if any
	why       string
}

var rules = []rule{
	{"github.com/ipfront/ipfront/fastpath", "github.com/ipfront/ipfront/slowpath", "", "the fast path is reprogrammed by the slow path, never the reverse"},
	{"github.com/ipfront/ipfront/fastpath", "github.com/rs/zerolog", "", "workers never log; counters instead"},
	{"github.com/ipfront/ipfront/fastpath", "github.com/pelletier/go-toml", "", "the fast path takes tables, not configuration"},
	{"github.com/ipfront/ipfront/", "github.com/asavie/xdp", "github.com/ipfront/ipfront/fastpath/xsk", "asavie/xdp stays behind the AF_XDP adapter"},
}

func TestPackageBoundaries(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command("go", "list", "-deps=false", "-test", "-f", "{{.ImportPath}}|{{join .Deps \" \"}}", "github.com/ipfront/ipfront/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, deps, _ := strings.Cut(line, "|")
		pkg = strings.Fields(pkg + " ")[0] // test variants read "p [p.test]"
		for _, r := range rules {
			// The exception covers the package and its test variants.
			if !strings.HasPrefix(pkg, r.pkgPrefix) || (r.except != "" && strings.HasPrefix(pkg, r.except)) {
				continue
			}
			checked++
			for _, d := range strings.Fields(deps) {
				if strings.HasPrefix(d, r.forbidden) {
					t.Errorf("%s depends on %s: %s", pkg, d, r.why)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no packages checked: the go list output format changed")
	}
}
