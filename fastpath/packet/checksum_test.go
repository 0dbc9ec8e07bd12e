package packet_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// refSum is RFC 1071 section 4.1 done the slow, obvious way: 16-bit words
// into a 32-bit accumulator, folded.
func refSum(b []byte, initial uint32) uint16 {
	sum := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint64(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return uint16(sum)
}

func TestChecksumRFC1071Example(t *testing.T) {
	// RFC 1071 section 3: these bytes sum to ddf2.
	b := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := packet.Checksum(b, 0); got != 0xddf2 {
		t.Errorf("Checksum(%x) = %#04x, want 0xddf2", b, got)
	}
}

func TestChecksumReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 2000)
	for i := range 20000 {
		n := rng.IntN(300)
		if i%100 == 0 {
			n = rng.IntN(len(buf) - 8)
		}
		start := rng.IntN(8) // unaligned starts too
		b := buf[start : start+n]
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if i%7 == 0 {
			for j := range b {
				b[j] = 0xff // worst case for carries
			}
		}
		initial := rng.Uint32()
		if i%5 == 0 {
			initial = 0xffffffff
		}
		if got, want := packet.Checksum(b, initial), refSum(b, initial); got != want {
			t.Fatalf("Checksum(%x, %#x) = %#04x, want %#04x", b, initial, got, want)
		}
	}
	if got := packet.Checksum(nil, 0); got != 0 {
		t.Errorf("Checksum(nil, 0) = %#x, want 0", got)
	}
}

func TestPseudoHeaderSum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		var s4, d4 [4]byte
		var s6, d6 [16]byte
		for i := range s6 {
			s6[i], d6[i] = byte(rng.Uint32()), byte(rng.Uint32())
		}
		copy(s4[:], s6[:])
		copy(d4[:], d6[:])
		proto, l4 := uint8(rng.Uint32()), rng.Uint32()
		hdr := append(append(append(s4[:0:0], s4[:]...), d4[:]...), 0, proto, byte(l4>>8), byte(l4))
		if got, want := packet.Checksum(nil, packet.PseudoHeaderSum4(s4, d4, proto, uint16(l4))), refSum(hdr, 0); got != want {
			t.Fatalf("PseudoHeaderSum4 folds to %#04x, want %#04x", got, want)
		}
		hdr = append(append(append(s6[:0:0], s6[:]...), d6[:]...), byte(l4>>24), byte(l4>>16), byte(l4>>8), byte(l4), 0, 0, 0, proto)
		if got, want := packet.Checksum(nil, packet.PseudoHeaderSum6(s6, d6, proto, l4)), refSum(hdr, 0); got != want {
			t.Fatalf("PseudoHeaderSum6 folds to %#04x, want %#04x", got, want)
		}
	}
}

// TestChecksumUpdate changes one 16- or 32-bit field of random data and
// checks the incremental result against recomputing the whole sum.
func TestChecksumUpdate(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	b := make([]byte, 64)
	for i := range 100000 {
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		switch i % 10 {
		case 0:
			clear(b) // sum of zero: the -0 corner RFC 1624 is about
		case 1:
			for j := range b {
				b[j] = 0xff
			}
		}
		sum := ^packet.Checksum(b, 0)
		off := 2 * rng.IntN(len(b)/2-1)
		var got uint16
		if i%2 == 0 {
			from := binary.BigEndian.Uint16(b[off:])
			to := uint16(rng.Uint32())
			if i%20 == 0 {
				to = ^from
			}
			binary.BigEndian.PutUint16(b[off:], to)
			got = packet.ChecksumUpdate16(sum, from, to)
		} else {
			from := binary.BigEndian.Uint32(b[off:])
			to := rng.Uint32()
			binary.BigEndian.PutUint32(b[off:], to)
			got = packet.ChecksumUpdate32(sum, from, to)
		}
		// All zeros is the one input where a full sum gives 0xffff and
		// the update the equivalent 0x0000; no header is ever all zeros.
		want := ^packet.Checksum(b, 0)
		if got != want && !(want == 0xffff && got == 0 && allZero(b)) {
			t.Fatalf("update at %d of %x: %#04x, recomputed %#04x", off, b, got, want)
		}
	}
}

func allZero(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }

// TestNATRewrite rewrites addresses, ports and TTL of random packets in place
// with the incremental helpers, then checks the frame is byte for byte what
// Encode builds for the rewritten spec from scratch.
func TestNATRewrite(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	addr := func(v4 bool) netip.Addr {
		var a [16]byte
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		if v4 {
			return netip.AddrFrom4([4]byte(a[:4]))
		}
		return netip.AddrFrom16(a)
	}
	buf := make([]byte, 2048)
	for i := range 5000 {
		v4 := i%2 == 0
		s := packet.FrameSpec{
			Src: addr(v4), Dst: addr(v4), Proto: packet.ProtoTCP,
			SrcPort: uint16(rng.Uint32()), DstPort: uint16(rng.Uint32()),
			Seq: rng.Uint32(), Ack: rng.Uint32(), TCPFlags: uint8(rng.Uint32()),
			TTL:     uint8(rng.Uint32()) | 2, // so TTL-1 is not 0, which Encode reads as 64
			Payload: make([]byte, rng.IntN(100)),
		}
		if i%4 >= 2 {
			s.Proto = packet.ProtoUDP
		}
		for j := range s.Payload {
			s.Payload[j] = byte(rng.Uint32())
		}
		n, err := packet.Encode(buf, &s)
		must(t, err)
		frame := buf[:n]

		r := s
		r.Src, r.Dst = addr(v4), addr(v4)
		r.SrcPort, r.DstPort = uint16(rng.Uint32()), uint16(rng.Uint32())
		r.TTL = s.TTL - 1
		var l4 []byte
		if v4 {
			ip := packet.IPv4(frame[l3:])
			ip.SetSrc(r.Src.As4())
			ip.SetDst(r.Dst.As4())
			ip.SetTTL(r.TTL)
			l4 = ip.Payload()
		} else {
			ip := packet.IPv6(frame[l3:])
			ip.SetSrc(r.Src.As16())
			ip.SetDst(r.Dst.As16())
			ip.SetHopLimit(r.TTL)
			l4 = frame[l4v6:]
		}
		switch {
		case s.Proto == packet.ProtoTCP && v4:
			tcp := packet.TCP(l4)
			tcp.UpdateChecksumAddr4(s.Src.As4(), r.Src.As4())
			tcp.UpdateChecksumAddr4(s.Dst.As4(), r.Dst.As4())
			tcp.SetSrcPortWithChecksumUpdate(r.SrcPort)
			tcp.SetDstPortWithChecksumUpdate(r.DstPort)
		case s.Proto == packet.ProtoTCP:
			tcp := packet.TCP(l4)
			tcp.UpdateChecksumAddr6(s.Src.As16(), r.Src.As16())
			tcp.UpdateChecksumAddr6(s.Dst.As16(), r.Dst.As16())
			tcp.SetSrcPortWithChecksumUpdate(r.SrcPort)
			tcp.SetDstPortWithChecksumUpdate(r.DstPort)
		case v4:
			udp := packet.UDP(l4)
			udp.UpdateChecksumAddr4(s.Src.As4(), r.Src.As4())
			udp.UpdateChecksumAddr4(s.Dst.As4(), r.Dst.As4())
			udp.SetSrcPortWithChecksumUpdate(r.SrcPort)
			udp.SetDstPortWithChecksumUpdate(r.DstPort)
		default:
			udp := packet.UDP(l4)
			udp.UpdateChecksumAddr6(s.Src.As16(), r.Src.As16())
			udp.UpdateChecksumAddr6(s.Dst.As16(), r.Dst.As16())
			udp.SetSrcPortWithChecksumUpdate(r.SrcPort)
			udp.SetDstPortWithChecksumUpdate(r.DstPort)
		}
		want := encode(t, r)
		if !bytes.Equal(frame, want) {
			t.Fatalf("spec %+v rewritten to %+v:\n got %x\nwant %x", s, r, frame, want)
		}
	}
}

// TestUDPChecksumSpecialValues: a zero UDP checksum (none computed) stays
// zero through NAT, and a rewrite whose checksum comes out zero is sent as
// 0xffff, exactly as Encode does.
func TestUDPChecksumSpecialValues(t *testing.T) {
	s := spec(client4, vip4, packet.ProtoUDP)
	frame := encode(t, s)
	udp := packet.UDP(frame[l4v4:])
	udp.SetChecksum(0)
	udp.SetSrcPortWithChecksumUpdate(1)
	udp.UpdateChecksumAddr4(client4.As4(), vip4.As4())
	if udp.Checksum() != 0 {
		t.Errorf("zero checksum became %#04x", udp.Checksum())
	}

	// Find a source port whose packet checksums to zero, via Encode.
	found := false
	for p := range 1 << 16 {
		s.SrcPort = uint16(p)
		want := encode(t, s)
		if packet.UDP(want[l4v4:]).Checksum() != 0xffff {
			continue
		}
		found = true
		frame := encode(t, spec(client4, vip4, packet.ProtoUDP))
		packet.UDP(frame[l4v4:]).SetSrcPortWithChecksumUpdate(uint16(p))
		if !bytes.Equal(frame, want) {
			t.Errorf("port %d: rewritten %x, encoded %x", p, frame, want)
		}
		break
	}
	if !found {
		t.Fatal("no port gives a zero checksum")
	}
}

// refCRC32c is CRC32c bit by bit (reflected polynomial 0x82f63b78), with no
// table and no CPU instruction, to check hash/crc32 is used correctly.
func refCRC32c(b []byte) uint32 {
	crc := ^uint32(0)
	for _, c := range b {
		crc ^= uint32(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82f63b78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

func TestSCTPChecksum(t *testing.T) {
	// RFC 3720 appendix B.4: 32 zero bytes have CRC32c 0x8a9136aa, sent as
	// aa 36 91 8a. The SCTP checksum field is at 8-11, zero here anyway.
	zero := packet.SCTP(make([]byte, 32))
	if got := zero.ComputeChecksum(); got != 0x8a9136aa {
		t.Errorf("ComputeChecksum(zeros) = %#08x, want 0x8a9136aa", got)
	}
	zero.SetChecksum(zero.ComputeChecksum())
	if !bytes.Equal(zero[8:12], []byte{0xaa, 0x36, 0x91, 0x8a}) || zero.Checksum() != 0x8a9136aa {
		t.Errorf("checksum stored as %x", []byte(zero[8:12]))
	}

	rng := rand.New(rand.NewPCG(9, 10))
	for range 1000 {
		b := make([]byte, 16+rng.IntN(200))
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		s := packet.SCTP(b)
		got := s.ComputeChecksum()
		s.SetChecksum(0)
		if want := refCRC32c(b); got != want {
			t.Fatalf("ComputeChecksum(%x) = %#08x, want %#08x", b, got, want)
		}
	}
}
