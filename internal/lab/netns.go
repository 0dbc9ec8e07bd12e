//go:build linux

package lab

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ipfront/ipfront/internal/nsutil"
)

// Do runs fn on an OS thread switched into namespace ns, so the sockets it
// creates (and the /proc/sys/net files it opens) belong to ns. Sockets stay
// in ns and may be used from any goroutine afterwards. fn runs on a fresh
// goroutine locked to its thread; goroutines it starts are not in ns. If the
// thread cannot be switched back it is thrown away, never reused.
func Do(ns string, fn func() error) error { return nsutil.Do(ns, fn) }

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
