package packet

import "encoding/binary"

// UDP header (RFC 768):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|            Length             |           Checksum            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	udpSrcPort  = 0
	udpDstPort  = 2
	udpLength   = 4
	udpChecksum = 6

	// UDPHeaderLen is the length of the UDP header.
	UDPHeaderLen = 8
)

// UDP is a view of a UDP header and its payload. It must hold at least
// UDPHeaderLen bytes.
type UDP []byte

// SrcPort returns the source port.
func (b UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[udpSrcPort : udpSrcPort+2]) }

// DstPort returns the destination port.
func (b UDP) DstPort() uint16 { return binary.BigEndian.Uint16(b[udpDstPort : udpDstPort+2]) }

// Length returns the length field: header plus payload.
func (b UDP) Length() uint16 { return binary.BigEndian.Uint16(b[udpLength : udpLength+2]) }

// Checksum returns the checksum field; zero means the IPv4 sender computed
// none.
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[udpChecksum : udpChecksum+2]) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(sum uint16) {
	binary.BigEndian.PutUint16(b[udpChecksum:udpChecksum+2], sum)
}

// SetSrcPortWithChecksumUpdate sets the source port and updates the checksum
// incrementally (RFC 1624).
func (b UDP) SetSrcPortWithChecksumUpdate(port uint16) { b.setPort(udpSrcPort, port) }

// SetDstPortWithChecksumUpdate sets the destination port and updates the
// checksum incrementally.
func (b UDP) SetDstPortWithChecksumUpdate(port uint16) { b.setPort(udpDstPort, port) }

func (b UDP) setPort(off int, port uint16) {
	f := b[off : off+2]
	b.updateChecksum(ChecksumUpdate16(b.Checksum(), binary.BigEndian.Uint16(f), port))
	binary.BigEndian.PutUint16(f, port)
}

// UpdateChecksumAddr4 updates the checksum after an IPv4 address in the
// pseudo-header changed from the value from to the value to (see IPv4.SetSrc).
func (b UDP) UpdateChecksumAddr4(from, to [4]byte) {
	b.updateChecksum(checksumUpdateAddr(b.Checksum(), from[:], to[:]))
}

// UpdateChecksumAddr6 updates the checksum after an IPv6 address in the
// pseudo-header changed from the value from to the value to (see IPv6.SetSrc).
func (b UDP) UpdateChecksumAddr6(from, to [16]byte) {
	b.updateChecksum(checksumUpdateAddr(b.Checksum(), from[:], to[:]))
}

// updateChecksum stores an incrementally updated checksum, keeping the two
// encodings UDP gives special meaning: a zero field (IPv4 sender computed no
// checksum) stays zero, and a computed zero goes on the wire as 0xffff
// (RFC 768), since zero would claim there is no checksum.
func (b UDP) updateChecksum(sum uint16) {
	switch {
	case b.Checksum() == 0:
	case sum == 0:
		b.SetChecksum(0xffff)
	default:
		b.SetChecksum(sum)
	}
}
