package packet_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
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
	buf := make([]byte, 128+len(s.Quote)+len(s.Payload))
	n, err := packet.Encode(buf, &s)
	if err != nil {
		tb.Fatalf("Encode(%+v) = %v", s, err)
	}
	return buf[:n:n]
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

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func splice(b []byte, at int, ins ...byte) []byte {
	out := make([]byte, 0, len(b)+len(ins))
	out = append(out, b[:at]...)
	out = append(out, ins...)
	return append(out, b[at:]...)
}

// withTag inserts a VLAN tag with the given TPID in front of the frame's
// current EtherType, making it the outermost tag.
func withTag(b []byte, tpid, vid uint16) []byte {
	return splice(b, 12, byte(tpid>>8), byte(tpid), byte(vid>>8), byte(vid))
}

// withPadding appends link-layer padding, as a switch pads short frames to
// the Ethernet minimum.
func withPadding(b []byte, n int) []byte {
	return append(clone(b), make([]byte, n)...)
}

// mutIPv4 applies f to the IPv4 header at off and then fixes its checksum,
// so tests fail for the mutated field, not for a checksum Parse ignores.
func mutIPv4(b []byte, off int, f func(ip packet.IPv4)) []byte {
	b = clone(b)
	ip := packet.IPv4(b[off:])
	f(ip)
	fixIPv4Checksum(ip)
	return b
}

func fixIPv4Checksum(ip packet.IPv4) {
	if ip.HeaderLen() >= packet.IPv4MinHeaderLen && len(ip) >= ip.HeaderLen() {
		ip.SetChecksum(ip.ComputeChecksum())
	}
}

func setIPv4TotalLen(ip packet.IPv4, n int) { binary.BigEndian.PutUint16(ip[2:4], uint16(n)) }

func setIPv4FlagsFrag(ip packet.IPv4, v uint16) { binary.BigEndian.PutUint16(ip[6:8], v) }

// withIPv4Options inserts options after the fixed IPv4 header at off.
func withIPv4Options(b []byte, off int, opts ...byte) []byte {
	b = splice(b, off+packet.IPv4MinHeaderLen, opts...)
	ip := packet.IPv4(b[off:])
	ip[0] = 0x40 | byte((packet.IPv4MinHeaderLen+len(opts))/4)
	setIPv4TotalLen(ip, int(ip.TotalLen())+len(opts))
	fixIPv4Checksum(ip)
	return b
}

// ext is an IPv6 extension header to insert: its type and its full length.
type ext struct {
	proto uint8
	len   int
}

// withIPv6Ext inserts extension headers, in order, between the IPv6 header
// at off and its payload, linking the Next Header chain and fixing the
// payload length. Their option bytes are zero: Pad1 options.
func withIPv6Ext(b []byte, off int, exts ...ext) []byte {
	ip := packet.IPv6(b[off:])
	next := ip.NextHeader()
	var chain []byte
	for i := len(exts) - 1; i >= 0; i-- {
		h := make([]byte, exts[i].len)
		h[0] = next
		switch exts[i].proto {
		case packet.ProtoAH:
			h[1] = byte(exts[i].len/4 - 2)
		case packet.ProtoFragment:
		default:
			h[1] = byte(exts[i].len/8 - 1)
		}
		chain = append(h, chain...)
		next = exts[i].proto
	}
	b = splice(b, off+packet.IPv6HeaderLen, chain...)
	ip = packet.IPv6(b[off:])
	ip[6] = next
	binary.BigEndian.PutUint16(ip[4:6], ip.PayloadLen()+uint16(len(chain)))
	return b
}

// setAt returns a copy of b with bytes written at off.
func setAt(b []byte, off int, v ...byte) []byte {
	b = clone(b)
	copy(b[off:], v)
	return b
}
