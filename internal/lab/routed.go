//go:build linux

package lab

// Routed topology: clients reach the VIPs through a router that learns them
// from the load balancers (BGP, issue 11), one or more ipfront instances
// on the servers' segment, DSR servers that answer through the router.
//
//	<prefix>-c    client   veth-c    203.0.113.2/24     2001:db8:203::2/64   default via the router
//	<prefix>-r    router   veth-rc   203.0.113.1/24     2001:db8:203::1/64   (clients' side)
//	                       veth-r    198.51.100.254/24  2001:db8:100::fe/64  VIPs: only what it learns
//	<prefix>-lbI  ipfront  veth-lb   198.51.100.I/24    2001:db8:100::I/64   I = 1..9
//	<prefix>-sN   server   veth-sN   198.51.100.1N/24   2001:db8:100::1N/64  VIPs on lo, default via the router
//	<prefix>-sw   bridge br0: the load balancers, the servers and veth-r
//
// The router forwards, hashes ECMP flows by their ports as well as their
// addresses (fib_multipath_hash_policy = 1, so one client's connections
// spread across the instances) and has no route to the VIPs until a
// routing daemon (StartBIRD) installs one. The load balancers do not
// forward. Offloads are off where a kernel stack makes or forwards frames
// (client, router, servers), as in the other labs.

import (
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
)

// MaxLBs bounds the load balancers of a routed lab: their addresses are .1
// to .9, below the servers'.
const MaxLBs = 9

// RoutedLab is a running routed topology. Its embedded Lab's LB is the
// first load balancer, so single-instance helpers (StartServers, Exec)
// work unchanged.
type RoutedLab struct {
	*Lab
	lbs     []Host
	router  Host
	routerC string
}

// routedLB is load balancer i (1-based): .i and ::i on the segment.
func routedLB(prefix string, i int) Host {
	role := "lb" + strconv.Itoa(i)
	return Host{Role: role, NS: prefix + "-" + role, Ifname: LBIfname, MAC: mac(byte(0x20 + i)),
		IPv4: netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), IPv6: netip.MustParseAddr("2001:db8:100::" + strconv.Itoa(i))}
}

// NewRouted builds a routed lab with lbs load balancers and servers
// servers. On error everything already created is removed.
func NewRouted(prefix string, lbs, servers int) (_ *RoutedLab, err error) {
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("lab prefix %q: want 1-64 characters from A-Z a-z 0-9 _ . -", prefix)
	}
	if lbs < 1 || lbs > MaxLBs {
		return nil, fmt.Errorf("lab load balancers %d: want 1..%d", lbs, MaxLBs)
	}
	if servers < 1 || servers > MaxServers {
		return nil, fmt.Errorf("lab servers %d: want 1..%d", servers, MaxServers)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("lab needs ip(8) from iproute2: %w", err)
	}
	RemoveStale()
	r := &RoutedLab{
		router:  Host{Role: "r", NS: prefix + "-r", Ifname: "veth-r", MAC: mac(0xfe), IPv4: NATRouterIPv4, IPv6: NATRouterIPv6},
		routerC: "veth-rc",
	}
	for i := 1; i <= lbs; i++ {
		r.lbs = append(r.lbs, routedLB(prefix, i))
	}
	l := &Lab{
		prefix: prefix,
		sw:     prefix + "-sw",
		lb:     r.lbs[0],
		client: Host{Role: "c", NS: prefix + "-c", Ifname: ClientIfname, MAC: mac(2), IPv4: NATClientIPv4, IPv6: NATClientIPv6},
		vips:   []netip.Addr{DefaultVIP4, DefaultVIP6},
	}
	l.servers = serverHosts(prefix, servers)
	r.Lab = l
	l.track()
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if err := r.build(); err != nil {
		return nil, fmt.Errorf("build routed lab %s: %w", prefix, err)
	}
	return r, nil
}

// LBs returns the load balancers, lb1 first.
func (r *RoutedLab) LBs() []Host { return append([]Host(nil), r.lbs...) }

// Router returns the router.
func (r *RoutedLab) Router() Host { return r.router }

func (r *RoutedLab) build() error {
	spokes := append(append([]Host{}, r.lbs...), r.servers...)
	spokes = append(spokes, r.router)
	hosts := []string{r.client.NS, r.router.NS}
	for _, h := range spokes[:len(spokes)-1] {
		hosts = append(hosts, h.NS)
	}
	if err := r.addNamespaces(r.sw, hosts); err != nil {
		return err
	}
	for _, lb := range r.lbs {
		if err := Sysctl(lb.NS, forwarding(false)); err != nil {
			return err
		}
	}
	if err := Sysctl(r.router.NS, append(forwarding(true),
		[2]string{"net.ipv4.fib_multipath_hash_policy", "1"}, [2]string{"net.ipv6.fib_multipath_hash_policy", "1"},
	)); err != nil {
		return err
	}
	for _, s := range r.servers {
		if err := Sysctl(s.NS, DSRServerSysctls()); err != nil {
			return err
		}
	}
	if err := bridgeHosts(r.sw, spokes); err != nil {
		return err
	}
	if err := ipBatch(r.client.NS, fmt.Sprintf("link add %s address %s type veth peer name %s address %s netns %s\n",
		r.client.Ifname, r.client.MAC, r.routerC, mac(0xfd), r.router.NS)); err != nil {
		return err
	}
	off := [][2]string{{r.client.NS, r.client.Ifname}, {r.router.NS, r.router.Ifname}, {r.router.NS, r.routerC}}
	for _, s := range r.servers {
		off = append(off, [2]string{s.NS, s.Ifname})
	}
	for _, o := range off {
		if err := DisableOffloads(o[0], o[1]); err != nil {
			return err
		}
	}
	for _, s := range r.servers {
		if err := Sysctl(s.NS, [][2]string{
			{"net.ipv4.conf." + s.Ifname + ".arp_ignore", "1"}, {"net.ipv4.conf." + s.Ifname + ".arp_announce", "2"},
		}); err != nil {
			return err
		}
	}

	seg := func(h Host) string {
		return fmt.Sprintf("link set lo up\naddr add %s/%d dev %s\naddr add %s/%d dev %s nodad\nlink set %s up\n",
			h.IPv4, Subnet4.Bits(), h.Ifname, h.IPv6, Subnet6.Bits(), h.Ifname, h.Ifname)
	}
	clientSide := func(a4, a6 netip.Addr, ifname string) string {
		return fmt.Sprintf("addr add %s/%d dev %s\naddr add %s/%d dev %s nodad\nlink set %s up\n",
			a4, NATClientSubnet4.Bits(), ifname, a6, NATClientSubnet6.Bits(), ifname, ifname)
	}
	cmds := map[string]string{
		r.client.NS: "link set lo up\n" + clientSide(r.client.IPv4, r.client.IPv6, r.client.Ifname) +
			fmt.Sprintf("route add default via %s\nroute add default via %s\n", NATGatewayIPv4, NATGatewayIPv6),
		r.router.NS: seg(r.router) + clientSide(NATGatewayIPv4, NATGatewayIPv6, r.routerC),
	}
	for _, lb := range r.lbs {
		cmds[lb.NS] = seg(lb) + fmt.Sprintf("route add %s via %s\nroute add %s via %s\n",
			NATClientSubnet4, NATRouterIPv4, NATClientSubnet6, NATRouterIPv6)
	}
	for _, s := range r.servers {
		c := seg(s)
		for _, v := range r.vips {
			c += fmt.Sprintf("addr add %s dev lo\n", netip.PrefixFrom(v, v.BitLen()))
		}
		cmds[s.NS] = c + fmt.Sprintf("route add default via %s\nroute add default via %s\n", NATRouterIPv4, NATRouterIPv6)
	}
	for ns, c := range cmds {
		if err := ipBatch(ns, c); err != nil {
			return err
		}
	}
	return nil
}
