package packet

import "encoding/binary"

// TCP header (RFC 9293 section 3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|          Source Port          |       Destination Port        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                        Sequence Number                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Acknowledgment Number                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Data |       |C|E|U|A|P|R|S|F|                               |
//	| Offset| Rsrvd |W|C|R|C|S|S|Y|I|            Window             |
//	|       |       |R|E|G|K|H|T|N|N|                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Checksum            |         Urgent Pointer        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                           [Options]                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	tcpSrcPort    = 0
	tcpDstPort    = 2
	tcpSeq        = 4
	tcpAck        = 8
	tcpDataOffset = 12
	tcpFlags      = 13
	tcpWindow     = 14
	tcpChecksum   = 16
	tcpUrgent     = 18

	// TCPMinHeaderLen is the length of a TCP header without options.
	TCPMinHeaderLen = 20
)

// TCP flag bits, as in byte 13 of the header and Flow.TCPFlags.
const (
	TCPFlagFIN = 1 << iota
	TCPFlagSYN
	TCPFlagRST
	TCPFlagPSH
	TCPFlagACK
	TCPFlagURG
	TCPFlagECE
	TCPFlagCWR
)

// TCP is a view of a TCP header and its payload. It must hold at least
// TCPMinHeaderLen bytes.
type TCP []byte

// SrcPort returns the source port.
func (b TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[tcpSrcPort : tcpSrcPort+2]) }

// DstPort returns the destination port.
func (b TCP) DstPort() uint16 { return binary.BigEndian.Uint16(b[tcpDstPort : tcpDstPort+2]) }

// Seq returns the sequence number.
func (b TCP) Seq() uint32 { return binary.BigEndian.Uint32(b[tcpSeq : tcpSeq+4]) }

// Ack returns the acknowledgment number.
func (b TCP) Ack() uint32 { return binary.BigEndian.Uint32(b[tcpAck : tcpAck+4]) }

// DataOffset returns the header length in bytes, options included.
func (b TCP) DataOffset() int { return int(b[tcpDataOffset]>>4) * 4 }

// Flags returns the flag bits (TCPFlagFIN ... TCPFlagCWR).
func (b TCP) Flags() uint8 { return b[tcpFlags] }

// Window returns the window field, unscaled.
func (b TCP) Window() uint16 { return binary.BigEndian.Uint16(b[tcpWindow : tcpWindow+2]) }

// Checksum returns the checksum field.
func (b TCP) Checksum() uint16 { return binary.BigEndian.Uint16(b[tcpChecksum : tcpChecksum+2]) }

// UrgentPointer returns the urgent pointer.
func (b TCP) UrgentPointer() uint16 { return binary.BigEndian.Uint16(b[tcpUrgent : tcpUrgent+2]) }

// SetChecksum sets the checksum field.
func (b TCP) SetChecksum(sum uint16) {
	binary.BigEndian.PutUint16(b[tcpChecksum:tcpChecksum+2], sum)
}

// SetSrcPortWithChecksumUpdate sets the source port and updates the checksum
// incrementally (RFC 1624), so NAT need not read the payload.
func (b TCP) SetSrcPortWithChecksumUpdate(port uint16) { b.setPort(tcpSrcPort, port) }

// SetDstPortWithChecksumUpdate sets the destination port and updates the
// checksum incrementally.
func (b TCP) SetDstPortWithChecksumUpdate(port uint16) { b.setPort(tcpDstPort, port) }

func (b TCP) setPort(off int, port uint16) {
	f := b[off : off+2]
	b.SetChecksum(ChecksumUpdate16(b.Checksum(), binary.BigEndian.Uint16(f), port))
	binary.BigEndian.PutUint16(f, port)
}

// UpdateChecksumAddr4 updates the checksum after an IPv4 address in the
// pseudo-header changed from the value from to the value to (see IPv4.SetSrc).
func (b TCP) UpdateChecksumAddr4(from, to [4]byte) {
	b.SetChecksum(checksumUpdateAddr(b.Checksum(), from[:], to[:]))
}

// UpdateChecksumAddr6 updates the checksum after an IPv6 address in the
// pseudo-header changed from the value from to the value to (see IPv6.SetSrc).
func (b TCP) UpdateChecksumAddr6(from, to [16]byte) {
	b.SetChecksum(checksumUpdateAddr(b.Checksum(), from[:], to[:]))
}
