package packet_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz/FuzzParse from Encode output")

// FuzzParse feeds Parse arbitrary frames. Beyond not panicking, it checks
// that Parse is deterministic and keeps no state, that trailing padding never
// matters, and that every accepted Flow agrees with the frame's bytes as read
// here, independently of Parse's code.
func FuzzParse(f *testing.F) {
	for _, tc := range parseCases(f) {
		f.Add(tc.frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var fl packet.Flow
		r := packet.Parse(frame, &fl)
		if r >= packet.NumReasons || r.String() == "unknown" {
			t.Fatalf("Parse() = %d, not a Reason", r)
		}
		dirty := packet.Flow{L3Off: 1, L4Off: 2, VLAN: 3, Family: 5, Proto: 7, TCPFlags: 0xff, SCTPChunk: 9, ICMPError: true,
			Src: [16]byte{1}, Dst: [16]byte{2}, SrcPort: 10, DstPort: 11, SCTPTag: 12, Len: 13}
		if r2 := packet.Parse(frame, &dirty); r2 != r || dirty != fl {
			t.Fatalf("Parse() into a used Flow = %v %+v, into a fresh one %v %+v", r2, dirty, r, fl)
		}
		if r != packet.OK {
			return
		}
		checkAccepted(t, frame, &fl)

		end := int(fl.L3Off) + int(fl.Len)
		var cut packet.Flow
		if r := packet.Parse(frame[:end], &cut); r != packet.OK || cut != fl {
			t.Fatalf("Parse(frame[:%d]) without padding = %v %+v, want OK %+v", end, r, cut, fl)
		}
		padded := append(clone(frame[:end]), 0xde, 0xad, 0xbe, 0xef, 0x86, 0xdd)
		if r := packet.Parse(padded, &cut); r != packet.OK || cut != fl {
			t.Fatalf("Parse(frame with other padding) = %v %+v, want OK %+v", r, cut, fl)
		}
	})
}

// checkAccepted re-reads an accepted frame byte by byte, with none of
// Parse's code, and fails if the Flow says anything else.
func checkAccepted(t *testing.T, frame []byte, f *packet.Flow) {
	t.Helper()
	u16 := func(off int) uint16 { return binary.BigEndian.Uint16(frame[off:]) }
	l3, l4, end := int(f.L3Off), int(f.L4Off), int(f.L3Off)+int(f.Len)
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("frame %x, flow %+v: %s", frame, *f, fmt.Sprintf(format, args...))
	}

	// Link layer.
	switch l3 {
	case 14:
		if f.VLAN != 0 {
			fail("VLAN without a tag")
		}
	case 18, 22:
		for off := 12; off < l3-2; off += 4 {
			if tpid := u16(off); tpid != 0x8100 && tpid != 0x88a8 {
				fail("TPID %#x at %d", tpid, off)
			}
		}
		if f.VLAN != u16(14)&0xfff {
			fail("outer VLAN is %d", u16(14)&0xfff)
		}
	default:
		fail("L3Off %d", l3)
	}
	if !(l3 < l4 && l4 < end && end <= len(frame)) {
		fail("offsets L3 %d, L4 %d, end %d, frame %d", l3, l4, end, len(frame))
	}

	// Network layer.
	mapped := func(b []byte) [16]byte {
		return netip.AddrFrom4([4]byte(b)).As16()
	}
	var src, dst [16]byte
	var proto uint8
	switch f.Family {
	case 4:
		ip := frame[l3:]
		if u16(l3-2) != 0x0800 || ip[0]>>4 != 4 || int(u16(l3+2)) != int(f.Len) || l4 != l3+int(ip[0]&0xf)*4 {
			fail("IPv4 header %x", ip[:20])
		}
		if u16(l3+6)&0x3fff != 0 {
			fail("IPv4 fragment accepted")
		}
		src, dst, proto = mapped(ip[12:16]), mapped(ip[16:20]), ip[9]
	case 6:
		ip := frame[l3:]
		if u16(l3-2) != 0x86dd || ip[0]>>4 != 6 || int(u16(l3+4))+40 != int(f.Len) || l4 < l3+40 {
			fail("IPv6 header %x", ip[:40])
		}
		src, dst, proto = [16]byte(ip[8:24]), [16]byte(ip[24:40]), ip[6]
		if l4 == l3+40 {
			break
		}
		// Extension headers: the last one's Next Header names the L4.
		for off := l3 + 40; off < l4; {
			n := (int(frame[off+1]) + 1) * 8
			if proto == packet.ProtoAH {
				n = (int(frame[off+1]) + 2) * 4
			}
			if proto != packet.ProtoHopByHop && proto != packet.ProtoRouting && proto != packet.ProtoDestOpts && proto != packet.ProtoAH {
				fail("skipped extension header %d", proto)
			}
			proto = frame[off]
			off += n
			if off > l4 {
				fail("extension headers overrun L4Off")
			}
		}
	default:
		fail("Family %d", f.Family)
	}

	if !f.ICMPError {
		if src != f.Src || dst != f.Dst || proto != f.Proto {
			fail("addresses or protocol differ from header: %x %x %d", src, dst, proto)
		}
		l4b := frame[l4:end]
		if f.SrcPort != u16(l4) || f.DstPort != u16(l4+2) {
			fail("ports %d %d at L4Off", u16(l4), u16(l4+2))
		}
		var wantFlags, wantChunk uint8
		var wantTag uint32
		switch f.Proto {
		case packet.ProtoTCP:
			if doff := int(l4b[12]>>4) * 4; doff < 20 || doff > len(l4b) {
				fail("TCP data offset %d of %d", doff, len(l4b))
			}
			wantFlags = l4b[13]
		case packet.ProtoUDP:
			if ul := int(u16(l4 + 4)); ul < 8 || ul > len(l4b) {
				fail("UDP length %d of %d", ul, len(l4b))
			}
		case packet.ProtoSCTP:
			if cl := int(u16(l4 + 14)); cl < 4 || cl > len(l4b)-12 {
				fail("SCTP chunk length %d of %d", cl, len(l4b))
			}
			wantTag, wantChunk = binary.BigEndian.Uint32(l4b[4:]), l4b[12]
		default:
			fail("Proto %d", f.Proto)
		}
		if f.TCPFlags != wantFlags || f.SCTPTag != wantTag || f.SCTPChunk != wantChunk {
			fail("flags %#x, tag %#x, chunk %d", wantFlags, wantTag, wantChunk)
		}
		return
	}

	// ICMP error: the quote, read backwards into the client's flow.
	typ := frame[l4]
	if f.Family == 4 && (proto != packet.ProtoICMP || typ != 3 && typ != 11 && typ != 12) ||
		f.Family == 6 && (proto != packet.ProtoICMPv6 || typ < 1 || typ > 4) {
		fail("ICMP error of protocol %d type %d", proto, typ)
	}
	if f.TCPFlags != 0 || f.SCTPChunk != 0 || f.Proto != packet.ProtoSCTP && f.SCTPTag != 0 {
		fail("TCP or SCTP detail set for an ICMP error")
	}
	q := frame[l4+8 : end]
	qs, qd, qp, ql4 := [16]byte{}, [16]byte{}, uint8(0), -1
	if f.Family == 4 {
		if q[0]>>4 != 4 || binary.BigEndian.Uint16(q[6:])&0x1fff != 0 {
			fail("quoted IPv4 header %x", q[:20])
		}
		qs, qd, qp, ql4 = mapped(q[12:16]), mapped(q[16:20]), q[9], int(q[0]&0xf)*4
	} else {
		if q[0]>>4 != 6 {
			fail("quoted IPv6 header %x", q[:40])
		}
		qs, qd, qp = [16]byte(q[8:24]), [16]byte(q[24:40]), q[6]
		if qp == f.Proto {
			ql4 = 40 // no extension headers: the ports are right here
		}
	}
	if qs != f.Dst || qd != f.Src {
		fail("quoted addresses %x -> %x not reversed", qs, qd)
	}
	if ql4 >= 0 {
		if qp != f.Proto || len(q) < ql4+8 {
			fail("quoted protocol %d, quote %d bytes", qp, len(q))
		}
		qsp, qdp := binary.BigEndian.Uint16(q[ql4:]), binary.BigEndian.Uint16(q[ql4+2:])
		if qsp != f.DstPort || qdp != f.SrcPort {
			fail("quoted ports %d -> %d not reversed", qsp, qdp)
		}
		if f.Proto == packet.ProtoSCTP && binary.BigEndian.Uint32(q[ql4+4:]) != f.SCTPTag {
			fail("quoted SCTP tag %#x", binary.BigEndian.Uint32(q[ql4+4:]))
		}
	}
}

// FuzzEncodeParse encodes whatever spec the fuzzer makes up and parses the
// frame back. Encode must accept every consistent spec and refuse the rest
// with one of its errors; what it accepts must carry valid checksums and
// parse back to the spec's flow. For ICMP errors the quote is itself an
// encoded reply of the flow, so the round trip covers the reversal.
func FuzzEncodeParse(f *testing.F) {
	f.Add(false, []byte{198, 51, 100, 7}, []byte{203, 0, 113, 10}, uint8(packet.ProtoTCP), uint16(40000), uint16(443),
		uint8(packet.TCPFlagSYN), uint32(1), uint32(0), uint32(0), uint8(0), uint8(0), uint8(0), uint16(0), uint8(0), []byte("hello"))
	f.Add(true, client6.AsSlice(), vip6.AsSlice(), uint8(packet.ProtoUDP), uint16(5353), uint16(53),
		uint8(0), uint32(0), uint32(0), uint32(0), uint8(0), uint8(0), uint8(0), uint16(100), uint8(1), []byte{})
	f.Add(false, client4.AsSlice(), vip4.AsSlice(), uint8(packet.ProtoSCTP), uint16(36412), uint16(36412),
		uint8(0), uint32(0), uint32(0), uint32(0xcafe), uint8(packet.SCTPChunkInit), uint8(0), uint8(0), uint16(4095), uint8(255), make([]byte, 16))
	f.Add(false, client4.AsSlice(), vip4.AsSlice(), uint8(packet.ProtoICMP), uint16(40000), uint16(443),
		uint8(packet.ProtoTCP), uint32(1400), uint32(0), uint32(0), uint8(0), uint8(packet.ICMPv4DestUnreachable), uint8(4), uint16(0), uint8(0), []byte{})
	f.Add(true, client6.AsSlice(), vip6.AsSlice(), uint8(packet.ProtoICMPv6), uint16(40000), uint16(443),
		uint8(packet.ProtoUDP), uint32(1280), uint32(30), uint32(0), uint8(0), uint8(packet.ICMPv6PacketTooBig), uint8(0), uint16(7), uint8(0), []byte{})
	f.Add(true, client6.AsSlice(), vip6.AsSlice(), uint8(packet.ProtoICMPv6), uint16(0), uint16(0),
		uint8(0), uint32(0), uint32(0), uint32(0), uint8(0), uint8(packet.ICMPv6EchoRequest), uint8(0), uint16(0), uint8(0), []byte("ping"))
	f.Add(false, client4.AsSlice(), vip6.AsSlice(), uint8(packet.ProtoTCP), uint16(1), uint16(2),
		uint8(0), uint32(0), uint32(0), uint32(0), uint8(0), uint8(0), uint8(0), uint16(5000), uint8(0), []byte{})

	buf := make([]byte, 1<<17)
	qbuf := make([]byte, 1<<17)
	f.Fuzz(func(t *testing.T, v6 bool, srcB, dstB []byte, proto uint8, sport, dport uint16,
		flags uint8, seq, ack, tag uint32, chunk, icmpType, icmpCode uint8, vlan uint16, ttl uint8, payload []byte) {
		addr := func(b []byte) netip.Addr {
			var a [16]byte
			copy(a[:], b)
			if v6 {
				return netip.AddrFrom16(a)
			}
			return netip.AddrFrom4([4]byte(a[:4]))
		}
		s := packet.FrameSpec{
			SrcMAC: clientMAC, DstMAC: lbMAC, VLAN: vlan,
			Src: addr(srcB), Dst: addr(dstB), Proto: proto, SrcPort: sport, DstPort: dport,
			TCPFlags: flags, Seq: seq, Ack: ack, SCTPTag: tag, SCTPChunk: chunk,
			ICMPType: icmpType, ICMPCode: icmpCode, ICMPRest: seq, Payload: payload, TTL: ttl,
		}
		if len(srcB) > 16 && srcB[16] == 1 {
			s.Dst = s.Dst.Unmap() // an IPv6 and an IPv4 address: inconsistent
			if !v6 {
				s.Dst = netip.AddrFrom16(s.Dst.As16())
			}
		}
		icmpErr := proto == packet.ProtoICMP && !v6 && (icmpType == 3 || icmpType == 11 || icmpType == 12) ||
			proto == packet.ProtoICMPv6 && v6 && icmpType >= 1 && icmpType <= 4
		want := packet.Flow{
			Family: 4, L3Off: 14, L4Off: 14 + 20, VLAN: vlan, Proto: proto,
			Src: s.Src.As16(), Dst: s.Dst.As16(), SrcPort: sport, DstPort: dport,
		}
		if v6 {
			want.Family, want.L4Off = 6, 14+40
		}
		if vlan != 0 {
			want.L3Off, want.L4Off = want.L3Off+4, want.L4Off+4
		}
		if icmpErr {
			// The quote is the VIP's reply: Dst to Src, ports swapped,
			// protocol chosen by flags, cut after 8 to 8+ack%64 bytes of L4.
			want.Proto = []uint8{packet.ProtoTCP, packet.ProtoUDP, packet.ProtoSCTP}[flags%3]
			inner := packet.FrameSpec{Src: s.Dst, Dst: s.Src, Proto: want.Proto, SrcPort: dport, DstPort: sport,
				SCTPTag: tag, TCPFlags: flags, SCTPChunk: chunk, Payload: payload}
			n, err := packet.Encode(qbuf, &inner)
			if err != nil {
				return // addresses inconsistent or too long: the outer Encode is tested elsewhere
			}
			q := qbuf[14:n]
			ipHdr := 20
			if v6 {
				ipHdr = 40
			}
			s.Quote = q[:min(len(q), ipHdr+8+int(ack%64))]
			s.Payload = nil
			if want.Proto == packet.ProtoSCTP {
				want.SCTPTag = tag
			}
			want.ICMPError = true
			want.SrcPort, want.DstPort = sport, dport
		} else {
			switch proto {
			case packet.ProtoTCP:
				want.TCPFlags = flags
			case packet.ProtoSCTP:
				want.SCTPTag, want.SCTPChunk = tag, chunk
			}
		}

		n, err := packet.Encode(buf, &s)
		consistent := s.Src.Is4() == s.Dst.Is4() && vlan <= 4095 &&
			(proto == packet.ProtoTCP || proto == packet.ProtoUDP || proto == packet.ProtoSCTP ||
				proto == packet.ProtoICMP && !v6 || proto == packet.ProtoICMPv6 && v6)
		switch {
		case err == nil && !consistent:
			t.Fatalf("Encode(%+v) accepted an inconsistent spec", s)
		case errors.Is(err, packet.ErrTooLong):
			return
		case err != nil && consistent:
			t.Fatalf("Encode(%+v) = %v", s, err)
		case err != nil:
			if !errors.Is(err, packet.ErrInvalidSpec) {
				t.Fatalf("Encode(%+v) = %v, want ErrInvalidSpec", s, err)
			}
			return
		}
		frame := buf[:n]
		want.Len = uint16(n - int(want.L3Off))
		checkChecksums(t, frame, want.L3Off, want.L4Off, proto, v6)

		var got packet.Flow
		r := packet.Parse(frame, &got)
		if (proto == packet.ProtoICMP || proto == packet.ProtoICMPv6) && !icmpErr {
			want = packet.Flow{L3Off: want.L3Off, L4Off: want.L4Off, VLAN: vlan, Family: want.Family, Proto: proto,
				Src: want.Src, Dst: want.Dst, Len: want.Len}
			if r != packet.ICMPNotError || got != want {
				t.Fatalf("Parse(%x) = %v %+v, want ICMPNotError %+v", frame, r, got, want)
			}
			return
		}
		if r != packet.OK || got != want {
			t.Fatalf("Parse(%x) =\n%v %+v\nwant OK %+v", frame, r, got, want)
		}
	})
}

// checkChecksums verifies every checksum in an encoded frame.
func checkChecksums(t *testing.T, frame []byte, l3, l4 uint16, proto uint8, v6 bool) {
	t.Helper()
	seg := frame[l4:]
	var pseudo uint32
	if v6 {
		ip := packet.IPv6(frame[l3:])
		pseudo = packet.PseudoHeaderSum6(ip.Src(), ip.Dst(), proto, uint32(len(seg)))
	} else {
		ip := packet.IPv4(frame[l3:])
		if !ip.IsChecksumValid() {
			t.Fatalf("IPv4 header checksum invalid in %x", frame)
		}
		pseudo = packet.PseudoHeaderSum4(ip.Src(), ip.Dst(), proto, uint16(len(seg)))
	}
	switch proto {
	case packet.ProtoSCTP:
		if s := packet.SCTP(seg); s.Checksum() != s.ComputeChecksum() {
			t.Fatalf("SCTP CRC32c %#x, want %#x", s.Checksum(), s.ComputeChecksum())
		}
		return
	case packet.ProtoICMP:
		pseudo = 0
	case packet.ProtoUDP:
		if packet.UDP(seg).Checksum() == 0 {
			t.Fatalf("UDP checksum 0 (none) in %x", frame)
		}
	}
	if sum := packet.Checksum(seg, pseudo); sum != 0xffff {
		t.Fatalf("L4 checksum does not verify (sum %#04x) in %x", sum, frame)
	}
}

// corpusFrames are the files under testdata/fuzz/FuzzParse: Encode output
// for each shape of frame, so a fuzzing run starts from valid frames of
// every kind rather than from noise.
func corpusFrames(tb testing.TB) map[string][]byte {
	tb.Helper()
	tcp4 := spec(client4, vip4, packet.ProtoTCP)
	tcp4.TCPFlags = packet.TCPFlagSYN
	udp6 := spec(client6, vip6, packet.ProtoUDP)
	udp6.Payload = []byte("payload")
	sctp := spec(client4, vip4, packet.ProtoSCTP)
	sctp.SCTPChunk, sctp.SCTPTag, sctp.VLAN = packet.SCTPChunkData, 0x1234, 7
	sctp.Payload = make([]byte, 16)
	qinq := tcp4
	qinq.VLAN = 200
	return map[string][]byte{
		"ipv4-tcp-syn":      encode(tb, tcp4),
		"ipv6-udp":          encode(tb, udp6),
		"vlan-ipv4-sctp":    encode(tb, sctp),
		"qinq-ipv4-tcp":     withTag(encode(tb, qinq), packet.EtherTypeQinQ, 100),
		"ipv6-hbh-dst-udp":  withIPv6Ext(encode(tb, udp6), l3, ext{packet.ProtoHopByHop, 8}, ext{packet.ProtoDestOpts, 8}),
		"ipv4-options-tcp":  withIPv4Options(encode(tb, tcp4), l3, 1, 1, 1, 0),
		"icmpv4-fragneeded": icmpError(tb, 3, 4, 1400, reply(tb, vip4, client4, packet.ProtoTCP, 8), true),
		"icmpv6-ptb-udp":    icmpError(tb, 2, 0, 1280, reply(tb, vip6, client6, packet.ProtoUDP, 8), false),
	}
}

func corpusFile(frame []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", frame)
}

// TestFuzzCorpus keeps the checked-in seed corpus equal to what Encode makes
// today; regenerate with go test -run TestFuzzCorpus -update-corpus.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzParse")
	for name, frame := range corpusFrames(t) {
		var f packet.Flow
		if r := packet.Parse(frame, &f); r != packet.OK {
			t.Errorf("corpus frame %s: Parse() = %v", name, r)
		}
		path := filepath.Join(dir, name)
		if *updateCorpus {
			must(t, os.MkdirAll(dir, 0o755))
			must(t, os.WriteFile(path, corpusFile(frame), 0o644))
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, corpusFile(frame)) {
			t.Errorf("%s is stale or missing (%v); run go test -run TestFuzzCorpus -update-corpus", path, err)
		}
	}
}
