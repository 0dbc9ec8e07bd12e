package packet

import "encoding/binary"

// PartialChecksum reports whether the TCP or UDP checksum of a frame Parse
// accepted (r == OK, f filled in) holds only the pseudo-header sum, which
// is what a sender with checksum offload leaves for the "hardware" to
// complete (CHECKSUM_PARTIAL). A NIC never puts such a frame on the wire,
// but a local veth peer with TX checksum offload on (the default: a
// container, a lab host) hands it over as it is, and AF_XDP in copy mode
// cannot see the kernel's note that the sum is partial: forwarded as it
// is, the server's stack drops it as corrupt. The fix is on the sending
// side: `ethtool -K <veth> tx off`.
//
// The test costs one pseudo-header sum; only a frame whose field matches it
// is summed in full, to tell a partial sum from a complete checksum that
// happens to have the same value (about one frame in 65536). It returns
// false for ICMP errors, SCTP, and a UDP checksum of 0 (none, IPv4). It never
// allocates.
func PartialChecksum(frame []byte, f *Flow) bool {
	if f.ICMPError || (f.Proto != ProtoTCP && f.Proto != ProtoUDP) {
		return false
	}
	l4 := frame[f.L4Off : int(f.L3Off)+int(f.Len)]
	var field, l4Len int
	if f.Proto == ProtoTCP {
		field, l4Len = tcpChecksum, len(l4)
	} else {
		field, l4Len = udpChecksum, int(binary.BigEndian.Uint16(l4[udpLength:udpLength+2]))
		l4 = l4[:l4Len]
	}
	got := binary.BigEndian.Uint16(l4[field : field+2])
	if got == 0 {
		return false
	}
	var ph uint32
	if f.Family == 4 {
		ph = PseudoHeaderSum4([4]byte(f.Src[12:]), [4]byte(f.Dst[12:]), f.Proto, uint16(l4Len))
	} else {
		ph = PseudoHeaderSum6(f.Src, f.Dst, f.Proto, uint32(l4Len))
	}
	if got != Checksum(nil, ph) {
		return false
	}
	return Checksum(l4, ph) != 0xffff
}
