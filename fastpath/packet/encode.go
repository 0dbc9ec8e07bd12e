package packet

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// FrameSpec describes a frame for Encode: one packet, optionally VLAN
// tagged, with no IP options or IPv6 extension headers. Fields that do not
// apply to Proto are ignored.
type FrameSpec struct {
	// SrcMAC and DstMAC are the Ethernet addresses.
	SrcMAC, DstMAC [6]byte
	// VLAN is the 802.1Q VLAN ID (at most 4095); 0 means untagged.
	VLAN uint16
	// Src and Dst are both IPv4 or both IPv6; an IPv4-mapped IPv6 address
	// is IPv6. Zones are ignored.
	Src, Dst netip.Addr
	// Proto is ProtoTCP, ProtoUDP or ProtoSCTP, or ProtoICMP with IPv4
	// and ProtoICMPv6 with IPv6.
	Proto uint8
	// SrcPort and DstPort are the TCP, UDP or SCTP ports.
	SrcPort, DstPort uint16
	// TCPFlags, Seq and Ack go into the TCP header, which has no options
	// and a window of 65535.
	TCPFlags uint8
	Seq, Ack uint32
	// SCTPTag is the verification tag; the packet carries one chunk of type
	// SCTPChunk, flags 0, whose value is Payload (so an INIT needs its
	// fixed fields there), padded to 4 bytes.
	SCTPTag   uint32
	SCTPChunk uint8
	// ICMPType and ICMPCode head an ICMP message whose second word is
	// ICMPRest (the MTU of "fragmentation needed" or "packet too big", or
	// identifier<<16|sequence of an echo) and whose body is Quote followed
	// by Payload. For errors, Quote is the offending IP packet, from its
	// IP header on, usually cut after 8 bytes of L4 header. A Quote with
	// any other Proto is an ErrInvalidSpec.
	ICMPType, ICMPCode uint8
	ICMPRest           uint32
	Quote              []byte
	// Payload follows the L4 header.
	Payload []byte
	// TTL is the IPv4 TTL or IPv6 hop limit; 0 means 64.
	TTL uint8
}

// Errors Encode returns.
var (
	// ErrShortBuffer: dst cannot hold the frame.
	ErrShortBuffer = errors.New("packet: buffer too small for frame")
	// ErrTooLong: the IP packet would exceed 65535 bytes, the IPv4 limit,
	// which Encode applies to IPv6 too because Flow.Len is 16 bits.
	ErrTooLong = errors.New("packet: IP packet longer than 65535 bytes")
	// ErrInvalidSpec: the spec is inconsistent; the error wrapping it says
	// how.
	ErrInvalidSpec = errors.New("packet: invalid frame spec")

	// Typed as error so that returning them converts nothing to an
	// interface, which would allocate.
	errFamily error = specError("src and dst must be valid and both IPv4 or both IPv6")
	errProto  error = specError("proto must be TCP, UDP, SCTP, or the ICMP of the address family")
	errVLAN   error = specError("VLAN ID above 4095")
	errQuote  error = specError("quote without ICMP")
)

// specError says what is inconsistent about a spec. Constant values rather
// than fmt.Errorf keep even failing Encode calls allocation free, for a
// generator that probes specs in a loop.
type specError string

func (e specError) Error() string { return ErrInvalidSpec.Error() + ": " + string(e) }

func (e specError) Unwrap() error { return ErrInvalidSpec }

const (
	defaultTTL    = 64
	encodeTCPWin  = 0xffff
	ipv4VIHLNoOpt = 4<<4 | IPv4MinHeaderLen/4 // version 4, IHL 5
	ipv6Version   = 6 << 28
	tcpDOffNoOpt  = (TCPMinHeaderLen / 4) << 4
)

// Encode writes the frame s describes to the start of dst and returns its
// length. Every byte of the frame is written, so dst may be a recycled
// buffer, and with the IPv4 header checksum, TCP, UDP and ICMPv6 checksums
// over the pseudo-header, the ICMPv4 checksum and the SCTP CRC32c all
// correct. It does not pad short frames to the 60-byte Ethernet minimum, as
// NICs do that on transmit. It never allocates, not even to fail.
func Encode(dst []byte, s *FrameSpec) (int, error) {
	v4 := s.Src.Is4()
	if !s.Src.IsValid() || !s.Dst.IsValid() || v4 != s.Dst.Is4() {
		return 0, errFamily
	}
	var l4Hdr int
	switch s.Proto {
	case ProtoTCP:
		l4Hdr = TCPMinHeaderLen
	case ProtoUDP:
		l4Hdr = UDPHeaderLen
	case ProtoSCTP:
		l4Hdr = SCTPHeaderLen + SCTPChunkHeaderLen
	case ProtoICMP, ProtoICMPv6:
		if (s.Proto == ProtoICMP) != v4 {
			return 0, errProto
		}
		l4Hdr = ICMPHeaderLen
	default:
		return 0, errProto
	}
	isICMP := s.Proto == ProtoICMP || s.Proto == ProtoICMPv6
	if len(s.Quote) != 0 && !isICMP {
		return 0, errQuote
	}
	if s.VLAN > vlanIDMask {
		return 0, errVLAN
	}

	l3Off := EthernetHeaderLen
	if s.VLAN != 0 {
		l3Off += VLANTagLen
	}
	l3Len := IPv6HeaderLen
	if v4 {
		l3Len = IPv4MinHeaderLen
	}
	body := len(s.Quote) + len(s.Payload)
	pad := 0
	if s.Proto == ProtoSCTP {
		pad = -body & 3
	}
	// Compare before adding up, so no sum can overflow int on 32-bit.
	if body > maxPacketLen || l3Len+l4Hdr+body+pad > maxPacketLen {
		return 0, ErrTooLong
	}
	l4Len := l4Hdr + body + pad
	ipLen := l3Len + l4Len
	if len(dst) < l3Off+ipLen {
		return 0, ErrShortBuffer
	}
	b := dst[:l3Off+ipLen]

	eth := Ethernet(b)
	eth.SetDst(s.DstMAC)
	eth.SetSrc(s.SrcMAC)
	et := uint16(EtherTypeIPv6)
	if v4 {
		et = EtherTypeIPv4
	}
	if s.VLAN != 0 {
		binary.BigEndian.PutUint16(b[ethType:], EtherTypeVLAN)
		binary.BigEndian.PutUint16(b[ethType+2:], s.VLAN)
	}
	binary.BigEndian.PutUint16(b[l3Off-2:], et)

	ttl := s.TTL
	if ttl == 0 {
		ttl = defaultTTL
	}
	ip := b[l3Off:]
	l4 := ip[l3Len:]
	var pseudo uint32
	if v4 {
		src, dst := s.Src.As4(), s.Dst.As4()
		h := ip[:IPv4MinHeaderLen]
		h[ipv4VersionIHL] = ipv4VIHLNoOpt
		h[ipv4TOS] = 0
		binary.BigEndian.PutUint16(h[ipv4TotalLen:], uint16(ipLen))
		binary.BigEndian.PutUint16(h[ipv4ID:], 0)
		// DF, as TCP stacks doing path MTU discovery send; an ID of 0 is
		// then allowed (RFC 6864).
		binary.BigEndian.PutUint16(h[ipv4FlagsFrag:], ipv4FlagDF)
		h[ipv4TTL] = ttl
		h[ipv4Protocol] = s.Proto
		copy(h[ipv4Src:], src[:])
		copy(h[ipv4Dst:], dst[:])
		binary.BigEndian.PutUint16(h[ipv4Checksum:], 0)
		binary.BigEndian.PutUint16(h[ipv4Checksum:], ^Checksum(h, 0))
		pseudo = PseudoHeaderSum4(src, dst, s.Proto, uint16(l4Len))
	} else {
		src, dst := s.Src.As16(), s.Dst.As16()
		h := ip[:IPv6HeaderLen]
		binary.BigEndian.PutUint32(h[ipv6VersionTC:], ipv6Version)
		binary.BigEndian.PutUint16(h[ipv6PayloadLen:], uint16(l4Len))
		h[ipv6NextHeader] = s.Proto
		h[ipv6HopLimit] = ttl
		copy(h[ipv6Src:], src[:])
		copy(h[ipv6Dst:], dst[:])
		pseudo = PseudoHeaderSum6(src, dst, s.Proto, uint32(l4Len))
	}

	data := l4[l4Hdr:]
	copy(data[copy(data, s.Quote):], s.Payload)
	clear(data[body:])
	switch s.Proto {
	case ProtoTCP:
		h := l4[:TCPMinHeaderLen]
		binary.BigEndian.PutUint16(h[tcpSrcPort:], s.SrcPort)
		binary.BigEndian.PutUint16(h[tcpDstPort:], s.DstPort)
		binary.BigEndian.PutUint32(h[tcpSeq:], s.Seq)
		binary.BigEndian.PutUint32(h[tcpAck:], s.Ack)
		h[tcpDataOffset] = tcpDOffNoOpt
		h[tcpFlags] = s.TCPFlags
		binary.BigEndian.PutUint16(h[tcpWindow:], encodeTCPWin)
		binary.BigEndian.PutUint16(h[tcpChecksum:], 0)
		binary.BigEndian.PutUint16(h[tcpUrgent:], 0)
		TCP(l4).SetChecksum(^Checksum(l4, pseudo))
	case ProtoUDP:
		h := l4[:UDPHeaderLen]
		binary.BigEndian.PutUint16(h[udpSrcPort:], s.SrcPort)
		binary.BigEndian.PutUint16(h[udpDstPort:], s.DstPort)
		binary.BigEndian.PutUint16(h[udpLength:], uint16(l4Len))
		binary.BigEndian.PutUint16(h[udpChecksum:], 0)
		sum := ^Checksum(l4, pseudo)
		if sum == 0 {
			sum = 0xffff // RFC 768: zero would mean "no checksum"
		}
		UDP(l4).SetChecksum(sum)
	case ProtoSCTP:
		h := l4[:SCTPHeaderLen+SCTPChunkHeaderLen]
		binary.BigEndian.PutUint16(h[sctpSrcPort:], s.SrcPort)
		binary.BigEndian.PutUint16(h[sctpDstPort:], s.DstPort)
		binary.BigEndian.PutUint32(h[sctpVTag:], s.SCTPTag)
		h[sctpChunkType] = s.SCTPChunk
		h[sctpChunkFlags] = 0
		binary.BigEndian.PutUint16(h[sctpChunkLen:], uint16(SCTPChunkHeaderLen+body))
		SCTP(l4).SetChecksum(SCTP(l4).ComputeChecksum())
	default: // ICMP, ICMPv6
		h := l4[:ICMPHeaderLen]
		h[icmpType] = s.ICMPType
		h[icmpCode] = s.ICMPCode
		binary.BigEndian.PutUint16(h[icmpChecksum:], 0)
		binary.BigEndian.PutUint32(h[icmpRest:], s.ICMPRest)
		if v4 {
			pseudo = 0 // the ICMPv4 checksum covers no pseudo-header
		}
		ICMPv4(l4).SetChecksum(^Checksum(l4, pseudo)) // same field in ICMPv6
	}
	return len(b), nil
}
