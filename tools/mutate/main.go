// Command mutate is ipfront's mutation check: it applies one-line mutations
// of the production code, one at a time, to a temporary copy of the
// repository, runs the tests that should notice each, and reports which
// mutations the tests caught and which survived.
//
// The mutations come from a list (tools/mutate/mutations.txt; see ParseList
// for its format). Each names a file, the exact text of the original (or a
// regexp) which must match exactly once, its replacement, and the go test
// arguments to run. An entry whose original is no longer in the code makes
// the run fail before any test runs: the list must follow the code it
// guards, or it silently stops guarding it.
//
// The shared work tree is never modified: the copy is made from the work
// tree's tracked and untracked (not ignored) files, or from a commit with
// -rev, into a temporary directory that is removed at the end, also on
// SIGINT or SIGTERM. Before any mutation the listed tests must pass on the
// unmutated copy (the baseline), or the verdicts would mean nothing.
//
// Usage:
//
//	go run ./tools/mutate [-list FILE] [-rev REV] [-only REGEXP] [-k] [-check] [-write TESTING.md]
//
// Exit status: 0 if every mutation was caught, 1 if one survived or an
// entry is stale or invalid, 2 if the check itself could not run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run())
}

// defaultTestTimeout bounds one go test run (go test -timeout): a mutation
// that makes a test hang counts as caught when it expires.
const defaultTestTimeout = 10 * time.Minute

type options struct {
	repo, list, rev, only, write, logDir string
	keepGoing, check, keep               bool
	timeout                              time.Duration
}

func run() int {
	var o options
	flag.StringVar(&o.repo, "repo", "", "repository root (default: the git work tree of the current directory)")
	flag.StringVar(&o.list, "list", "tools/mutate/mutations.txt", "mutation list (a relative path is from the repository root)")
	flag.StringVar(&o.rev, "rev", "", "test this commit (git archive) instead of the work tree as it is")
	flag.StringVar(&o.only, "only", "", "run only the mutations whose id matches this regexp")
	flag.StringVar(&o.write, "write", "", "rewrite the result section of this markdown file (between <!-- mutate:begin --> and <!-- mutate:end -->)")
	flag.StringVar(&o.logDir, "logdir", "", "write each test run's output to a file in this directory")
	flag.BoolVar(&o.keepGoing, "k", false, "run the valid mutations even when some entries are stale (the exit status is still 1)")
	flag.BoolVar(&o.check, "check", false, "only check that every entry applies to the code; run no test")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary copy")
	flag.DurationVar(&o.timeout, "timeout", defaultTestTimeout, "limit of one go test run")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mutate: unexpected argument %q\n", flag.Arg(0))
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := mutate(ctx, o, os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
	}
	return code
}

// mutate runs the whole check and returns the exit status.
func mutate(ctx context.Context, o options, stdout, stderr io.Writer) (int, error) {
	if o.repo == "" {
		out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
		if err != nil {
			return 2, fmt.Errorf("find the repository root (run inside the work tree or use -repo): %w", err)
		}
		o.repo = strings.TrimSpace(string(out))
	}
	listPath := o.list
	if !filepath.IsAbs(listPath) {
		listPath = filepath.Join(o.repo, listPath)
	}
	lf, err := os.Open(listPath)
	if err != nil {
		return 2, err
	}
	muts, err := ParseList(lf)
	lf.Close()
	if err != nil {
		return 1, fmt.Errorf("%s: %w", o.list, err)
	}
	if o.only != "" {
		re, err := regexp.Compile(o.only)
		if err != nil {
			return 2, fmt.Errorf("-only: %w", err)
		}
		var sel []Mutation
		for _, m := range muts {
			if re.MatchString(m.ID) {
				sel = append(sel, m)
			}
		}
		muts = sel
	}
	if len(muts) == 0 {
		return 2, errors.New("no mutation selected")
	}

	dir, err := os.MkdirTemp("", "ipfront-mutate-")
	if err != nil {
		return 2, err
	}
	if o.keep {
		fmt.Fprintf(stderr, "mutate: copy kept in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	src, err := copyTree(ctx, o.repo, o.rev, dir)
	if err != nil {
		return 2, err
	}
	fmt.Fprintf(stderr, "mutate: %d mutations against %s, copied to %s\n", len(muts), src, dir)

	// Every entry must apply before anything runs.
	var stale []string
	var valid []Mutation
	for _, m := range muts {
		b, err := os.ReadFile(filepath.Join(dir, m.File))
		if err == nil {
			_, _, err = m.Apply(b)
		}
		if err != nil {
			stale = append(stale, err.Error())
			continue
		}
		valid = append(valid, m)
	}
	for _, s := range stale {
		fmt.Fprintf(stderr, "mutate: STALE %s\n", s)
	}
	if o.check {
		fmt.Fprintf(stdout, "%d of %d entries apply to %s\n", len(valid), len(muts), src)
		if len(stale) > 0 {
			return 1, fmt.Errorf("%d list entries no longer match the code: refresh %s", len(stale), o.list)
		}
		return 0, nil
	}
	if len(stale) > 0 && !o.keepGoing {
		return 1, fmt.Errorf("%d list entries no longer match the code: refresh %s (or run with -k)", len(stale), o.list)
	}

	if o.logDir != "" {
		if err := os.MkdirAll(o.logDir, 0o755); err != nil {
			return 2, err
		}
	}
	r := &runner{dir: dir, timeout: o.timeout, logDir: o.logDir, log: stderr}
	started := time.Now()
	if err := r.baseline(ctx, valid); err != nil {
		return 2, err
	}
	var results []Result
	for i, m := range valid {
		if ctx.Err() != nil {
			return 2, ctx.Err()
		}
		res := r.one(ctx, m)
		fmt.Fprintf(stderr, "mutate: [%d/%d] %s\n", i+1, len(valid), res.summary())
		results = append(results, res)
	}
	if ctx.Err() != nil {
		return 2, ctx.Err()
	}
	rep := Report{When: started.UTC(), Took: time.Since(started), Source: src, List: o.list, Only: o.only,
		Results: results, Stale: stale, GoVersion: goVersion()}
	rep.WriteText(stdout)
	if o.write != "" {
		path := o.write
		if !filepath.IsAbs(path) {
			path = filepath.Join(o.repo, path)
		}
		if err := rep.UpdateMarkdown(path); err != nil {
			return 2, err
		}
		fmt.Fprintf(stderr, "mutate: result written to %s\n", path)
	}
	if rep.Survived() > 0 || rep.Invalid() > 0 || len(stale) > 0 {
		return 1, nil
	}
	return 0, nil
}

// goVersion returns "go version" of the go tool the tests run with.
func goVersion() string {
	out, err := exec.Command("go", "env", "GOVERSION").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
