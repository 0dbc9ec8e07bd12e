package bgp_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/ipfront/ipfront/internal/netnstest"
	"github.com/ipfront/ipfront/slowpath/bgp"
	"github.com/ipfront/ipfront/slowpath/config"
)

// TestKernelMode: kernel mode keeps exactly the announced VIPs as host
// routes in its table, through the data-plane interface, marked with its
// protocol; a start removes its own routes left by a killed run and leaves
// every other route of the table alone; Close removes what it installed.
func TestKernelMode(t *testing.T) {
	ns := netnstest.New(t, "bgpk")
	ns.Run(t, "ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth9")
	ns.Run(t, "ip", "link", "set", "eth1", "up")
	ns.Run(t, "ip", "link", "set", "eth9", "up")
	// A route a killed run left, and one somebody else owns.
	ns.Run(t, "ip", "route", "add", "192.0.2.99/32", "dev", "eth1", "table", "100", "proto", "199")
	ns.Run(t, "ip", "route", "add", "203.0.113.0/24", "dev", "eth1", "table", "100", "proto", "static")

	show := func() string {
		t.Helper()
		out := ns.Run(t, "ip", "route", "show", "table", "100")
		if out6, err := ns.Exec("ip", "-6", "route", "show", "table", "100"); err == nil {
			out += out6 // an error: no IPv6 route ever went in the table
		}
		return strings.TrimSpace(out)
	}
	cfg := config.BGP{Enabled: true, Mode: config.BGPKernel, ASN: 64512, KernelTable: 100}
	vip4 := bgp.HostRoute(netip.MustParseAddr("192.0.2.10"))
	vip6 := bgp.HostRoute(netip.MustParseAddr("2001:db8:10::10"))
	var k *bgp.Kernel
	err := ns.Do(func() (err error) {
		k, err = bgp.NewKernel(cfg, "eth1", zerolog.Nop())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := show(), "203.0.113.0/24 dev eth1 proto static scope link"; got != want {
		t.Errorf("table 100 after start = %q, want %q (stale route removed, foreign one kept)", got, want)
	}
	if err := ns.Do(func() error { return k.Announce([]netip.Prefix{vip6, vip4}) }); err != nil {
		t.Fatal(err)
	}
	got := show()
	for _, want := range []string{"192.0.2.10 dev eth1 proto 199 scope link", "2001:db8:10::10 dev eth1 proto 199"} {
		if !strings.Contains(got, want) {
			t.Errorf("table 100 after Announce(both) = %q, want a line %q", got, want)
		}
	}
	if st := k.Status(); len(st.Announced) != 2 || st.Announced[0] != vip4 || st.Mode != config.BGPKernel {
		t.Errorf("Status() = %+v, want kernel mode with [%v %v]", st, vip4, vip6)
	}
	if err := ns.Do(func() error { return k.Announce([]netip.Prefix{vip4}) }); err != nil {
		t.Fatal(err)
	}
	if got := show(); strings.Contains(got, "2001:db8:10::10") || !strings.Contains(got, "192.0.2.10") {
		t.Errorf("table 100 after Announce(IPv4 only) = %q, want the IPv6 VIP withdrawn, the IPv4 one kept", got)
	}
	if err := ns.Do(k.Close); err != nil {
		t.Fatal(err)
	}
	if got, want := show(), "203.0.113.0/24 dev eth1 proto static scope link"; got != want {
		t.Errorf("table 100 after Close = %q, want %q", got, want)
	}
	if out := ns.Run(t, "ip", "route", "show", "table", "main"); strings.Contains(out, "192.0.2.10") {
		t.Errorf("main table = %q, want no VIP route (kernel mode writes only its own table)", out)
	}
}
