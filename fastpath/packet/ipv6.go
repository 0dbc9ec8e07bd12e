package packet

import "encoding/binary"

// IPv6 header (RFC 8200 section 3):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                         Source Address                        +
//	|                          (16 octets)                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	+                      Destination Address                      +
//	|                          (16 octets)                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Extension headers Parse skips share a first word (RFC 8200 section 4):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |  Hdr Ext Len  |  ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// where the length is (Hdr Ext Len + 1) * 8 bytes, except for AH (RFC 4302),
// whose Payload Len field counts 4-byte words minus 2: (Payload Len + 2) * 4.
// The fragment header is always 8 bytes with the offset in bytes 2-3.
const (
	ipv6VersionTC  = 0
	ipv6PayloadLen = 4
	ipv6NextHeader = 6
	ipv6HopLimit   = 7
	ipv6Src        = 8
	ipv6Dst        = 24

	// IPv6HeaderLen is the length of the fixed IPv6 header.
	IPv6HeaderLen = 40
	// MaxIPv6ExtHeaders bounds the extension header chain Parse walks, so a
	// crafted chain of tiny headers cannot make it loop for long.
	MaxIPv6ExtHeaders = 8

	ipv6ExtMinLen       = 8
	ipv6FragOffsetMask  = 0xfff8
	ipv6FragHeaderLen   = 8
	ipv6FragOffsetField = 2
)

// IPv6 is a view of an IPv6 header and what follows it. It must hold at least
// IPv6HeaderLen bytes.
type IPv6 []byte

// Version returns the IP version field, 6 for a well-formed header.
func (b IPv6) Version() uint8 { return b[ipv6VersionTC] >> 4 }

// TrafficClass returns the traffic class (DSCP and ECN).
func (b IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(b[ipv6VersionTC:ipv6VersionTC+2]) >> 4)
}

// FlowLabel returns the 20-bit flow label.
func (b IPv6) FlowLabel() uint32 {
	return binary.BigEndian.Uint32(b[ipv6VersionTC:ipv6VersionTC+4]) & 0xfffff
}

// PayloadLen returns the length of everything after the fixed header,
// extension headers included.
func (b IPv6) PayloadLen() uint16 {
	return binary.BigEndian.Uint16(b[ipv6PayloadLen : ipv6PayloadLen+2])
}

// NextHeader returns the type of the header after the fixed header, which may
// be an extension header rather than the transport protocol.
func (b IPv6) NextHeader() uint8 { return b[ipv6NextHeader] }

// HopLimit returns the hop limit.
func (b IPv6) HopLimit() uint8 { return b[ipv6HopLimit] }

// Src returns the source address.
func (b IPv6) Src() [16]byte { return [16]byte(b[ipv6Src : ipv6Src+16]) }

// Dst returns the destination address.
func (b IPv6) Dst() [16]byte { return [16]byte(b[ipv6Dst : ipv6Dst+16]) }

// SetHopLimit sets the hop limit.
func (b IPv6) SetHopLimit(h uint8) { b[ipv6HopLimit] = h }

// SetSrc sets the source address. IPv6 has no header checksum, but TCP, UDP
// and ICMPv6 checksums cover the address through the pseudo-header: update
// TCP and UDP with UpdateChecksumAddr6. SCTP's CRC32c covers no addresses.
func (b IPv6) SetSrc(a [16]byte) { copy(b[ipv6Src:ipv6Src+16], a[:]) }

// SetDst sets the destination address; see SetSrc for the L4 checksum.
func (b IPv6) SetDst(a [16]byte) { copy(b[ipv6Dst:ipv6Dst+16], a[:]) }

// skipIPv6Ext walks the extension header chain of b starting with header type
// next at offset off, and returns the upper-layer protocol and its offset.
// Headers must fit in b; if one does not, it returns short (Parse passes
// BadIPHeader for a packet whose length it has validated, ICMPQuoteTruncated
// for a quote that may legitimately be cut off). A fragment header means
// IPFragment, unless quoted is set and it is a first fragment: an ICMP error
// about a first fragment still quotes the ports.
func skipIPv6Ext(b []byte, next uint8, off int, short Reason, quoted bool) (uint8, int, Reason) {
	for i := 0; ; i++ {
		var n int
		switch next {
		case ProtoTCP, ProtoUDP, ProtoSCTP, ProtoICMPv6:
			return next, off, OK
		case ProtoHopByHop, ProtoRouting, ProtoDestOpts, ProtoAH, ProtoFragment:
		case ProtoESP, ProtoNoNext:
			// Nothing readable follows: ESP is opaque, No Next Header
			// ends the packet.
			return next, off, UnsupportedProto
		case protoMobility, protoHIP, protoShim6, protoExperiment1, protoExperiment2:
			// Extension headers (RFC 7045 list) Parse does not skip.
			return next, off, IPv6ExtHeaders
		default:
			return next, off, UnsupportedProto
		}
		if i == MaxIPv6ExtHeaders {
			return next, off, IPv6ExtHeaders
		}
		if next == ProtoHopByHop && i != 0 {
			// RFC 8200 section 4.3: Hop-by-Hop Options only directly
			// after the fixed header; routers drop it anywhere else.
			return next, off, BadIPHeader
		}
		if off > len(b)-ipv6ExtMinLen {
			return next, off, short
		}
		h := b[off : off+ipv6ExtMinLen]
		switch next {
		case ProtoFragment:
			if !quoted || binary.BigEndian.Uint16(h[ipv6FragOffsetField:ipv6FragOffsetField+2])&ipv6FragOffsetMask != 0 {
				return next, off, IPFragment
			}
			n = ipv6FragHeaderLen
		case ProtoAH:
			n = (int(h[1]) + 2) * 4
		default:
			n = (int(h[1]) + 1) * 8
		}
		if n > len(b)-off {
			return next, off, short
		}
		next = h[0]
		off += n
	}
}
