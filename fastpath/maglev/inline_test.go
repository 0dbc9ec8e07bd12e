package maglev

import (
	"os/exec"
	"regexp"
	"testing"
)

// TestInlined asks the compiler whether the per-packet functions still
// inline: Hash sits at the budget, and an edit that pushes it over would
// silently add a call per packet.
func TestInlined(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the compiler")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found")
	}
	out, err := exec.Command(goTool, "build", "-gcflags=-m", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build -gcflags=-m: %v\n%s", err, out)
	}
	for _, fn := range []string{"Hash", "(*Table).Lookup"} {
		if !regexp.MustCompile(`(?m)can inline ` + regexp.QuoteMeta(fn) + `$`).Match(out) {
			t.Errorf("%s is not inlinable; compiler said:\n%s", fn, out)
		}
	}
}
