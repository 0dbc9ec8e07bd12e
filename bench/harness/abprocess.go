//go:build linux

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// The interleaved A/B of the engine's per-packet benchmark (issue 7: "at
// least 15 % fewer ns/packet than today at 1M flows in one interleaved A/B
// run, 0 allocs"): BenchmarkProcess of ./fastpath built from a base revision
// against the one built from the work tree, run alternately round after
// round on the DUT's core, so that whatever else the machine does in the
// meantime falls on both sides alike. bench/harness.sh builds the base
// binary (ab_base) and describes it in abInfoFile next to it.
const (
	abBaseBinary = "fastpath_base.test"
	abInfoFile   = "fastpath_base.txt"
	// abTargetCase is the case the target is judged on.
	abTargetCase = "Established1M"
	// abTargetChange is the change of the medians the target asks for at
	// most: 15 % fewer ns/packet than the base.
	abTargetChange = -0.15
)

// Sides of the A/B, in the order the odd rounds run them.
const (
	abBase    = "base"
	abCurrent = "current"
)

// abDefaultBase is harness.sh's default AB_BASE: the code before the
// association record v2, which issue 7's target is measured against.
const abDefaultBase = "80b3afd"

// abProcess is the A/B step's outcome.
type abProcess struct {
	// Skipped says why the step did not run (no git, no such revision);
	// nothing else is set then but what harness.sh could tell.
	Skipped string

	Base            string // full hash of the base revision
	BaseSubject     string // its subject line
	Current         string // short hash of HEAD, the work tree's revision
	CurrentModified bool   // fastpath/, go.mod or go.sum differ from HEAD

	Rounds    int
	Benchtime string
	Cases     []string // BenchmarkProcess sub-benchmarks, e.g. "Established1M"
	// Runs holds every case's figures of every round and side, in the order
	// they ran.
	Runs []abRun
	// Err is why the step failed (the base did not build, a run failed);
	// Runs then holds the rounds before the failure.
	Err error
}

// abRun is one case's result in one round on one side.
type abRun struct {
	Round  int
	Side   string // abBase or abCurrent
	Case   string
	NsPkt  float64
	Allocs float64 // allocs/op, per 64-packet batch
}

// abStats summarises one side of one case over the rounds.
type abStats struct {
	Median, Min float64
	MaxAllocs   float64
	PerRound    []float64 // ns/packet, in round order
}

// abCase is one case's comparison.
type abCase struct {
	Name          string
	Base, Current abStats
	// Change is (current median - base median) / base median: negative
	// when the current code is faster.
	Change float64
}

// readABInfo reads the key=value lines harness.sh wrote about the base.
func readABInfo(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	kv := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			kv[k] = v
		}
	}
	return kv, sc.Err()
}

// runABProcess runs the A/B: in every round both test binaries, one after
// the other, the base first in odd rounds and the current code first in even
// ones (so neither side always runs on a machine the other has just warmed or
// disturbed), each pinned to the DUT's core like the Go microbenchmarks. A
// base that is unavailable (no git checkout, no such revision) is a skip, not
// an error: the result says why.
func runABProcess(ctx context.Context, dir string, p params) (*abProcess, error) {
	ab := &abProcess{Cases: p.abCases, Rounds: p.abRounds, Benchtime: p.abBenchtime}
	info, err := readABInfo(filepath.Join(dir, abInfoFile))
	if errors.Is(err, os.ErrNotExist) {
		ab.Skipped = fmt.Sprintf("%s is missing: bench/harness.sh builds the base binary (run the harness through it)",
			filepath.Join(dir, abInfoFile))
		return ab, nil
	}
	if err != nil {
		return ab, err
	}
	if s, ok := info["skip"]; ok {
		ab.Skipped = s
		return ab, nil
	}
	ab.Base, ab.BaseSubject, ab.Current = info["base"], info["base_subject"], info["current"]
	ab.CurrentModified = info["current_modified"] == "yes"
	if e, ok := info["error"]; ok {
		return ab, errors.New(e)
	}
	bins := map[string]string{}
	if bins[abBase], err = filepath.Abs(filepath.Join(dir, abBaseBinary)); err != nil {
		return ab, err
	}
	if _, err := os.Stat(bins[abBase]); err != nil {
		return ab, fmt.Errorf("base test binary: %w", err)
	}
	if bins[abCurrent], err = testBinary(ctx, dir, "fastpath"); err != nil {
		return ab, err
	}
	pattern := "^BenchmarkProcess$/^(" + strings.Join(ab.Cases, "|") + ")$"
	for round := 1; round <= ab.Rounds; round++ {
		sides := []string{abBase, abCurrent}
		if round%2 == 0 {
			slices.Reverse(sides)
		}
		for _, side := range sides {
			runs, err := abOnce(ctx, bins[side], pattern, ab.Benchtime, ab.Cases)
			if err != nil {
				return ab, fmt.Errorf("%s, round %d: %w", side, round, err)
			}
			for _, r := range runs {
				r.Round, r.Side = round, side
				ab.Runs = append(ab.Runs, r)
			}
		}
	}
	return ab, nil
}

// abOnce runs one binary's cases once and returns their figures, in the
// order of cases; a case without ns/pkt or allocs/op is an error.
func abOnce(ctx context.Context, bin, pattern, benchtime string, cases []string) ([]abRun, error) {
	cmd := exec.CommandContext(ctx, "taskset", "-c", fmt.Sprint(dutCPU), bin, "-test.run", "^$",
		"-test.bench", pattern, "-test.benchtime", benchtime, "-test.benchmem", "-test.count", "1")
	cmd.Dir = "fastpath" // as in runGoBenches: the package's files are found relative to it
	o, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s -test.bench %s: %v: %s", bin, pattern, err, tail(string(o), 1500))
	}
	got := map[string]goBench{}
	for _, b := range parseBench("fastpath", string(o)) {
		got[strings.TrimPrefix(b.Name, "Process/")] = b
	}
	var out []abRun
	for _, c := range cases {
		b, ok := got[c]
		ns, hasNs := b.Metrics["ns/pkt"]
		al, hasAl := b.Metrics["allocs/op"]
		if !ok || !hasNs || !hasAl {
			return nil, fmt.Errorf("%s: no ns/pkt and allocs/op for BenchmarkProcess/%s in output:\n%s", bin, c, tail(string(o), 1500))
		}
		out = append(out, abRun{Case: c, NsPkt: ns, Allocs: al})
	}
	return out, nil
}

// compare summarises every case: median and minimum of each side over the
// rounds and the change of the medians.
func (ab *abProcess) compare() []abCase {
	var out []abCase
	for _, c := range ab.Cases {
		ac := abCase{Name: c, Base: ab.stats(abBase, c), Current: ab.stats(abCurrent, c)}
		if len(ac.Base.PerRound) == 0 || len(ac.Current.PerRound) == 0 {
			continue
		}
		ac.Change = safeDiv(ac.Current.Median-ac.Base.Median, ac.Base.Median)
		out = append(out, ac)
	}
	return out
}

func (ab *abProcess) stats(side, c string) abStats {
	var s abStats
	for _, r := range ab.Runs {
		if r.Side == side && r.Case == c {
			s.PerRound = append(s.PerRound, r.NsPkt)
			s.MaxAllocs = max(s.MaxAllocs, r.Allocs)
		}
	}
	if len(s.PerRound) == 0 {
		return s
	}
	sorted := slices.Sorted(slices.Values(s.PerRound))
	s.Min = sorted[0]
	n := len(sorted)
	s.Median = sorted[n/2]
	if n%2 == 0 {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return s
}

// shortRev is the first 7 hex digits of a revision.
func shortRev(rev string) string {
	if len(rev) > 7 {
		return rev[:7]
	}
	return rev
}
