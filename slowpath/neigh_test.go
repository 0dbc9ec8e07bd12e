//go:build linux

package slowpath

import (
	"net"
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/internal/netnstest"
)

// TestNeighborsHoldLastMAC: a server's MAC read from the kernel stays in use
// when the kernel's entry disappears (its re-confirmation lost under load),
// is replaced when the kernel learns another, and is forgotten when the
// server leaves the configuration; an address never resolved is missing.
func TestNeighborsHoldLastMAC(t *testing.T) {
	lb, peer := netnstest.New(t, "neigh-lb"), netnstest.New(t, "neigh-peer")
	netnstest.Veth(t, lb, "n0", peer, "p0")
	lb.Run(t, "ip", "addr", "add", "198.51.100.1/24", "dev", "n0")
	lb.Run(t, "ip", "link", "set", "n0", "up")
	peer.Run(t, "ip", "link", "set", "p0", "up")
	n0 := lb.Link(t, "n0")
	mac := func(last byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0, 0, 0, 0, last} }
	server, other := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12")

	n := NewNeighbors()
	refresh := func(addrs ...netip.Addr) (changed bool, missing int) {
		t.Helper()
		if err := lb.Do(func() error {
			changed, missing = n.Refresh([]int{n0.Index}, []string{"n0"}, addrs)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return changed, missing
	}
	lookup := func(a netip.Addr) (net.HardwareAddr, bool) {
		m, ok := n.Lookup(n0.Index, a)
		return net.HardwareAddr(m[:]), ok
	}

	lb.Run(t, "ip", "neigh", "replace", server.String(), "lladdr", mac(0x11).String(), "dev", "n0", "nud", "reachable")
	if changed, missing := refresh(server, other); !changed || missing != 1 {
		t.Errorf("first Refresh = %v, %d; want true, 1 (%s never resolved)", changed, missing, other)
	}
	if m, ok := lookup(server); !ok || m.String() != mac(0x11).String() {
		t.Fatalf("Lookup(%s) = %s, %v; want %s", server, m, ok, mac(0x11))
	}

	lb.Run(t, "ip", "neigh", "del", server.String(), "dev", "n0")
	if changed, missing := refresh(server, other); changed || missing != 1 {
		t.Errorf("Refresh after the kernel lost the entry = %v, %d; want false, 1 (the MAC is held)", changed, missing)
	}
	if m, ok := lookup(server); !ok || m.String() != mac(0x11).String() {
		t.Errorf("Lookup(%s) after the kernel lost the entry = %s, %v; want the held %s", server, m, ok, mac(0x11))
	}

	lb.Run(t, "ip", "neigh", "replace", server.String(), "lladdr", mac(0x21).String(), "dev", "n0", "nud", "reachable")
	if changed, _ := refresh(server, other); !changed {
		t.Error("Refresh after the server's MAC changed: no change reported")
	}
	if m, ok := lookup(server); !ok || m.String() != mac(0x21).String() {
		t.Errorf("Lookup(%s) after the MAC changed = %s, %v; want %s", server, m, ok, mac(0x21))
	}

	if changed, _ := refresh(other); !changed {
		t.Error("Refresh without the server: no change reported")
	}
	if _, ok := lookup(server); ok {
		t.Errorf("Lookup(%s) after it left the configuration: still held", server)
	}
}
