package packet_test

import (
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/fastpath/packet/packettest"
)

// Fixture addresses: the client talks to the VIP; routers send ICMP errors
// about the VIP's replies.
var (
	clientMAC = [6]byte{0x02, 0, 0, 0, 0, 0x01}
	lbMAC     = [6]byte{0x02, 0, 0, 0, 0, 0x02}

	client4 = netip.MustParseAddr("198.51.100.7")
	vip4    = netip.MustParseAddr("203.0.113.10")
	router4 = netip.MustParseAddr("192.0.2.1")
	client6 = netip.MustParseAddr("2001:db8:1::7")
	vip6    = netip.MustParseAddr("2001:db8:ffff::10")
	router6 = netip.MustParseAddr("2001:db8:2::1")
)

const (
	clientPort = 40000
	vipPort    = 443
)

// a16 is the Flow form of an address: IPv4-mapped for IPv4.
func a16(a netip.Addr) [16]byte { return a.As16() }

func encode(tb testing.TB, s packet.FrameSpec) []byte {
	tb.Helper()
	return packettest.Encode(tb, s)
}

// spec returns a client-to-VIP spec for the family of client.
func spec(client, vip netip.Addr, proto uint8) packet.FrameSpec {
	return packet.FrameSpec{
		SrcMAC: clientMAC, DstMAC: lbMAC,
		Src: client, Dst: vip, Proto: proto,
		SrcPort: clientPort, DstPort: vipPort,
	}
}

// reply returns the VIP-to-client packet an ICMP error would quote, cut to
// its IP header plus l4 bytes.
func reply(tb testing.TB, vip, client netip.Addr, proto uint8, l4 int) []byte {
	tb.Helper()
	s := spec(vip, client, proto)
	s.SrcPort, s.DstPort = vipPort, clientPort
	s.SCTPTag = 0xc11e47
	s.Payload = make([]byte, 100)
	b := encode(tb, s)[packet.EthernetHeaderLen:]
	hl := packet.IPv6HeaderLen
	if vip.Is4() {
		hl = packet.IPv4(b).HeaderLen()
	}
	return b[:hl+l4]
}

// icmpError returns a frame carrying an ICMP error from a router to the VIP
// quoting q.
func icmpError(tb testing.TB, typ, code uint8, rest uint32, q []byte, v4 bool) []byte {
	tb.Helper()
	s := packet.FrameSpec{
		SrcMAC: clientMAC, DstMAC: lbMAC,
		Src: router6, Dst: vip6, Proto: packet.ProtoICMPv6,
		ICMPType: typ, ICMPCode: code, ICMPRest: rest, Quote: q,
	}
	if v4 {
		s.Src, s.Dst, s.Proto = router4, vip4, packet.ProtoICMP
	}
	return encode(tb, s)
}

// The frame surgery is packettest's (shared with the hostile suite on the
// wire); these short names keep the fixture tables readable.
var (
	clone            = packettest.Clone
	splice           = packettest.Splice
	withTag          = packettest.WithTag
	withPadding      = packettest.WithPadding
	mutIPv4          = packettest.MutIPv4
	fixIPv4Checksum  = packettest.FixIPv4Checksum
	setIPv4TotalLen  = packettest.SetIPv4TotalLen
	setIPv4FlagsFrag = packettest.SetIPv4FlagsFrag
	withIPv4Options  = packettest.WithIPv4Options
	setAt            = packettest.SetAt
)

// ext is an IPv6 extension header to insert: its type and its full length.
type ext struct {
	proto uint8
	len   int
}

// withIPv6Ext is packettest.WithIPv6Ext with the short ext literals of the
// fixture tables.
func withIPv6Ext(b []byte, off int, exts ...ext) []byte {
	pe := make([]packettest.Ext, len(exts))
	for i, e := range exts {
		pe[i] = packettest.Ext{Proto: e.proto, Len: e.len}
	}
	return packettest.WithIPv6Ext(b, off, pe...)
}
