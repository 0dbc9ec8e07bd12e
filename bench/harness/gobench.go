//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// goBench is one Go benchmark result line.
type goBench struct {
	Pkg     string
	Name    string
	Iters   int64
	Metrics map[string]float64 // unit -> value: "ns/op", "ns/pkt", "allocs/op", "B/op"
}

// goBenchSpec says which benchmarks of which package to run.
type goBenchSpec struct {
	pkg   string // import path below the module, e.g. "fastpath"
	bench string // -test.bench pattern
	// iterations, if set, replaces the run's -test.benchtime outside smoke
	// mode: for benchmarks whose untimed set-up per iteration would make a
	// time-based run last minutes.
	iterations string
}

var goBenches = []goBenchSpec{
	{"fastpath", "^BenchmarkProcess$", ""},
	{"fastpath/packet", "^BenchmarkParse$", ""},
	{"fastpath/maglev", "^Benchmark(Lookup|HashLookup)$", ""},
	// The AF_XDP adapter's receive path against asavie/xdp's on the same
	// veth: why the adapter owns its rings (see the report's note).
	{"fastpath/xsk", "^BenchmarkReceiveDrain$", "200000x"},
}

// testBinary returns the compiled test binary of pkg under dir
// (bench/harness.sh builds them), building it if it is missing.
func testBinary(ctx context.Context, dir, pkg string) (string, error) {
	path, err := filepath.Abs(filepath.Join(dir, strings.ReplaceAll(pkg, "/", "_")+".test"))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	cmd := exec.CommandContext(ctx, "go", "test", "-c", "-o", path, "./"+pkg)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go test -c ./%s: %v: %s", pkg, err, tail(string(out), 1000))
	}
	return path, nil
}

// runGoBenches runs the benchmarks, pinned to the DUT's core, with the given
// -test.benchtime, and parses their results.
func runGoBenches(ctx context.Context, dir, benchtime string, smoke bool) ([]goBench, error) {
	var out []goBench
	for _, s := range goBenches {
		bin, err := testBinary(ctx, dir, s.pkg)
		if err != nil {
			return out, err
		}
		pattern := s.bench
		if smoke && s.pkg == "fastpath" {
			// The 1M-flow setups take seconds each; smoke checks the
			// benchmark still runs on the small one.
			pattern = "^BenchmarkProcess$/^(Established64K|OneFlow)$"
		}
		bt := benchtime
		if s.iterations != "" && !smoke {
			bt = s.iterations
		}
		cmd := exec.CommandContext(ctx, "taskset", "-c", fmt.Sprint(dutCPU), bin, "-test.run", "^$",
			"-test.bench", pattern, "-test.benchtime", bt, "-test.benchmem", "-test.count", "1")
		// The package's testdata and fixtures are found relative to it.
		cmd.Dir = s.pkg
		o, err := cmd.CombinedOutput()
		if err != nil {
			return out, fmt.Errorf("%s -test.bench %s: %v: %s", bin, pattern, err, tail(string(o), 1500))
		}
		got := parseBench(s.pkg, string(o))
		if len(got) == 0 {
			return out, fmt.Errorf("%s: no benchmark results in output:\n%s", s.pkg, tail(string(o), 1500))
		}
		out = append(out, got...)
	}
	return out, nil
}

func parseBench(pkg, text string) []goBench {
	var out []goBench
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		iters, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i] // GOMAXPROCS suffix
			}
		}
		b := goBench{Pkg: pkg, Name: strings.TrimPrefix(name, "Benchmark"), Iters: iters, Metrics: map[string]float64{}}
		for i := 2; i+1 < len(f); i += 2 {
			if v, err := strconv.ParseFloat(f[i], 64); err == nil {
				b.Metrics[f[i+1]] = v
			}
		}
		out = append(out, b)
	}
	return out
}
