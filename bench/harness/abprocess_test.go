//go:build linux

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// abFixture is an A/B of two cases over four rounds: Established1M 20 %
// faster by the medians, OneFlow 10 % faster, nothing allocating.
func abFixture() *abProcess {
	ab := &abProcess{Base: "80b3afdb684aa4bbac3e0fea44ac045d40f6dad0", BaseSubject: "before v2", Current: "abcdef0",
		Rounds: 4, Benchtime: "1s", Cases: []string{"Established1M", "OneFlow"}}
	base1M := []float64{100, 90, 120, 110} // median 105, min 90
	cur1M := []float64{84, 80, 90, 70}     // median 82, min 70
	baseOne := []float64{50, 50, 50, 50}
	curOne := []float64{45, 45, 45, 45}
	for i := range 4 {
		ab.Runs = append(ab.Runs,
			abRun{Round: i + 1, Side: abBase, Case: "Established1M", NsPkt: base1M[i]},
			abRun{Round: i + 1, Side: abBase, Case: "OneFlow", NsPkt: baseOne[i]},
			abRun{Round: i + 1, Side: abCurrent, Case: "Established1M", NsPkt: cur1M[i]},
			abRun{Round: i + 1, Side: abCurrent, Case: "OneFlow", NsPkt: curOne[i]})
	}
	return ab
}

// TestABCompare: the report's per-case figures are the median (the mean of
// the middle two for an even count) and the minimum of each side, and the
// change of the medians.
func TestABCompare(t *testing.T) {
	cs := abFixture().compare()
	if len(cs) != 2 {
		t.Fatalf("compare() = %d cases, want 2", len(cs))
	}
	c := cs[0]
	got := []float64{c.Base.Median, c.Base.Min, c.Current.Median, c.Current.Min}
	want := []float64{105, 90, 82, 70}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("compare()[Established1M] base median, base min, current median, current min = %v, want %v", got, want)
			break
		}
	}
	if d := c.Change - (82.0-105)/105; d > 1e-12 || d < -1e-12 {
		t.Errorf("compare()[Established1M].Change = %v, want %v", c.Change, (82.0-105)/105)
	}
	if cs[1].Change > -0.0999 || cs[1].Change < -0.1001 {
		t.Errorf("compare()[OneFlow].Change = %v, want -0.1", cs[1].Change)
	}
}

// TestABTargets: the rows are met only when Established1M's median
// is at least 15 % below the base's and neither side allocates, and say why
// they were not measured otherwise.
func TestABTargets(t *testing.T) {
	verdicts := func(ab *abProcess) (faster, allocs target) {
		ts := (&results{ab: ab}).abTargets()
		if len(ts) != 2 {
			t.Fatalf("abTargets() = %d rows, want 2", len(ts))
		}
		return ts[0], ts[1]
	}
	f, a := verdicts(abFixture())
	if f.verdict != "met" || a.verdict != "met" {
		t.Errorf("abTargets() at -21.9%% and 0 allocs = %q, %q, want met, met", f.verdict, a.verdict)
	}

	slow := abFixture()
	for i := range slow.Runs {
		if slow.Runs[i].Side == abCurrent && slow.Runs[i].Case == "Established1M" {
			slow.Runs[i].NsPkt = 95 // -9.5 %
		}
	}
	if f, _ := verdicts(slow); f.verdict != "**not met**" {
		t.Errorf("abTargets() faster at -9.5%% = %q, want **not met**", f.verdict)
	}

	alloc := abFixture()
	alloc.Runs[len(alloc.Runs)-1].Allocs = 1
	if _, a := verdicts(alloc); a.verdict != "**not met**" {
		t.Errorf("abTargets() allocs with 1 alloc/op in one round = %q, want **not met**", a.verdict)
	}

	small := abFixture()
	small.Cases = []string{"OneFlow"}
	if f, _ := verdicts(small); f.verdict != "not measured" || !strings.Contains(f.measured, "no Established1M") {
		t.Errorf("abTargets() faster without Established1M = %q (%q), want not measured (no Established1M ...)", f.verdict, f.measured)
	}

	skipped := &abProcess{Skipped: "not a git checkout"}
	if f, a := verdicts(skipped); f.verdict != "not measured" || a.verdict != "not measured" || !strings.Contains(f.measured, "not a git checkout") {
		t.Errorf("abTargets() skipped = %q (%q), %q, want not measured with the reason", f.verdict, f.measured, a.verdict)
	}
}

// TestRunABProcessWithoutBase: a base that harness.sh could not provide is a
// skip with its reason (the run goes on), a base that did not build is an
// error, and a harness run without harness.sh says how to get one.
func TestRunABProcessWithoutBase(t *testing.T) {
	p, err := paramsFor("smoke")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ab, err := runABProcess(context.Background(), dir, p)
	if err != nil || !strings.Contains(ab.Skipped, "bench/harness.sh") {
		t.Errorf("runABProcess(no info file) = Skipped %q, err %v, want a skip naming bench/harness.sh", ab.Skipped, err)
	}

	write := func(s string) {
		if err := os.WriteFile(filepath.Join(dir, abInfoFile), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("skip=not a git checkout (a source tarball?): no base revision to build\n")
	ab, err = runABProcess(context.Background(), dir, p)
	if err != nil || ab.Skipped != "not a git checkout (a source tarball?): no base revision to build" {
		t.Errorf("runABProcess(skip=...) = Skipped %q, err %v, want the reason, nil", ab.Skipped, err)
	}

	write("base=80b3afdb684aa4bbac3e0fea44ac045d40f6dad0\nbase_subject=a=b\ncurrent=abcdef0\ncurrent_modified=yes\nerror=go test -c failed\n")
	ab, err = runABProcess(context.Background(), dir, p)
	if err == nil || !strings.Contains(err.Error(), "go test -c failed") {
		t.Errorf("runABProcess(error=...) err = %v, want the build error", err)
	}
	if ab.BaseSubject != "a=b" || !ab.CurrentModified || ab.Skipped != "" {
		t.Errorf("runABProcess(error=...) = subject %q, modified %v, skipped %q, want a=b, true, none", ab.BaseSubject, ab.CurrentModified, ab.Skipped)
	}
}
