// Package packettest builds malformed and unusual frames for tests: it takes
// a well-formed frame from packet.Encode and splices in VLAN tags, IPv4
// options, IPv6 extension headers, padding, or overwrites single fields.
// The parser's fixture table and the hostile suite on the wire
// (e2e/hostile_test.go) build their frames with it, so both test the same
// shapes.
//
// Every function returns a new slice and leaves its input alone.
package packettest

import (
	"encoding/binary"
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// Encode encodes s into a frame of its exact length, failing tb if the spec
// is invalid.
func Encode(tb testing.TB, s packet.FrameSpec) []byte {
	tb.Helper()
	buf := make([]byte, 128+len(s.Quote)+len(s.Payload))
	n, err := packet.Encode(buf, &s)
	if err != nil {
		tb.Fatalf("Encode(%+v) = %v", s, err)
	}
	return buf[:n:n]
}

// Clone returns a copy of b.
func Clone(b []byte) []byte { return append([]byte(nil), b...) }

// Splice returns b with ins inserted at offset at.
func Splice(b []byte, at int, ins ...byte) []byte {
	out := make([]byte, 0, len(b)+len(ins))
	out = append(out, b[:at]...)
	out = append(out, ins...)
	return append(out, b[at:]...)
}

// SetAt returns a copy of b with bytes v written at off.
func SetAt(b []byte, off int, v ...byte) []byte {
	b = Clone(b)
	copy(b[off:], v)
	return b
}

// WithTag inserts a VLAN tag with the given TPID in front of the frame's
// current EtherType, making it the outermost tag.
func WithTag(b []byte, tpid, vid uint16) []byte {
	return Splice(b, 12, byte(tpid>>8), byte(tpid), byte(vid>>8), byte(vid))
}

// WithPadding appends n zero bytes of link-layer padding, as a switch pads
// short frames to the Ethernet minimum.
func WithPadding(b []byte, n int) []byte {
	return append(Clone(b), make([]byte, n)...)
}

// MutIPv4 applies f to the IPv4 header at off of a copy of b and then fixes
// its checksum, so that a test fails for the mutated field, not for a
// checksum the receiver would have refused anyway.
func MutIPv4(b []byte, off int, f func(ip packet.IPv4)) []byte {
	b = Clone(b)
	ip := packet.IPv4(b[off:])
	f(ip)
	FixIPv4Checksum(ip)
	return b
}

// FixIPv4Checksum recomputes the header checksum of ip in place if its IHL
// is valid and the header fits.
func FixIPv4Checksum(ip packet.IPv4) {
	if ip.HeaderLen() >= packet.IPv4MinHeaderLen && len(ip) >= ip.HeaderLen() {
		ip.SetChecksum(ip.ComputeChecksum())
	}
}

// SetIPv4TotalLen sets the total length field of ip (checksum untouched).
func SetIPv4TotalLen(ip packet.IPv4, n int) { binary.BigEndian.PutUint16(ip[2:4], uint16(n)) }

// SetIPv4FlagsFrag sets the flags and fragment offset word of ip (checksum
// untouched).
func SetIPv4FlagsFrag(ip packet.IPv4, v uint16) { binary.BigEndian.PutUint16(ip[6:8], v) }

// WithIPv4Options inserts opts after the fixed IPv4 header at off, fixing
// IHL, total length and checksum. len(opts) must be a multiple of 4.
func WithIPv4Options(b []byte, off int, opts ...byte) []byte {
	b = Splice(b, off+packet.IPv4MinHeaderLen, opts...)
	ip := packet.IPv4(b[off:])
	ip[0] = 0x40 | byte((packet.IPv4MinHeaderLen+len(opts))/4)
	SetIPv4TotalLen(ip, int(ip.TotalLen())+len(opts))
	FixIPv4Checksum(ip)
	return b
}

// Ext is an IPv6 extension header to insert: its type and its full length
// in bytes.
type Ext struct {
	Proto uint8
	Len   int
}

// WithIPv6Ext inserts extension headers, in order, between the IPv6 header
// at off and its payload, linking the Next Header chain and fixing the
// payload length. Their option bytes are zero: Pad1 options.
func WithIPv6Ext(b []byte, off int, exts ...Ext) []byte {
	ip := packet.IPv6(b[off:])
	next := ip.NextHeader()
	var chain []byte
	for i := len(exts) - 1; i >= 0; i-- {
		h := make([]byte, exts[i].Len)
		h[0] = next
		switch exts[i].Proto {
		case packet.ProtoAH:
			h[1] = byte(exts[i].Len/4 - 2)
		case packet.ProtoFragment:
		default:
			h[1] = byte(exts[i].Len/8 - 1)
		}
		chain = append(h, chain...)
		next = exts[i].Proto
	}
	b = Splice(b, off+packet.IPv6HeaderLen, chain...)
	ip = packet.IPv6(b[off:])
	ip[6] = next
	binary.BigEndian.PutUint16(ip[4:6], ip.PayloadLen()+uint16(len(chain)))
	return b
}

// CutIPv4 returns the frame with its IPv4 packet (header at off) cut to n
// bytes, the total length saying so and the checksum fixed: a well-formed
// IP packet whose L4 header is short.
func CutIPv4(b []byte, off, n int) []byte {
	return MutIPv4(b[:off+n], off, func(ip packet.IPv4) { SetIPv4TotalLen(ip, n) })
}
