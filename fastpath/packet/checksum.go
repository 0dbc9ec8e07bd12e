package packet

import (
	"encoding/binary"
	"math/bits"
)

// Checksum returns the 16-bit one's complement sum (RFC 1071) of b added to
// initial, folded but not complemented. initial is an unfolded partial sum,
// typically from PseudoHeaderSum4 or PseudoHeaderSum6, or the result of an
// earlier call, which lets a header and a payload held in different buffers be
// summed in pieces (every piece but the last must have even length).
//
// The value to store in a checksum field is ^Checksum(...); a received header
// or segment is intact when Checksum over it, checksum field included, is
// 0xffff.
func Checksum(b []byte, initial uint32) uint16 {
	// One's complement addition is associative and commutative and
	// 2^16 ≡ 1 (mod 2^16-1), so summing 64-bit words with end-around carry
	// and folding at the end gives the same result as 16-bit words, four
	// times faster.
	sum := uint64(initial)
	var c uint64
	for len(b) >= 32 {
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(b[0:8]), 0)
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(b[8:16]), c)
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(b[16:24]), c)
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(b[24:32]), c)
		sum += c // cannot overflow: a carry leaves sum at most 2^64-2
		b = b[32:]
	}
	for len(b) >= 8 {
		sum, c = bits.Add64(sum, binary.BigEndian.Uint64(b[0:8]), 0)
		sum += c
		b = b[8:]
	}
	if len(b) >= 4 {
		sum, c = bits.Add64(sum, uint64(binary.BigEndian.Uint32(b[0:4])), 0)
		sum += c
		b = b[4:]
	}
	if len(b) >= 2 {
		sum, c = bits.Add64(sum, uint64(binary.BigEndian.Uint16(b[0:2])), 0)
		sum += c
		b = b[2:]
	}
	if len(b) == 1 {
		// RFC 1071: an odd trailing byte is padded with a zero byte.
		sum, c = bits.Add64(sum, uint64(b[0])<<8, 0)
		sum += c
	}
	return fold64(sum)
}

// fold64 folds a 64-bit one's complement sum to 16 bits. A nonzero input never
// folds to zero, so results agree with RFC 1624 incremental updates.
func fold64(s uint64) uint16 {
	s = s&0xffffffff + s>>32 // at most 2^33-2
	s = s&0xffffffff + s>>32 // at most 2^32-1
	s = s&0xffff + s>>16     // at most 2^17-2
	s = s&0xffff + s>>16     // at most 2^16
	s = s&0xffff + s>>16
	return uint16(s)
}

// PseudoHeaderSum4 returns the partial sum of the IPv4 pseudo-header (RFC 793,
// RFC 768) that TCP and UDP checksums cover; l4Len is the length of the L4
// header plus payload. Pass it as the initial value to Checksum.
func PseudoHeaderSum4(src, dst [4]byte, proto uint8, l4Len uint16) uint32 {
	return uint32(binary.BigEndian.Uint16(src[0:2])) + uint32(binary.BigEndian.Uint16(src[2:4])) +
		uint32(binary.BigEndian.Uint16(dst[0:2])) + uint32(binary.BigEndian.Uint16(dst[2:4])) +
		uint32(proto) + uint32(l4Len)
}

// PseudoHeaderSum6 returns the partial sum of the IPv6 pseudo-header (RFC 8200
// section 8.1) that TCP, UDP and ICMPv6 checksums cover; l4Len is the
// upper-layer packet length. Pass it as the initial value to Checksum.
func PseudoHeaderSum6(src, dst [16]byte, proto uint8, l4Len uint32) uint32 {
	// Eight 16-bit words each from src and dst, at most 16*0xffff, plus the
	// length and next header: far below 2^32.
	var s uint32
	for i := 0; i < 16; i += 2 {
		s += uint32(binary.BigEndian.Uint16(src[i:i+2])) + uint32(binary.BigEndian.Uint16(dst[i:i+2]))
	}
	return s + (l4Len >> 16) + (l4Len & 0xffff) + uint32(proto)
}

// ChecksumUpdate16 returns the new value of the checksum field sum after a
// 16-bit word it covers changes from the value from to the value to, without
// reading the rest of the data. It is RFC 1624 equation 3,
// HC' = ~(~HC + ~m + m'), which unlike equation 2 never yields a -0 that a
// full recomputation could not, so NAT results match Checksum bit for bit.
func ChecksumUpdate16(sum, from, to uint16) uint16 {
	s := uint32(^sum) + uint32(^from) + uint32(to)
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return ^uint16(s)
}

// ChecksumUpdate32 is ChecksumUpdate16 for a 32-bit field such as an IPv4
// address or a word of an IPv6 address; the field must start at an even
// offset of the checksummed data.
func ChecksumUpdate32(sum uint16, from, to uint32) uint16 {
	s := uint32(^sum) +
		uint32(^uint16(from>>16)) + uint32(^uint16(from)) +
		uint32(uint16(to>>16)) + uint32(uint16(to))
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return ^uint16(s)
}

// checksumUpdateAddr applies ChecksumUpdate32 to each word of an address of 4
// or 16 bytes.
func checksumUpdateAddr(sum uint16, from, to []byte) uint16 {
	for i := 0; i+4 <= len(from) && i+4 <= len(to); i += 4 {
		sum = ChecksumUpdate32(sum, binary.BigEndian.Uint32(from[i:i+4]), binary.BigEndian.Uint32(to[i:i+4]))
	}
	return sum
}
