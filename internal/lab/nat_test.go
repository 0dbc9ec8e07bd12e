//go:build linux

package lab

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/netnstest"
)

// TestNATLab: both shapes build, every host reaches its gateway, the
// servers route through ipfront's namespace and the client through its
// gateway, and without ipfront nothing crosses from the client to a server
// (ipfront's namespace does not forward); Close removes every namespace.
func TestNATLab(t *testing.T) {
	netnstest.RequireRoot(t)
	for _, mode := range []NATMode{NATTwoArmed, NATOneArmed} {
		t.Run(mode.String(), func(t *testing.T) {
			n, err := NewNAT(UniquePrefix("labnat"), 2, mode)
			if err != nil {
				t.Fatal(err)
			}
			names := nsNames(n.Hosts())
			if mode == NATOneArmed {
				names = append(names, n.Router().NS)
			}
			t.Cleanup(func() {
				if err := n.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
				for _, ns := range append(names, n.Switch()) {
					if exists(ns) {
						t.Errorf("namespace %s left after Close", ns)
					}
				}
			})
			if want := map[NATMode]int{NATTwoArmed: 2, NATOneArmed: 1}[mode]; len(n.LBInterfaces()) != want {
				t.Errorf("LBInterfaces() = %v, want %d", n.LBInterfaces(), want)
			}
			for _, ifname := range n.LBInterfaces() {
				if out := run(t, n.Lab, n.LB().NS, "ip", "-br", "link", "show", "dev", ifname); !strings.Contains(out, "UP") {
					t.Errorf("ipfront's %s: %q, want UP", ifname, out)
				}
			}
			if got := sysctl(t, n.LB().NS, "net.ipv4.ip_forward"); got != "0" {
				t.Errorf("ipfront's namespace forwards (ip_forward %s)", got)
			}
			for _, s := range n.Servers() {
				if out := run(t, n.Lab, s.NS, "ip", "route", "get", NATClientIPv4.String()); !strings.Contains(out, "via "+n.LB().IPv4.String()) {
					t.Errorf("%s routes the client %q, want via ipfront", s.Role, out)
				}
				if out := run(t, n.Lab, s.NS, "ip", "-6", "route", "get", NATClientIPv6.String()); !strings.Contains(out, "via "+n.LB().IPv6.String()) {
					t.Errorf("%s routes the client's IPv6 address %q, want via ipfront", s.Role, out)
				}
			}
			want := n.LB().IPv4.String()
			if mode == NATTwoArmed {
				want = NATGatewayIPv4.String()
			}
			if out := run(t, n.Lab, n.client.NS, "ip", "route", "get", DefaultVIP4.String()); !strings.Contains(out, "via "+NATGatewayIPv4.String()) {
				t.Errorf("the client routes the VIP %q, want via %s", out, NATGatewayIPv4)
			}
			if mode == NATOneArmed {
				if out := run(t, n.Lab, n.Router().NS, "ip", "route", "get", DefaultVIP4.String()); !strings.Contains(out, "via "+want) {
					t.Errorf("the router routes the VIP %q, want via %s", out, want)
				}
			}
			// Without ipfront a server is out of the client's reach.
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			if c, err := DialContext(ctx, n.client.NS, "tcp", netip.AddrPortFrom(n.Server(1).IPv4, 9).String()); err == nil {
				c.Close()
				t.Error("the client reached a server without ipfront")
			}
		})
	}
}
