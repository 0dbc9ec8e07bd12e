//go:build linux

// Package netnstest creates throw-away network namespaces and veth pairs for
// tests that need a real kernel data path (XDP, AF_XDP, sockets).
//
// Everything a test creates lives inside namespaces made by New; the only
// trace in the root namespace is the namespace name under /run/netns, and
// tb.Cleanup removes it (after killing any process still running in it).
// Interfaces are created directly inside the namespaces (ip -n ... link add
// ... peer ... netns ...), never in the root namespace, so the host's own
// links are never touched.
//
// Names are unique per process and test ("<prefix>-<pid>-<seq>"), so packages
// whose tests run in parallel do not collide. A namespace left behind by a
// killed test process is removed by the next New that sees it (its pid is
// dead).
//
// The helpers need root and ip(8); RequireRoot skips the test otherwise.
package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ipfront/ipfront/internal/nsutil"
)

// namePrefix marks every namespace this package creates, so stale ones from a
// killed run can be recognised without touching anybody else's.
const namePrefix = "nt"

var seq atomic.Uint64

// RequireRoot skips tb unless the process is root and ip(8) is installed.
func RequireRoot(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root (network namespaces, XDP, AF_XDP)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("needs ip(8) from iproute2")
	}
}

// NS is a named network namespace created by New.
type NS struct {
	// Name is the namespace's name as ip(8) knows it (ip netns exec Name ...).
	Name string
}

// New creates a network namespace whose name starts with prefix and is unique
// for this test run, brings its loopback up and registers its deletion with
// tb.Cleanup. It calls RequireRoot first.
func New(tb testing.TB, prefix string) *NS {
	tb.Helper()
	RequireRoot(tb)
	removeStale()

	name := fmt.Sprintf("%s-%s-%d-%d", namePrefix, prefix, os.Getpid(), seq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	ns := &NS{Name: name}
	tb.Cleanup(func() {
		if err := ns.remove(); err != nil {
			tb.Errorf("remove netns %s: %v", name, err)
		}
	})
	ns.Run(tb, "ip", "link", "set", "lo", "up")
	return ns
}

// Run runs args inside the namespace (ip netns exec) and returns the combined
// output. It fails tb with the output when the command fails.
func (n *NS) Run(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := n.Exec(args...)
	if err != nil {
		tb.Fatalf("ip netns exec %s %s: %v\n%s", n.Name, strings.Join(args, " "), err, out)
	}
	return out
}

// Exec is Run without the test: it returns the output and the error.
func (n *NS) Exec(args ...string) (string, error) {
	full := append([]string{"netns", "exec", n.Name}, args...)
	out, err := exec.Command("ip", full...).CombinedOutput()
	return string(out), err
}

// Do runs fn on an OS thread switched into the namespace, so sockets, BPF
// links and netlink requests made by fn belong to it. Sockets created inside
// fn stay in the namespace and may be used from any goroutine afterwards.
//
// fn runs on a fresh goroutine locked to its thread; fn must not start
// goroutines that expect to be in the namespace (they are not) and must not
// call runtime.UnlockOSThread. If the thread cannot be switched back, it is
// thrown away instead of being returned to the scheduler.
func (n *NS) Do(fn func() error) error { return nsutil.Do(n.Name, fn) }

// Veth creates a veth pair aName (in a) <-> bName (in b) and brings both ends
// up. Both ends get one RX and one TX queue (the veth default).
func Veth(tb testing.TB, a *NS, aName string, b *NS, bName string) {
	tb.Helper()
	VethQueues(tb, a, aName, b, bName, 1)
}

// VethQueues is Veth with queues RX and TX queues on each end, for multiqueue
// tests (AF_XDP binds per queue).
func VethQueues(tb testing.TB, a *NS, aName string, b *NS, bName string, queues int) {
	tb.Helper()
	q := strconv.Itoa(queues)
	a.Run(tb, "ip", "link", "add", aName, "numtxqueues", q, "numrxqueues", q,
		"type", "veth", "peer", "name", bName, "netns", b.Name, "numtxqueues", q, "numrxqueues", q)
	a.Run(tb, "ip", "link", "set", aName, "up")
	b.Run(tb, "ip", "link", "set", bName, "up")
}

// remove kills whatever still runs in the namespace, then deletes it.
func (n *NS) remove() error {
	return nsutil.Remove(n.Name)
}

// removeStale deletes namespaces made by this package in processes that no
// longer exist (a test binary killed before its cleanups ran).
func removeStale() {
	entries, err := os.ReadDir(nsutil.Dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		parts := strings.Split(e.Name(), "-")
		if len(parts) < 4 || parts[0] != namePrefix {
			continue
		}
		pid, err := strconv.Atoi(parts[len(parts)-2])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if !nsutil.Dead(pid) {
			continue // still alive
		}
		_ = nsutil.Remove(e.Name())
	}
}
