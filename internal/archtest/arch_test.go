// Package archtest enforces the project's package boundaries, so that they
// hold by test rather than by hope.
package archtest

import (
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/ipfront/ipfront"

// rule forbids the packages matching pkgs from importing (directly, or
// through any dependency) the packages matching deny.
//
// A pattern is an import path, which matches that package, or a path ending
// in "/...", which matches it and every package below it; "non-std" matches
// every package outside the standard library.
type rule struct {
	pkgs  string
	deny  []string
	allow []string // imports matching deny that are nevertheless allowed
	// direct: only a package's own imports count. Otherwise everything it
	// depends on does, so a boundary cannot be crossed through a third
	// package.
	direct bool
	// tests: the packages' tests (in-package and external) are bound too.
	tests  bool
	except []exception
	why    string
}

// exception lets packages that match a rule's pkgs break it, for a reason.
// An exception nothing uses any more fails the test, so the list stays
// exactly what the code needs.
type exception struct {
	pkg       string // a pattern
	testsOnly bool   // only the package's tests may
	why       string
}

var rules = []rule{
	{pkgs: mod + "/fastpath/...", deny: []string{mod + "/slowpath/..."}, tests: true,
		why: "the fast path is reprogrammed by the slow path, never the reverse"},
	{pkgs: mod + "/fastpath/...", deny: []string{"github.com/rs/zerolog/..."}, tests: true,
		why: "workers never log; counters instead"},
	{pkgs: mod + "/fastpath/...", deny: []string{"github.com/pelletier/go-toml/..."}, tests: true,
		why: "the fast path takes tables, not configuration"},
	{pkgs: mod + "/...", deny: []string{"github.com/asavie/xdp/..."}, tests: true,
		except: []exception{{pkg: mod + "/fastpath/xsk", why: "the AF_XDP adapter, compared with asavie/xdp by its tests"}},
		why:    "asavie/xdp stays behind the AF_XDP adapter"},

	{pkgs: mod + "/...", deny: []string{"golang.org/x/sys/unix"}, direct: true, tests: true,
		except: []exception{
			{pkg: mod + "/fastpath/xsk", why: "AF_XDP sockets: socket options, the UMEM and ring mappings"},
			{pkg: mod + "/fastpath/assoc", why: "association shards are anonymous mappings advised to huge pages"},
			{pkg: mod + "/fastpath", why: "each worker pins its OS thread to its CPU (sched_setaffinity)"},
			{pkg: mod + "/internal/nsutil", why: "enters network namespaces (setns) and sets veth offloads (ethtool ioctl) for the lab and netnstest"},
			{pkg: mod + "/slowpath", why: "the datagram that makes the kernel resolve a server's MAC is bound to its interface (SO_BINDTODEVICE)"},
			{pkg: mod + "/cmd/ipfront", why: "console logs are coloured only when stderr is a terminal (TCGETS)"},
			{pkg: mod + "/cmd/iplab", why: "the lab's UDP servers read IP_PKTINFO to answer from the VIP a datagram was sent to"},
			{pkg: mod + "/bench/harness", why: "pins the measured processes to CPUs and runs them SCHED_FIFO"},
			{pkg: mod + "/bench/pktgen/gen", why: "the AF_XDP packet generator pins its threads and pokes neighbours with a raw socket"},
			{pkg: mod + "/bench/xskfwd", why: "the raw AF_XDP forwarder the benchmarks compare with pins its thread"},
			{pkg: mod + "/internal/lab", why: "the lab sends hand-made frames through AF_PACKET (RawSender, GSO super-frames) and its tests read veth offload state (ethtool ioctl)"},
			{pkg: mod + "/internal/netnstest", testsOnly: true, why: "tests read veth offload state (ethtool ioctl) to prove the helpers turned it off"},
		},
		why: "system calls stay in the few packages that do I/O, where they are reviewed as such"},
	{pkgs: mod + "/...", deny: []string{"github.com/cilium/ebpf/..."}, direct: true, tests: true,
		except: []exception{
			{pkg: mod + "/fastpath/steer", why: "the steering XDP program and its maps; its tests run the program with ebpf.RunOptions"},
			{pkg: mod + "/bench/harness", why: "holds the *ebpf.Program of steer.NewPassProgram, which it attaches to the peer veth so XDP_TX works there"},
			{pkg: mod + "/fastpath/decap", why: "the servers' IPIP/GUE decapsulation XDP program (ipfront decap), not part of the daemon; its tests run it with ebpf.RunOptions"},
		},
		why: "the kernel's BPF interface stays behind the steering package"},
	{pkgs: mod + "/slowpath/...", deny: []string{mod + "/fastpath/xsk/...", mod + "/fastpath/steer/..."}, direct: true, tests: true,
		why: "the daemon reaches the data plane through an interface, so unit tests drive it with fakes; only fastpath wires sockets and steering"},
	{pkgs: mod + "/cmd/ipfront/internal/ctl",
		deny:  []string{mod + "/slowpath/...", mod + "/fastpath/...", "github.com/rs/zerolog/...", "github.com/pelletier/go-toml/..."},
		allow: []string{mod + "/slowpath/api/v1"},
		why:   "ipfront ctl knows the daemon only through the API's reply types (its tests do run the real API handler)"},
	{pkgs: mod + "/slowpath/api/v1", deny: []string{"non-std"}, allow: []string{mod + "/slowpath/api/v1"}, tests: true,
		why: "clients import the API's types without pulling in anything else"},
}

// pkg is one package (or test package) as go list describes it.
type pkg struct {
	path    string // the package, or for test code the package under test
	test    bool
	imports []string
	deps    []string
}

// listPackages lists every package of the module and its tests.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go tool not in PATH")
	}
	out, err := exec.Command("go", "list", "-test", "-f",
		`{{.ImportPath}}|{{.ForTest}}|{{join .Imports " "}}|{{join .Deps " "}}`, mod+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	var pkgs []pkg
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 4 {
			t.Fatalf("go list line %q: want 4 fields", line)
		}
		p := pkg{path: variant(f[0]), test: f[1] != "", imports: variants(f[2]), deps: variants(f[3])}
		if p.test {
			p.path = f[1] // "p [p.test]" and "p_test [p.test]" are p's tests
		} else if strings.HasSuffix(p.path, ".test") {
			continue // the generated test main
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// variant strips the " [p.test]" of a package compiled for p's tests.
func variant(s string) string { return strings.Fields(s + " ")[0] }

func variants(s string) []string {
	var out []string
	for _, f := range strings.Fields(s) {
		if !strings.HasPrefix(f, "[") {
			out = append(out, f)
		}
	}
	return out
}

// match reports whether path matches pattern.
func match(pattern, path string) bool {
	if pattern == "non-std" {
		first, _, _ := strings.Cut(path, "/")
		return strings.Contains(first, ".")
	}
	if prefix, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == prefix || strings.HasPrefix(path, prefix+"/")
	}
	return path == pattern
}

func matchAny(patterns []string, path string) bool {
	for _, p := range patterns {
		if match(p, path) {
			return true
		}
	}
	return false
}

func TestPackageBoundaries(t *testing.T) {
	pkgs := listPackages(t)
	for _, r := range rules {
		checkRule(t, r, pkgs)
	}
}

// checkRule reports every package breaking r, every exception of r nothing
// needs, and a rule that binds no package at all (its pattern went stale).
func checkRule(t *testing.T, r rule, pkgs []pkg) {
	t.Helper()
	bound := 0
	used := make([]bool, len(r.except))
	broken := map[string][]string{} // "package" or "package (tests)": what it must not depend on
	for _, p := range pkgs {
		if !match(r.pkgs, p.path) || p.test && !r.tests {
			continue
		}
		bound++
		deps := p.deps
		if r.direct {
			deps = p.imports
		}
		for _, d := range deps {
			if !matchAny(r.deny, d) || matchAny(r.allow, d) {
				continue
			}
			excused := false
			for i, e := range r.except {
				if match(e.pkg, p.path) && (p.test || !e.testsOnly) {
					excused, used[i] = true, true
				}
			}
			if excused {
				continue
			}
			what := p.path
			if p.test {
				what += " (tests)"
			}
			if !slices.Contains(broken[what], d) {
				broken[what] = append(broken[what], d)
			}
		}
	}
	verb := "depends on"
	if r.direct {
		verb = "imports"
	}
	for _, what := range slices.Sorted(maps.Keys(broken)) {
		t.Errorf("%s %s %s: %s", what, verb, strings.Join(broken[what], ", "), r.why)
	}
	if bound == 0 {
		t.Errorf("rule for %s binds no package: %s", r.pkgs, r.why)
	}
	for i, e := range r.except {
		if !used[i] {
			t.Errorf("%s no longer needs its exception to %q (%s): remove it", e.pkg, r.why, e.why)
		}
	}
}
