//go:build linux

// Package nsutil holds the network-namespace primitives shared by
// internal/lab (the lab that iplab, the e2e tests and the benchmark harness
// build) and internal/netnstest (throw-away namespaces for tests): running
// code inside a named namespace, deleting one, and turning veth offloads off.
// It takes no testing.TB, so code that is not a test can use it.
package nsutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Dir is where ip(8) bind-mounts named namespaces.
const Dir = "/run/netns"

// Do runs fn on an OS thread switched into the named namespace ns, so the
// sockets, BPF links and netlink requests it makes (and the /proc/sys/net
// files it opens) belong to ns. Sockets created inside fn stay in ns and may
// be used from any goroutine afterwards.
//
// fn runs on a fresh goroutine locked to its thread; fn must not start
// goroutines that expect to be in ns (they are not) and must not call
// runtime.UnlockOSThread. If the thread cannot be switched back, it is thrown
// away instead of being returned to the scheduler.
func Do(ns string, fn func() error) error {
	f, err := os.Open(Dir + "/" + ns)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ns, err)
	}
	defer f.Close()

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread exits with this goroutine.
			errc <- errors.Join(ferr, fmt.Errorf("restore netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// Remove kills whatever runs in namespace name (not this process), then
// deletes it.
func Remove(name string) error {
	if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
		return fmt.Errorf("ip netns del %s: %v: %s", name, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Dead reports whether process pid no longer exists, so that the namespaces
// it named can be removed as stale.
func Dead(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err != nil && !errors.Is(err, syscall.EPERM)
}
