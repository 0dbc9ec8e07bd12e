package packet_test

import (
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
)

func BenchmarkParse(b *testing.B) {
	tcp4 := spec(client4, vip4, packet.ProtoTCP)
	tcp4.TCPFlags, tcp4.Payload = packet.TCPFlagACK, make([]byte, 64)
	udp6 := spec(client6, vip6, packet.ProtoUDP)
	udp6.Payload = make([]byte, 64)
	vlan := tcp4
	vlan.VLAN = 100
	for _, bc := range []struct {
		name  string
		frame []byte
	}{
		{"IPv4TCP", encode(b, tcp4)},
		{"IPv6UDP", encode(b, udp6)},
		{"VLANIPv4TCP", encode(b, vlan)},
		{"IPv6HopByHopUDP", withIPv6Ext(encode(b, udp6), l3, ext{packet.ProtoHopByHop, 8})},
		{"ICMPv4FragNeeded", icmpError(b, packet.ICMPv4DestUnreachable, packet.ICMPv4CodeFragNeeded, 1400,
			reply(b, vip4, client4, packet.ProtoTCP, 8), true)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var f packet.Flow
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.frame)))
			for b.Loop() {
				if packet.Parse(bc.frame, &f) != packet.OK {
					b.Fatal("not OK")
				}
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	s := spec(client4, vip4, packet.ProtoTCP)
	s.Payload = make([]byte, 64)
	buf := make([]byte, 2048)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := packet.Encode(buf, &s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChecksum1500(b *testing.B) {
	buf := make([]byte, 1500)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		packet.Checksum(buf, 0)
	}
}

func BenchmarkNATRewriteIPv4TCP(b *testing.B) {
	frame := encode(b, spec(client4, vip4, packet.ProtoTCP))
	ip, tcp := packet.IPv4(frame[l3:]), packet.TCP(frame[l4v4:])
	from, to := vip4.As4(), client4.As4()
	b.ReportAllocs()
	for b.Loop() {
		ip.SetDst(to)
		tcp.UpdateChecksumAddr4(from, to)
		tcp.SetDstPortWithChecksumUpdate(8080)
		from, to = to, from
	}
}
