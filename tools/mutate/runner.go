package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// Outcome is the verdict on one mutation.
type Outcome string

// Outcomes.
const (
	Caught   Outcome = "caught"   // a listed test failed
	Survived Outcome = "survived" // every listed test passed
	Invalid  Outcome = "invalid"  // the mutated code does not build: fix the entry
)

// Result is what happened to one mutation.
type Result struct {
	M       Mutation
	Line    int // the line it changed
	Outcome Outcome
	By      string   // the go test arguments that caught it
	Failed  []string // the failing tests (first few), or "timeout"
	Detail  string   // for an invalid mutation: the build error
	Took    time.Duration
}

func (r Result) where() string { return fmt.Sprintf("%s:%d", r.M.File, r.Line) }

func (r Result) summary() string {
	s := fmt.Sprintf("%-8s %s (%s) in %s", r.Outcome, r.M.ID, r.where(), r.Took.Round(100*time.Millisecond))
	switch r.Outcome {
	case Caught:
		s += fmt.Sprintf(": go test %s: %s", r.By, strings.Join(r.Failed, ", "))
	case Invalid:
		s += ": " + firstLine(r.Detail)
	}
	return s
}

// runner runs go in the copy.
type runner struct {
	dir     string
	timeout time.Duration
	logDir  string
	log     io.Writer
	runs    int
}

// baseline runs every distinct test command of muts on the unmutated copy;
// all must pass.
func (r *runner) baseline(ctx context.Context, muts []Mutation) error {
	seen := map[string]bool{}
	for _, m := range muts {
		for _, args := range m.Tests {
			key := strings.Join(args, "\x00")
			if seen[key] {
				continue
			}
			seen[key] = true
			t0 := time.Now()
			out, err := r.goTest(ctx, "baseline", args)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil {
				return fmt.Errorf("baseline: go test %s fails without any mutation (%v); fix that first:\n%s",
					strings.Join(args, " "), err, tail(out, 40))
			}
			fmt.Fprintf(r.log, "mutate: baseline go test %s: ok in %s\n", strings.Join(args, " "), time.Since(t0).Round(100*time.Millisecond))
		}
	}
	return nil
}

// one applies m to the copy, runs its tests and restores the file.
func (r *runner) one(ctx context.Context, m Mutation) (res Result) {
	t0 := time.Now()
	res.M = m
	defer func() { res.Took = time.Since(t0) }()
	path := filepath.Join(r.dir, filepath.FromSlash(m.File))
	orig, err := os.ReadFile(path)
	if err != nil {
		res.Outcome, res.Detail = Invalid, err.Error()
		return res
	}
	mutated, line, err := m.Apply(orig)
	if err != nil {
		res.Outcome, res.Detail = Invalid, err.Error()
		return res
	}
	res.Line = line
	if err := os.WriteFile(path, mutated, 0o644); err != nil {
		res.Outcome, res.Detail = Invalid, err.Error()
		return res
	}
	defer func() {
		// The copy is reused by the next mutation: a failed restore
		// would turn every later verdict into nonsense.
		if err := os.WriteFile(path, orig, 0o644); err != nil {
			panic(fmt.Sprintf("restore %s: %v", path, err))
		}
	}()

	if out, err := r.goCmd(ctx, m.ID+"-build", "build", "./"+filepath.ToSlash(filepath.Dir(m.File))); err != nil {
		res.Outcome, res.Detail = Invalid, "does not build: "+buildError(out)
		return res
	}
	for _, args := range m.Tests {
		out, err := r.goTest(ctx, m.ID, args)
		if ctx.Err() != nil {
			res.Outcome, res.Detail = Invalid, "interrupted"
			return res
		}
		if err == nil {
			continue
		}
		if strings.Contains(out, "[build failed]") || strings.Contains(out, "[setup failed]") {
			res.Outcome, res.Detail = Invalid, "tests do not build: "+buildError(out)
			return res
		}
		res.Outcome, res.By, res.Failed = Caught, strings.Join(args, " "), failedTests(out)
		return res
	}
	res.Outcome = Survived
	return res
}

// goTest runs go test -count=1 with args.
func (r *runner) goTest(ctx context.Context, label string, args []string) (string, error) {
	return r.goCmd(ctx, label, append([]string{"test", "-count=1", "-timeout", r.timeout.String()}, args...)...)
}

// goCmd runs the go tool in the copy and returns its combined output. It
// runs in a process group of its own, so that an interrupt reaches the test
// binaries too (the end-to-end tests remove their labs on SIGINT) and
// nothing of it outlives the run.
func (r *runner) goCmd(ctx context.Context, label string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = r.dir
	// A binary under test given from outside would not be the mutated one.
	cmd.Env = append(os.Environ(), "IPFRONT_E2E_BINARY=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
	cmd.WaitDelay = 20 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever of the group is left
	}
	if r.logDir != "" {
		r.runs++
		name := fmt.Sprintf("%03d-%s.log", r.runs, label)
		text := fmt.Sprintf("go %s\n(exit: %v)\n\n%s", strings.Join(args, " "), err, out.Bytes())
		if werr := os.WriteFile(filepath.Join(r.logDir, name), []byte(text), 0o644); werr != nil {
			fmt.Fprintf(r.log, "mutate: log: %v\n", werr)
		}
	}
	return out.String(), err
}

var failRE = regexp.MustCompile(`(?m)^\s*--- FAIL: (\S+)`)

// failedTests returns the names of the failing tests in go test output (at
// most 4, parents of failing subtests left out), "timeout" for a test
// binary that timed out, or the FAIL lines when no test is named (a panic,
// TestMain).
func failedTests(out string) []string {
	var names []string
	for _, m := range failRE.FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	// Parents are listed after their subtests; keep the most specific.
	var keep []string
	for _, n := range names {
		parent := false
		for _, o := range names {
			if strings.HasPrefix(o, n+"/") {
				parent = true
			}
		}
		if !parent {
			keep = append(keep, n)
		}
	}
	if strings.Contains(out, "panic: test timed out") {
		keep = append([]string{"timeout"}, keep...)
	}
	if len(keep) == 0 {
		for line := range strings.SplitSeq(out, "\n") {
			if strings.HasPrefix(line, "FAIL\t") {
				keep = append(keep, strings.TrimSpace(line))
			}
		}
	}
	if len(keep) > 4 {
		keep = append(keep[:4], fmt.Sprintf("and %d more", len(keep)-4))
	}
	return keep
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// buildError returns the first compiler message of go build or go test
// output, skipping the "# package" lines.
func buildError(out string) string {
	for line := range strings.SplitSeq(out, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	return strings.TrimSpace(out)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}
