package gen

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// usableNUD are the neighbour states whose link-layer address the kernel
// itself would use.
const usableNUD = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE |
	netlink.NUD_PERMANENT | netlink.NUD_NOARP

// ResolveDstMAC returns the Ethernet address that frames for dst leave
// ifname with: the neighbour entry of the gateway of the kernel's route to
// dst, or of dst itself when it is on link, read from the neighbour table of
// the calling thread's network namespace. When there is no usable entry it
// sends one UDP datagram to dst's discard port out of ifname, so that the
// kernel runs ARP or ND, and polls the table until timeout.
//
// It needs ifname to have an address and a route towards dst; where it
// cannot have them (or the neighbour does not answer), pass the MAC
// explicitly (Config.DstMAC, --dst-mac).
func ResolveDstMAC(ifname string, dst netip.Addr, timeout time.Duration) ([6]byte, error) {
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return [6]byte{}, fmt.Errorf("resolve destination MAC: %w", err)
	}
	hop := dst
	if routes, err := netlink.RouteGet(net.IP(dst.AsSlice())); err == nil && len(routes) > 0 {
		if gw, ok := netip.AddrFromSlice(routes[0].Gw); ok {
			hop = gw.Unmap()
		}
		if routes[0].LinkIndex != 0 && routes[0].LinkIndex != ifc.Index {
			return [6]byte{}, fmt.Errorf("resolve destination MAC: the route to %v leaves ifindex %d, not %s; pass the destination MAC",
				dst, routes[0].LinkIndex, ifname)
		}
	}
	fam := netlink.FAMILY_V6
	if hop.Is4() {
		fam = netlink.FAMILY_V4
	}
	deadline := time.Now().Add(timeout)
	for poked := false; ; {
		list, err := netlink.NeighList(ifc.Index, fam)
		if err != nil {
			return [6]byte{}, fmt.Errorf("resolve destination MAC: list neighbours of %s: %w", ifname, err)
		}
		for _, n := range list {
			a, ok := netip.AddrFromSlice(n.IP)
			if !ok || a.Unmap() != hop || n.State&usableNUD == 0 || len(n.HardwareAddr) != 6 {
				continue
			}
			if n.HardwareAddr[0]&1 != 0 {
				// A NOARP entry of a broadcast or multicast
				// address, e.g. when ifname has no IPv4 address:
				// not a host to send unicast frames to.
				return [6]byte{}, fmt.Errorf("resolve destination MAC: the neighbour entry for %v on %s is %v, not a unicast address; pass the destination MAC",
					hop, ifname, n.HardwareAddr)
			}
			return [6]byte(n.HardwareAddr), nil
		}
		if time.Now().After(deadline) {
			return [6]byte{}, fmt.Errorf("resolve destination MAC: no neighbour entry for %v on %s after %v; pass the destination MAC",
				hop, ifname, timeout)
		}
		if !poked {
			poke(ifname, dst)
			poked = true
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// poke sends one empty datagram to dst's discard port out of ifname, from a
// socket made on the calling thread (so in its network namespace). Errors do
// not matter: the datagram is only a means to the resolution.
func poke(ifname string, dst netip.Addr) {
	domain := unix.AF_INET6
	var sa unix.Sockaddr = &unix.SockaddrInet6{Port: 9, Addr: dst.As16()}
	if dst.Is4() {
		domain = unix.AF_INET
		sa = &unix.SockaddrInet4{Port: 9, Addr: dst.As4()}
	}
	fd, err := unix.Socket(domain, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	_ = unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
	_ = unix.Sendto(fd, []byte{0}, unix.MSG_DONTWAIT, sa)
}
