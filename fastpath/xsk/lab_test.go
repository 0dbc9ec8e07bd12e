//go:build linux

package xsk_test

import (
	"net"
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/steer"
	"github.com/ipfront/ipfront/fastpath/xsk"
	"github.com/ipfront/ipfront/internal/netnstest"
)

var (
	vip4  = netip.MustParseAddr("192.0.2.100")
	peer4 = netip.MustParseAddr("192.0.2.2")
	lb4   = netip.MustParseAddr("192.0.2.1")
)

// lab is two namespaces joined by a veth pair: "lb" (x0) runs the steering
// program for vip4; "peer" (p0) is the other end. IPv6 is disabled in both so
// no background chatter crosses the link.
type lab struct {
	lb, peer *netnstest.NS
	x0, p0   net.Interface
	prog     *steer.Program
}

func newLab(tb testing.TB) *lab {
	tb.Helper()
	l := &lab{lb: netnstest.New(tb, "xsk-lb"), peer: netnstest.New(tb, "xsk-peer")}
	for _, ns := range []*netnstest.NS{l.lb, l.peer} {
		ns.Run(tb, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1", "net.ipv6.conf.all.disable_ipv6=1")
	}
	netnstest.Veth(tb, l.lb, "x0", l.peer, "p0")
	l.x0, l.p0 = l.lb.Link(tb, "x0"), l.peer.Link(tb, "p0")
	// Wire-like frames from the peer's kernel: complete checksums, no
	// super-frames (see netnstest.DisableOffloads).
	netnstest.DisableOffloads(tb, l.peer, "p0")
	l.lb.Run(tb, "ip", "addr", "add", "192.0.2.1/24", "dev", "x0")
	l.peer.Run(tb, "ip", "addr", "add", "192.0.2.2/24", "dev", "p0")
	l.peer.Run(tb, "ip", "neigh", "add", vip4.String(), "lladdr", l.x0.HardwareAddr.String(), "dev", "p0", "nud", "permanent")

	var err error
	if l.prog, err = steer.Load(1); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.prog.Close() })
	if err := l.prog.SetVIPs([]netip.Addr{vip4}); err != nil {
		tb.Fatal(err)
	}
	var att *steer.Attachment
	if err := l.lb.Do(func() error {
		att, err = l.prog.Attach(l.x0.Index, steer.ModeNative)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { att.Close() })
	return l
}

// open opens an AF_XDP socket in ns on ifindex queue 0 and closes it at
// cleanup.
func open(tb testing.TB, ns *netnstest.NS, cfg xsk.Config) *xsk.Socket {
	tb.Helper()
	var s *xsk.Socket
	if err := ns.Do(func() error {
		var err error
		s, err = xsk.Open(cfg)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// openLB opens our socket on x0 and registers it with the steering program.
func (l *lab) openLB(tb testing.TB, cfg xsk.Config) *xsk.Socket {
	tb.Helper()
	cfg.Ifindex = l.x0.Index
	s := open(tb, l.lb, cfg)
	if err := l.prog.RegisterSocket(0, s.FD()); err != nil {
		tb.Fatal(err)
	}
	return s
}

// udpConn opens a UDP socket in ns bound to laddr.
func udpConn(tb testing.TB, ns *netnstest.NS, laddr netip.AddrPort) *net.UDPConn {
	tb.Helper()
	var c *net.UDPConn
	if err := ns.Do(func() error {
		var err error
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(laddr))
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// toVIP is a UDP frame from the peer to vip4 (what the peer's kernel would
// send), with payload.
func (l *lab) toVIP(payload []byte) []byte {
	return netnstest.Frame{
		DstMAC: netnstest.MACOf(l.x0.HardwareAddr), SrcMAC: netnstest.MACOf(l.p0.HardwareAddr),
		Src: netip.AddrPortFrom(peer4, 5555), Dst: netip.AddrPortFrom(vip4, 7777), Payload: payload,
	}.Encode()
}

// fromVIP is a UDP frame from the load balancer side to the peer.
func (l *lab) fromVIP(payload []byte) []byte {
	return netnstest.Frame{
		DstMAC: netnstest.MACOf(l.p0.HardwareAddr), SrcMAC: netnstest.MACOf(l.x0.HardwareAddr),
		Src: netip.AddrPortFrom(vip4, 7777), Dst: netip.AddrPortFrom(peer4, 5555), Payload: payload,
	}.Encode()
}

// swapUDP4 turns an untagged Ethernet/IPv4/UDP frame around in place: MACs,
// addresses and ports swapped. Neither checksum changes (the sums are
// symmetric).
func swapUDP4(f []byte) {
	var tmp [6]byte
	copy(tmp[:], f[0:6])
	copy(f[0:6], f[6:12])
	copy(f[6:12], tmp[:])
	ihl := int(f[14]&0x0f) * 4
	for i := range 4 {
		f[26+i], f[30+i] = f[30+i], f[26+i]
	}
	u := 14 + ihl
	f[u], f[u+1], f[u+2], f[u+3] = f[u+2], f[u+3], f[u], f[u+1]
}
