//go:build linux

package lab

// NAT topologies: ipfront in the path both ways, the servers' default
// gateway, the clients on another subnet. Two shapes:
//
// Two-armed (NATTwoArmed): the clients' subnet on one interface, the
// servers' on the other.
//
//	<prefix>-c   client   veth-c    203.0.113.2/24    2001:db8:203::2/64   default via ipfront
//	<prefix>-lb  ipfront  veth-lb0  203.0.113.1/24    2001:db8:203::1/64   (clients' arm)
//	                      veth-lb1  198.51.100.1/24   2001:db8:100::1/64   (servers' arm)
//	<prefix>-sN  server   veth-sN   198.51.100.1N/24  2001:db8:100::1N/64  default via ipfront
//	<prefix>-sw  bridge br0: veth-lb1 and the servers; the client is wired to veth-lb0 directly
//
// One-armed (NATOneArmed): one interface; the clients are routed to it by a
// router on the servers' segment.
//
//	<prefix>-c   client   veth-c    203.0.113.2/24    2001:db8:203::2/64   default via the router
//	<prefix>-r   router   veth-rc   203.0.113.1/24    2001:db8:203::1/64   (clients' side)
//	                      veth-r    198.51.100.254/24 2001:db8:100::fe/64  VIPs via ipfront
//	<prefix>-lb  ipfront  veth-lb   198.51.100.1/24   2001:db8:100::1/64   clients via the router
//	<prefix>-sN  server   veth-sN   198.51.100.1N/24  2001:db8:100::1N/64  default via ipfront
//	<prefix>-sw  bridge br0: veth-lb, veth-r and the servers
//
// In both, the servers do not hold the VIPs (ipfront translates them) and
// ipfront's namespace does not forward (ip_forward off): a server's reply
// reaches the client only if ipfront translated it. The client's, router's
// and servers' links send wire-sized frames with complete checksums, as in
// the DSR lab.

import (
	"fmt"
	"net/netip"
	"os/exec"
)

// NATMode is the shape of a NAT lab.
type NATMode int

// NAT lab shapes.
const (
	NATTwoArmed NATMode = iota // clients on one interface of ipfront, servers on another
	NATOneArmed                // one interface; clients routed by a router on the servers' segment
)

// String returns the mode's name.
func (m NATMode) String() string {
	if m == NATOneArmed {
		return "one-armed"
	}
	return "two-armed"
}

// Addresses of the NAT labs' client side and router.
var (
	NATClientSubnet4 = netip.MustParsePrefix("203.0.113.0/24")
	NATClientSubnet6 = netip.MustParsePrefix("2001:db8:203::/64")
	NATClientIPv4    = netip.MustParseAddr("203.0.113.2")
	NATClientIPv6    = netip.MustParseAddr("2001:db8:203::2")
	// NATGatewayIPv4 and 6 are the clients' gateway: ipfront's clients'
	// arm (two-armed) or the router (one-armed).
	NATGatewayIPv4 = netip.MustParseAddr("203.0.113.1")
	NATGatewayIPv6 = netip.MustParseAddr("2001:db8:203::1")
	// NATRouterIPv4 and 6 are the router's address on the servers'
	// segment (one-armed).
	NATRouterIPv4 = netip.MustParseAddr("198.51.100.254")
	NATRouterIPv6 = netip.MustParseAddr("2001:db8:100::fe")
)

// NATLab is a running NAT topology: a Lab whose LB has one or two
// interfaces, with a router in one-armed mode.
type NATLab struct {
	*Lab
	mode    NATMode
	lbIfs   []string // ipfront's interfaces, the clients' arm first when two
	router  Host     // one-armed only
	routerC string   // the router's interface towards the client
}

// NewNAT builds a NAT lab with the given namespace name prefix, number of
// servers and shape. On error everything already created is removed.
func NewNAT(prefix string, servers int, mode NATMode) (_ *NATLab, err error) {
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("lab prefix %q: want 1-64 characters from A-Z a-z 0-9 _ . -", prefix)
	}
	if servers < 1 || servers > MaxServers {
		return nil, fmt.Errorf("lab servers %d: want 1..%d", servers, MaxServers)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("lab needs ip(8) from iproute2: %w", err)
	}
	RemoveStale()
	l := &Lab{
		prefix: prefix,
		sw:     prefix + "-sw",
		lb:     Host{Role: "lb", NS: prefix + "-lb", Ifname: LBIfname, MAC: mac(1), IPv4: LBIPv4, IPv6: LBIPv6},
		client: Host{Role: "c", NS: prefix + "-c", Ifname: ClientIfname, MAC: mac(2), IPv4: NATClientIPv4, IPv6: NATClientIPv6},
		vips:   []netip.Addr{DefaultVIP4, DefaultVIP6},
	}
	l.servers = serverHosts(prefix, servers)
	l.track()
	n := &NATLab{Lab: l, mode: mode}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if mode == NATTwoArmed {
		n.lbIfs = []string{LBIfname + "0", LBIfname + "1"}
		n.lb.Ifname, n.lb.MAC = n.lbIfs[1], mac(3) // the servers' arm; the clients' arm gets mac(1)
	} else {
		n.lbIfs = []string{LBIfname}
		n.router = Host{Role: "r", NS: prefix + "-r", Ifname: "veth-r", MAC: mac(0xfe), IPv4: NATRouterIPv4, IPv6: NATRouterIPv6}
		n.routerC = "veth-rc"
	}
	if err := n.build(); err != nil {
		return nil, fmt.Errorf("build NAT lab %s: %w", prefix, err)
	}
	return n, nil
}

// Mode returns the lab's shape.
func (n *NATLab) Mode() NATMode { return n.mode }

// LBInterfaces returns ipfront's interfaces in the order its [dataplane]
// lists them: the clients' arm first when there are two.
func (n *NATLab) LBInterfaces() []string { return append([]string(nil), n.lbIfs...) }

// Router returns the router (one-armed labs; the zero Host otherwise).
func (n *NATLab) Router() Host { return n.router }

// build creates and wires the namespaces.
func (n *NATLab) build() error {
	spokes := append([]Host{n.lb}, n.servers...) // on the servers' segment
	hosts := []string{n.lb.NS, n.client.NS}
	if n.mode == NATOneArmed {
		spokes = append(spokes, n.router)
		hosts = append(hosts, n.router.NS)
	}
	for _, s := range n.servers {
		hosts = append(hosts, s.NS)
	}
	if err := n.addNamespaces(n.sw, hosts); err != nil {
		return err
	}
	if err := Sysctl(n.lb.NS, forwarding(false)); err != nil {
		return err
	}
	if n.mode == NATOneArmed {
		if err := Sysctl(n.router.NS, forwarding(true)); err != nil {
			return err
		}
	}

	// The servers' segment: a bridge with a port per spoke.
	if err := bridgeHosts(n.sw, spokes); err != nil {
		return err
	}
	// The client's link: straight to ipfront's clients' arm or the router.
	peerNS, peerIf, peerMAC := n.lb.NS, n.lbIfs[0], mac(1)
	if n.mode == NATOneArmed {
		peerNS, peerIf, peerMAC = n.router.NS, n.routerC, mac(0xfd)
	}
	if err := ipBatch(n.client.NS, fmt.Sprintf("link add %s address %s type veth peer name %s address %s netns %s\n",
		n.client.Ifname, n.client.MAC, peerIf, peerMAC, peerNS)); err != nil {
		return err
	}

	// Offloads off where frames are made or forwarded by a kernel stack.
	off := [][2]string{{n.client.NS, n.client.Ifname}}
	for _, s := range n.servers {
		off = append(off, [2]string{s.NS, s.Ifname})
	}
	if n.mode == NATOneArmed {
		off = append(off, [2]string{n.router.NS, n.router.Ifname}, [2]string{n.router.NS, n.routerC})
	}
	for _, o := range off {
		if err := DisableOffloads(o[0], o[1]); err != nil {
			return err
		}
	}

	// Addresses and routes.
	seg := func(h Host, ifname string) string {
		return fmt.Sprintf("addr add %s/%d dev %s\naddr add %s/%d dev %s nodad\nlink set %s up\n",
			h.IPv4, Subnet4.Bits(), ifname, h.IPv6, Subnet6.Bits(), ifname, ifname)
	}
	clientSide := func(a4, a6 netip.Addr, ifname string) string {
		return fmt.Sprintf("addr add %s/%d dev %s\naddr add %s/%d dev %s nodad\nlink set %s up\n",
			a4, NATClientSubnet4.Bits(), ifname, a6, NATClientSubnet6.Bits(), ifname, ifname)
	}
	cmds := map[string]string{}
	cmds[n.client.NS] = "link set lo up\n" + clientSide(n.client.IPv4, n.client.IPv6, n.client.Ifname) +
		fmt.Sprintf("route add default via %s\nroute add default via %s\n", NATGatewayIPv4, NATGatewayIPv6)
	for _, s := range n.servers {
		cmds[s.NS] = "link set lo up\n" + seg(s, s.Ifname) +
			fmt.Sprintf("route add default via %s\nroute add default via %s\n", n.lb.IPv4, n.lb.IPv6)
	}
	lb := "link set lo up\n" + seg(n.lb, n.lb.Ifname)
	if n.mode == NATTwoArmed {
		lb += clientSide(NATGatewayIPv4, NATGatewayIPv6, n.lbIfs[0])
	} else {
		lb += fmt.Sprintf("route add %s via %s\nroute add %s via %s\n", NATClientSubnet4, NATRouterIPv4, NATClientSubnet6, NATRouterIPv6)
		r := "link set lo up\n" + seg(n.router, n.router.Ifname) + clientSide(NATGatewayIPv4, NATGatewayIPv6, n.routerC)
		for _, v := range n.vips {
			r += fmt.Sprintf("route add %s via %s\n", netip.PrefixFrom(v, v.BitLen()), n.lb.Addr(v.Is6()))
		}
		cmds[n.router.NS] = r
	}
	cmds[n.lb.NS] = lb
	for ns, c := range cmds {
		if err := ipBatch(ns, c); err != nil {
			return err
		}
	}
	return nil
}
