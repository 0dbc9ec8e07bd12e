package packet_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// partialOf returns a copy of a TCP or UDP frame with its checksum field
// replaced by the pseudo-header sum, as a sender with checksum offload
// leaves it.
func partialOf(tb testing.TB, frame []byte) []byte {
	tb.Helper()
	b := clone(frame)
	var f packet.Flow
	if r := packet.Parse(b, &f); r != packet.OK {
		tb.Fatalf("Parse = %v", r)
	}
	l4Len := int(f.Len) - int(f.L4Off-f.L3Off)
	var ph uint32
	if f.Family == 4 {
		ph = packet.PseudoHeaderSum4([4]byte(f.Src[12:]), [4]byte(f.Dst[12:]), f.Proto, uint16(l4Len))
	} else {
		ph = packet.PseudoHeaderSum6(f.Src, f.Dst, f.Proto, uint32(l4Len))
	}
	off := int(f.L4Off) + 16
	if f.Proto == packet.ProtoUDP {
		off = int(f.L4Off) + 6
	}
	binary.BigEndian.PutUint16(b[off:], packet.Checksum(nil, ph))
	return b
}

func TestPartialChecksum(t *testing.T) {
	tcp4 := spec(client4, vip4, packet.ProtoTCP)
	tcp4.TCPFlags, tcp4.Payload = packet.TCPFlagACK, []byte("GET / HTTP/1.1\r\n\r\n")
	udp4 := spec(client4, vip4, packet.ProtoUDP)
	udp4.Payload = []byte("query")
	tcp6 := spec(client6, vip6, packet.ProtoTCP)
	tcp6.TCPFlags, tcp6.Payload = packet.TCPFlagACK, make([]byte, 301)
	udp6 := spec(client6, vip6, packet.ProtoUDP)
	udp6.Payload = []byte("odd")
	sctp := spec(client4, vip4, packet.ProtoSCTP)
	sctp.SCTPChunk, sctp.SCTPTag, sctp.Payload = packet.SCTPChunkData, 7, make([]byte, 16)

	noSum := encode(t, udp4)
	binary.BigEndian.PutUint16(noSum[l4v4+6:], 0)

	for _, tc := range []struct {
		desc  string
		frame []byte
		want  bool
	}{
		{"IPv4 TCP, complete", encode(t, tcp4), false},
		{"IPv4 TCP, partial", partialOf(t, encode(t, tcp4)), true},
		{"IPv4 UDP, complete", encode(t, udp4), false},
		{"IPv4 UDP, partial", partialOf(t, encode(t, udp4)), true},
		{"IPv4 UDP, partial, padded frame", withPadding(partialOf(t, encode(t, udp4)), 9), true},
		{"IPv6 TCP, complete", encode(t, tcp6), false},
		{"IPv6 TCP, partial", partialOf(t, encode(t, tcp6)), true},
		{"IPv6 UDP, odd length, partial", partialOf(t, encode(t, udp6)), true},
		{"IPv4 UDP without checksum", noSum, false},
		{"SCTP", encode(t, sctp), false},
		{"ICMP error quoting TCP", icmpError(t, packet.ICMPv4DestUnreachable, 3, 0, reply(t, vip4, client4, packet.ProtoTCP, 8), true), false},
	} {
		var f packet.Flow
		if r := packet.Parse(tc.frame, &f); r != packet.OK {
			t.Fatalf("%s: Parse = %v", tc.desc, r)
		}
		if got := packet.PartialChecksum(tc.frame, &f); got != tc.want {
			t.Errorf("PartialChecksum(%s) = %v, want %v", tc.desc, got, tc.want)
		}
	}
}

// TestPartialChecksumCoincidence: a complete checksum that equals the
// pseudo-header sum (one frame in 65536) is not taken for a partial one.
func TestPartialChecksumCoincidence(t *testing.T) {
	s := spec(client4, vip4, packet.ProtoUDP)
	s.Payload = make([]byte, 2)
	for w := range 1 << 16 {
		binary.BigEndian.PutUint16(s.Payload, uint16(w))
		frame := encode(t, s)
		if !bytes.Equal(frame, partialOf(t, frame)) {
			continue
		}
		var f packet.Flow
		packet.Parse(frame, &f)
		if packet.PartialChecksum(frame, &f) {
			t.Fatalf("PartialChecksum(complete checksum %#04x equal to the pseudo-header sum) = true, want false", binary.BigEndian.Uint16(frame[l4v4+6:]))
		}
		return
	}
	t.Fatal("no payload word makes the checksum equal the pseudo-header sum")
}

func TestPartialChecksumAllocs(t *testing.T) {
	s := spec(client6, vip6, packet.ProtoTCP)
	s.Payload = make([]byte, 1000)
	frame := partialOf(t, encode(t, s))
	var f packet.Flow
	packet.Parse(frame, &f)
	if n := testing.AllocsPerRun(100, func() { packet.PartialChecksum(frame, &f) }); n != 0 {
		t.Errorf("PartialChecksum allocates %v times per call, want 0", n)
	}
}
