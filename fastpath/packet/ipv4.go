package packet

import "encoding/binary"

// IPv4 header (RFC 791 section 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Options                    |    Padding    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipv4VersionIHL = 0
	ipv4TOS        = 1
	ipv4TotalLen   = 2
	ipv4ID         = 4
	ipv4FlagsFrag  = 6
	ipv4TTL        = 8
	ipv4Protocol   = 9
	ipv4Checksum   = 10
	ipv4Src        = 12
	ipv4Dst        = 16

	// IPv4MinHeaderLen is the length of an IPv4 header without options.
	IPv4MinHeaderLen = 20
	// IPv4MaxHeaderLen is the longest header IHL can describe.
	IPv4MaxHeaderLen = 60

	ipv4FlagDF       = 0x4000
	ipv4FlagMF       = 0x2000
	ipv4FragOffMask  = 0x1fff
	ipv4FragmentMask = ipv4FlagMF | ipv4FragOffMask
	maxPacketLen     = 0xffff // largest IP packet Flow.Len and IPv4 TotalLen hold
)

// IPv4 is a view of an IPv4 header and what follows it. It must hold at least
// IPv4MinHeaderLen bytes; Payload and IsChecksumValid also need the bytes
// HeaderLen and TotalLen claim, as Parse verifies.
type IPv4 []byte

// Version returns the IP version field, 4 for a well-formed header.
func (b IPv4) Version() uint8 { return b[ipv4VersionIHL] >> 4 }

// HeaderLen returns the header length in bytes, options included.
func (b IPv4) HeaderLen() int { return int(b[ipv4VersionIHL]&0xf) * 4 }

// TOS returns the type of service (DSCP and ECN) byte.
func (b IPv4) TOS() uint8 { return b[ipv4TOS] }

// TotalLen returns the length of the datagram, header included.
func (b IPv4) TotalLen() uint16 { return binary.BigEndian.Uint16(b[ipv4TotalLen : ipv4TotalLen+2]) }

// ID returns the identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ipv4ID : ipv4ID+2]) }

// DontFragment reports whether the DF flag is set.
func (b IPv4) DontFragment() bool { return b.flagsFrag()&ipv4FlagDF != 0 }

// MoreFragments reports whether the MF flag is set.
func (b IPv4) MoreFragments() bool { return b.flagsFrag()&ipv4FlagMF != 0 }

// FragmentOffset returns the offset of this fragment in bytes.
func (b IPv4) FragmentOffset() uint16 { return (b.flagsFrag() & ipv4FragOffMask) * 8 }

// IsFragment reports whether the datagram is a fragment, first or later: MF
// set or a nonzero offset.
func (b IPv4) IsFragment() bool { return b.flagsFrag()&ipv4FragmentMask != 0 }

func (b IPv4) flagsFrag() uint16 {
	return binary.BigEndian.Uint16(b[ipv4FlagsFrag : ipv4FlagsFrag+2])
}

// TTL returns the time to live.
func (b IPv4) TTL() uint8 { return b[ipv4TTL] }

// Protocol returns the protocol number of the payload, e.g. ProtoTCP.
func (b IPv4) Protocol() uint8 { return b[ipv4Protocol] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ipv4Checksum : ipv4Checksum+2]) }

// Src returns the source address.
func (b IPv4) Src() [4]byte { return [4]byte(b[ipv4Src : ipv4Src+4]) }

// Dst returns the destination address.
func (b IPv4) Dst() [4]byte { return [4]byte(b[ipv4Dst : ipv4Dst+4]) }

// Payload returns the bytes after the header up to TotalLen, excluding any
// link-layer padding.
func (b IPv4) Payload() []byte { return b[b.HeaderLen():b.TotalLen()] }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(sum uint16) {
	binary.BigEndian.PutUint16(b[ipv4Checksum:ipv4Checksum+2], sum)
}

// ComputeChecksum returns the value the header checksum field should hold for
// the header as it is now, whatever the field holds.
func (b IPv4) ComputeChecksum() uint16 {
	hl := b.HeaderLen()
	// Sum around the checksum field rather than zeroing it, so a view over
	// a frame that must stay intact can be checked too.
	return ^Checksum(b[ipv4Checksum+2:hl], uint32(Checksum(b[:ipv4Checksum], 0)))
}

// IsChecksumValid reports whether the header checksum is correct. Parse does
// not check it: hosts behind the balancer verify it anyway and NICs usually
// drop bad ones before the fast path sees them.
func (b IPv4) IsChecksumValid() bool { return Checksum(b[:b.HeaderLen()], 0) == 0xffff }

// SetTTL sets the time to live, updating the header checksum incrementally.
func (b IPv4) SetTTL(ttl uint8) {
	// TTL is the high byte of the 16-bit word it shares with Protocol.
	old := binary.BigEndian.Uint16(b[ipv4TTL : ipv4TTL+2])
	b[ipv4TTL] = ttl
	b.SetChecksum(ChecksumUpdate16(b.Checksum(), old, binary.BigEndian.Uint16(b[ipv4TTL:ipv4TTL+2])))
}

// SetSrc sets the source address, updating the header checksum incrementally.
// TCP and UDP checksums cover the address too, through the pseudo-header:
// update them with UpdateChecksumAddr4. SCTP's CRC32c covers no addresses.
func (b IPv4) SetSrc(a [4]byte) { b.setAddr(ipv4Src, a) }

// SetDst sets the destination address, updating the header checksum
// incrementally; see SetSrc for the L4 checksum.
func (b IPv4) SetDst(a [4]byte) { b.setAddr(ipv4Dst, a) }

func (b IPv4) setAddr(off int, a [4]byte) {
	f := b[off : off+4]
	sum := ChecksumUpdate32(b.Checksum(), binary.BigEndian.Uint32(f), binary.BigEndian.Uint32(a[:]))
	copy(f, a[:])
	b.SetChecksum(sum)
}
