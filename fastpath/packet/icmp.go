package packet

import "encoding/binary"

// ICMPv4 (RFC 792) and ICMPv6 (RFC 4443) messages share their first 8 bytes:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Rest of header: unused, MTU, or identifier and sequence   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Body. Errors: the offending packet from its IP header on,    |
//	+  as much as fits; RFC 792 asks for at least 8 bytes of L4     +
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// ICMPv4 puts the next-hop MTU of "fragmentation needed" in the low 16 bits of
// the rest of header; ICMPv6 "packet too big" uses all 32.
const (
	icmpType     = 0
	icmpCode     = 1
	icmpChecksum = 2
	icmpRest     = 4

	// ICMPHeaderLen is the length of the ICMPv4 and ICMPv6 header, up to the
	// message body (the quoted packet, for errors).
	ICMPHeaderLen = 8
	// ICMPQuoteL4Len is how much of the quoted packet's L4 header an ICMPv4
	// error is required to carry (RFC 792), and what Parse needs: the ports
	// and, for SCTP, the verification tag.
	ICMPQuoteL4Len = 8
)

// ICMPv4 types and codes the forwarder cares about.
const (
	ICMPv4EchoReply       = 0
	ICMPv4DestUnreachable = 3
	ICMPv4EchoRequest     = 8
	ICMPv4TimeExceeded    = 11
	ICMPv4ParamProblem    = 12

	// ICMPv4CodeFragNeeded is the DestUnreachable code for "fragmentation
	// needed and DF set", the path MTU discovery signal (RFC 1191).
	ICMPv4CodeFragNeeded = 4
)

// ICMPv6 types the forwarder cares about.
const (
	ICMPv6DestUnreachable = 1
	ICMPv6PacketTooBig    = 2
	ICMPv6TimeExceeded    = 3
	ICMPv6ParamProblem    = 4
	ICMPv6EchoRequest     = 128
	ICMPv6EchoReply       = 129
)

// ICMPv4 is a view of an ICMPv4 message. It must hold at least ICMPHeaderLen
// bytes.
type ICMPv4 []byte

// Type returns the message type.
func (b ICMPv4) Type() uint8 { return b[icmpType] }

// Code returns the message code.
func (b ICMPv4) Code() uint8 { return b[icmpCode] }

// Checksum returns the checksum field, which covers the whole message and no
// pseudo-header.
func (b ICMPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpChecksum : icmpChecksum+2]) }

// SetChecksum sets the checksum field.
func (b ICMPv4) SetChecksum(sum uint16) {
	binary.BigEndian.PutUint16(b[icmpChecksum:icmpChecksum+2], sum)
}

// Rest returns the type-specific second word of the header.
func (b ICMPv4) Rest() uint32 { return binary.BigEndian.Uint32(b[icmpRest : icmpRest+4]) }

// MTU returns the next-hop MTU of a "fragmentation needed" message.
func (b ICMPv4) MTU() uint16 { return binary.BigEndian.Uint16(b[icmpRest+2 : icmpRest+4]) }

// Body returns what follows the header: the quoted packet of an error.
func (b ICMPv4) Body() []byte { return b[ICMPHeaderLen:] }

// IsError reports whether the type is one of the errors Parse follows into
// the quoted packet: destination unreachable, time exceeded, parameter
// problem.
func (b ICMPv4) IsError() bool { return isICMPv4Error(b[icmpType]) }

func isICMPv4Error(t uint8) bool {
	return t == ICMPv4DestUnreachable || t == ICMPv4TimeExceeded || t == ICMPv4ParamProblem
}

// ICMPv6 is a view of an ICMPv6 message. It must hold at least ICMPHeaderLen
// bytes.
type ICMPv6 []byte

// Type returns the message type.
func (b ICMPv6) Type() uint8 { return b[icmpType] }

// Code returns the message code.
func (b ICMPv6) Code() uint8 { return b[icmpCode] }

// Checksum returns the checksum field, which covers the IPv6 pseudo-header
// and the whole message.
func (b ICMPv6) Checksum() uint16 { return binary.BigEndian.Uint16(b[icmpChecksum : icmpChecksum+2]) }

// SetChecksum sets the checksum field.
func (b ICMPv6) SetChecksum(sum uint16) {
	binary.BigEndian.PutUint16(b[icmpChecksum:icmpChecksum+2], sum)
}

// Rest returns the type-specific second word of the header.
func (b ICMPv6) Rest() uint32 { return binary.BigEndian.Uint32(b[icmpRest : icmpRest+4]) }

// MTU returns the MTU of a "packet too big" message.
func (b ICMPv6) MTU() uint32 { return binary.BigEndian.Uint32(b[icmpRest : icmpRest+4]) }

// Body returns what follows the header: the quoted packet of an error.
func (b ICMPv6) Body() []byte { return b[ICMPHeaderLen:] }

// IsError reports whether the type is one of the errors Parse follows into
// the quoted packet: destination unreachable, packet too big, time exceeded,
// parameter problem.
func (b ICMPv6) IsError() bool { return isICMPv6Error(b[icmpType]) }

func isICMPv6Error(t uint8) bool {
	return t-ICMPv6DestUnreachable <= ICMPv6ParamProblem-ICMPv6DestUnreachable
}
