//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Do runs fn on an OS thread switched into namespace ns, so the sockets it
// creates (and the /proc/sys/net files it opens) belong to ns. Sockets stay
// in ns and may be used from any goroutine afterwards. fn runs on a fresh
// goroutine locked to its thread; goroutines it starts are not in ns. If the
// thread cannot be switched back it is thrown away, never reused.
//
// internal/netnstest has the same helper for tests; this one serves code
// that is not a test (iplab) and so cannot take a testing.TB.
func Do(ns string, fn func() error) error {
	f, err := os.Open(netnsDir + "/" + ns)
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

// Sysctl sets kernel parameters in namespace ns, given as {"net.ipv4.ip_forward",
// "0"} pairs, in order. Names use dots as separators (interface names
// containing dots are not supported).
func Sysctl(ns string, kv [][2]string) error {
	return Do(ns, func() error {
		for _, p := range kv {
			path := "/proc/sys/" + strings.ReplaceAll(p[0], ".", "/")
			if err := os.WriteFile(path, []byte(p[1]), 0); err != nil {
				return fmt.Errorf("sysctl %s=%s in %s: %w", p[0], p[1], ns, err)
			}
		}
		return nil
	})
}

// ReadSysctl returns a kernel parameter's value in namespace ns.
func ReadSysctl(ns, name string) (string, error) {
	var v string
	err := Do(ns, func() error {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(name, ".", "/"))
		v = strings.TrimSpace(string(b))
		return err
	})
	return v, err
}

// DialContext connects from namespace ns, like net.Dialer.DialContext.
func DialContext(ctx context.Context, ns, network, address string) (net.Conn, error) {
	var c net.Conn
	err := Do(ns, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// HTTPClient returns an HTTP client whose connections are made from
// namespace ns, for APIs that listen inside a lab namespace (ipfront's on
// 127.0.0.1 in the load balancer's). It keeps no idle connections.
func HTTPClient(ns string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return DialContext(ctx, ns, network, addr)
			},
			DisableKeepAlives: true,
			Proxy:             nil,
		},
	}
}
