package packet_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// parseCase is a fixture in the katran style: a frame, the verdict, and the
// Flow Parse must produce. flow is compared in full whenever it is not the
// zero Flow, which includes partial flows for some refusals.
type parseCase struct {
	desc  string
	frame []byte
	want  packet.Reason
	flow  packet.Flow
}

const (
	l3   = packet.EthernetHeaderLen
	l4v4 = l3 + packet.IPv4MinHeaderLen
	l4v6 = l3 + packet.IPv6HeaderLen
)

func parseCases(tb testing.TB) []parseCase {
	tb.Helper()
	withSpec := func(s packet.FrameSpec, f func(*packet.FrameSpec)) packet.FrameSpec { f(&s); return s }

	tcp4 := spec(client4, vip4, packet.ProtoTCP)
	tcp4.TCPFlags = packet.TCPFlagSYN
	syn4 := encode(tb, tcp4)
	tcp4Flow := packet.Flow{
		L3Off: l3, L4Off: l4v4, Family: 4, Proto: packet.ProtoTCP, TCPFlags: packet.TCPFlagSYN,
		Src: a16(client4), Dst: a16(vip4), SrcPort: clientPort, DstPort: vipPort, Len: 40,
	}
	with := func(f packet.Flow, m func(*packet.Flow)) packet.Flow { m(&f); return f }

	udp4 := spec(client4, vip4, packet.ProtoUDP)
	udp4.Payload = []byte("dns?")
	dgram4 := encode(tb, udp4)
	udp4Flow := packet.Flow{
		L3Off: l3, L4Off: l4v4, Family: 4, Proto: packet.ProtoUDP,
		Src: a16(client4), Dst: a16(vip4), SrcPort: clientPort, DstPort: vipPort, Len: 32,
	}

	tcp6 := spec(client6, vip6, packet.ProtoTCP)
	tcp6.TCPFlags = packet.TCPFlagACK | packet.TCPFlagPSH
	tcp6.Payload = []byte("GET / HTTP/1.1\r\n\r\n")
	seg6 := encode(tb, tcp6)
	tcp6Flow := packet.Flow{
		L3Off: l3, L4Off: l4v6, Family: 6, Proto: packet.ProtoTCP, TCPFlags: packet.TCPFlagACK | packet.TCPFlagPSH,
		Src: a16(client6), Dst: a16(vip6), SrcPort: clientPort, DstPort: vipPort, Len: 40 + 20 + 18,
	}
	udp6 := spec(client6, vip6, packet.ProtoUDP)
	udp6.Payload = make([]byte, 33)
	dgram6 := encode(tb, udp6)
	udp6Flow := packet.Flow{
		L3Off: l3, L4Off: l4v6, Family: 6, Proto: packet.ProtoUDP,
		Src: a16(client6), Dst: a16(vip6), SrcPort: clientPort, DstPort: vipPort, Len: 40 + 8 + 33,
	}

	// INIT carries its fixed fields in the chunk value: initiate tag,
	// a_rwnd, outbound and inbound streams, initial TSN.
	initBody := []byte{0xde, 0xad, 0xbe, 0xef, 0, 1, 0, 0, 0, 10, 0, 10, 0, 0, 0, 1}
	sctpInit := spec(client4, vip4, packet.ProtoSCTP)
	sctpInit.SCTPChunk = packet.SCTPChunkInit
	sctpInit.Payload = initBody
	sctpData := spec(client6, vip6, packet.ProtoSCTP)
	sctpData.SCTPChunk, sctpData.SCTPTag = packet.SCTPChunkData, 0x11223344
	sctpData.Payload = make([]byte, 12+5) // TSN, stream, SSN, PPID, 5 bytes of data
	sctpShut := withSpec(sctpInit, func(s *packet.FrameSpec) {
		s.SCTPChunk, s.SCTPTag, s.Payload = packet.SCTPChunkShutdown, 0xfeedf00d, []byte{0, 0, 0, 42}
	})
	init4 := encode(tb, sctpInit)
	sctpFlow4 := packet.Flow{
		L3Off: l3, L4Off: l4v4, Family: 4, Proto: packet.ProtoSCTP, SCTPChunk: packet.SCTPChunkInit,
		Src: a16(client4), Dst: a16(vip4), SrcPort: clientPort, DstPort: vipPort, Len: 20 + 16 + 16,
	}

	// ICMP errors: a router on the client's side reports on the VIP's
	// reply; the flow comes back as the client sent it.
	fragNeeded := icmpError(tb, packet.ICMPv4DestUnreachable, packet.ICMPv4CodeFragNeeded, 1400,
		reply(tb, vip4, client4, packet.ProtoTCP, 8), true)
	icmpTCPFlow := packet.Flow{
		L3Off: l3, L4Off: l4v4, Family: 4, Proto: packet.ProtoTCP, ICMPError: true,
		Src: a16(client4), Dst: a16(vip4), SrcPort: clientPort, DstPort: vipPort, Len: 20 + 8 + 28,
	}
	ptb := icmpError(tb, packet.ICMPv6PacketTooBig, 0, 1280, reply(tb, vip6, client6, packet.ProtoUDP, 108), false)
	icmpUDPFlow := packet.Flow{
		L3Off: l3, L4Off: l4v6, Family: 6, Proto: packet.ProtoUDP, ICMPError: true,
		Src: a16(client6), Dst: a16(vip6), SrcPort: clientPort, DstPort: vipPort, Len: 40 + 8 + 40 + 108,
	}
	quote4 := reply(tb, vip4, client4, packet.ProtoTCP, 8)
	quote6 := reply(tb, vip6, client6, packet.ProtoUDP, 8)
	icmpErr4 := func(q []byte) []byte { return icmpError(tb, packet.ICMPv4DestUnreachable, 1, 0, q, true) }
	icmpErr6 := func(q []byte) []byte { return icmpError(tb, packet.ICMPv6DestUnreachable, 4, 0, q, false) }
	quoteFragV4 := func(v uint16) []byte {
		q := clone(quote4)
		setIPv4FlagsFrag(q, v)
		fixIPv4Checksum(q)
		return q
	}
	quote6Ext := func(exts ...ext) []byte { return withIPv6Ext(clone(quote6), 0, exts...) }

	echo4 := icmpError(tb, packet.ICMPv4EchoRequest, 0, 0x1234_0001, nil, true)
	echo6 := icmpError(tb, packet.ICMPv6EchoRequest, 0, 0x1234_0001, []byte("ping"), false)

	arp := setAt(syn4, 12, 0x08, 0x06)

	return []parseCase{
		// Link layer.
		{desc: "empty frame", frame: nil, want: packet.Truncated},
		{desc: "13 bytes", frame: syn4[:13], want: packet.Truncated},
		{desc: "ARP", frame: arp, want: packet.NotIP},
		{desc: "IPv4 TCP SYN", frame: syn4, want: packet.OK, flow: tcp4Flow},
		{desc: "IPv4 TCP SYN padded to 60 bytes", frame: withPadding(syn4, 6), want: packet.OK, flow: tcp4Flow},
		{desc: "802.1Q VLAN 100", frame: withTag(syn4, packet.EtherTypeVLAN, 100), want: packet.OK,
			flow: with(tcp4Flow, func(f *packet.Flow) { f.VLAN, f.L3Off, f.L4Off = 100, l3+4, l4v4+4 })},
		{desc: "802.1Q PCP and DEI bits are not part of the VLAN ID", frame: withTag(syn4, packet.EtherTypeVLAN, 0xf000|7), want: packet.OK,
			flow: with(tcp4Flow, func(f *packet.Flow) { f.VLAN, f.L3Off, f.L4Off = 7, l3+4, l4v4+4 })},
		{desc: "QinQ 802.1ad 100 over 802.1Q 200", frame: withTag(encode(tb, withSpec(tcp4, func(s *packet.FrameSpec) { s.VLAN = 200 })), packet.EtherTypeQinQ, 100),
			want: packet.OK, flow: with(tcp4Flow, func(f *packet.Flow) { f.VLAN, f.L3Off, f.L4Off = 100, l3+8, l4v4+8 })},
		{desc: "double 802.1Q", frame: withTag(withTag(syn4, packet.EtherTypeVLAN, 5), packet.EtherTypeVLAN, 4095),
			want: packet.OK, flow: with(tcp4Flow, func(f *packet.Flow) { f.VLAN, f.L3Off, f.L4Off = 4095, l3+8, l4v4+8 })},
		{desc: "three tags", frame: withTag(withTag(withTag(syn4, packet.EtherTypeVLAN, 1), packet.EtherTypeVLAN, 2), packet.EtherTypeQinQ, 3),
			want: packet.VLANTooDeep},
		{desc: "tag cut short", frame: withTag(syn4, packet.EtherTypeVLAN, 100)[:17], want: packet.Truncated},
		{desc: "VLAN-tagged ARP", frame: withTag(arp, packet.EtherTypeVLAN, 100), want: packet.NotIP},

		// IPv4.
		{desc: "IPv4 TCP FIN|ACK", frame: encode(tb, withSpec(tcp4, func(s *packet.FrameSpec) { s.TCPFlags = packet.TCPFlagFIN | packet.TCPFlagACK })),
			want: packet.OK, flow: with(tcp4Flow, func(f *packet.Flow) { f.TCPFlags = packet.TCPFlagFIN | packet.TCPFlagACK })},
		{desc: "IPv4 TCP RST", frame: encode(tb, withSpec(tcp4, func(s *packet.FrameSpec) { s.TCPFlags = packet.TCPFlagRST })),
			want: packet.OK, flow: with(tcp4Flow, func(f *packet.Flow) { f.TCPFlags = packet.TCPFlagRST })},
		{desc: "IPv4 TCP 255 TTL all flags", frame: encode(tb, withSpec(tcp4, func(s *packet.FrameSpec) { s.TCPFlags, s.TTL = 0xff, 255 })),
			want: packet.OK, flow: with(tcp4Flow, func(f *packet.Flow) { f.TCPFlags = 0xff })},
		{desc: "IPv4 options (router alert, NOPs)", frame: withIPv4Options(syn4, l3, 0x94, 0x04, 0, 0, 1, 1, 1, 0),
			want: packet.OK, flow: with(tcp4Flow, func(f *packet.Flow) { f.L4Off, f.Len = l4v4+8, 48 })},
		{desc: "IPv4 40 bytes of options", frame: withIPv4Options(syn4, l3, make([]byte, 40)...),
			want: packet.OK, flow: with(tcp4Flow, func(f *packet.Flow) { f.L4Off, f.Len = l4v4+40, 80 })},
		{desc: "IPv4 first fragment (MF)", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { setIPv4FlagsFrag(ip, 0x2000) }),
			want: packet.IPFragment, flow: packet.Flow{L3Off: l3, Family: 4, Src: a16(client4), Dst: a16(vip4), Len: 40}},
		{desc: "IPv4 later fragment", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { setIPv4FlagsFrag(ip, 185) }),
			want: packet.IPFragment, flow: packet.Flow{L3Off: l3, Family: 4, Src: a16(client4), Dst: a16(vip4), Len: 40}},
		{desc: "IPv4 last fragment (offset, no MF)", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { setIPv4FlagsFrag(ip, 0x4000|1) }),
			want: packet.IPFragment},
		{desc: "IPv4 DF alone is not a fragment", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { setIPv4FlagsFrag(ip, 0x4000) }),
			want: packet.OK, flow: tcp4Flow},
		{desc: "IPv4 version 6 under EtherType IPv4", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { ip[0] = 0x65 }), want: packet.BadIPHeader},
		{desc: "IPv4 IHL 4", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { ip[0] = 0x44 }), want: packet.BadIPHeader},
		{desc: "IPv4 total length below IHL", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { setIPv4TotalLen(ip, 19) }), want: packet.BadIPHeader},
		{desc: "IPv4 total length beyond frame", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { setIPv4TotalLen(ip, 41) }), want: packet.Truncated},
		{desc: "IPv4 IHL beyond total length", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { ip[0] = 0x4f }), want: packet.BadIPHeader},
		{desc: "IPv4 options cut by the frame", frame: withIPv4Options(syn4, l3, 1, 1, 1, 1)[:l3+22], want: packet.Truncated},
		{desc: "IPv4 GRE", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { ip[9] = 47 }), want: packet.UnsupportedProto,
			flow: packet.Flow{L3Off: l3, L4Off: l4v4, Family: 4, Src: a16(client4), Dst: a16(vip4), Len: 40}},
		{desc: "IPv4 ICMPv6", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { ip[9] = packet.ProtoICMPv6 }), want: packet.UnsupportedProto},
		{desc: "IPv4 total length hides TCP header", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { setIPv4TotalLen(ip, 39) }), want: packet.BadL4Header},

		// TCP.
		{desc: "TCP data offset 6 (options)", frame: setAt(encode(tb, withSpec(tcp4, func(s *packet.FrameSpec) { s.Payload = []byte{1, 1, 1, 1} })), l4v4+12, 0x60),
			want: packet.OK, flow: with(tcp4Flow, func(f *packet.Flow) { f.Len = 44 })},
		{desc: "TCP data offset 4", frame: setAt(syn4, l4v4+12, 0x40), want: packet.BadL4Header},
		{desc: "TCP data offset beyond packet", frame: setAt(syn4, l4v4+12, 0x60), want: packet.BadL4Header},
		{desc: "TCP data offset beyond packet into padding", frame: withPadding(setAt(syn4, l4v4+12, 0xf0), 40), want: packet.BadL4Header},

		// UDP.
		{desc: "IPv4 UDP", frame: dgram4, want: packet.OK, flow: udp4Flow},
		{desc: "UDP length 7", frame: setAt(dgram4, l4v4+4, 0, 7), want: packet.BadL4Header},
		{desc: "UDP length beyond IP payload", frame: setAt(dgram4, l4v4+4, 0, 13), want: packet.BadL4Header},
		{desc: "UDP length below IP payload", frame: setAt(dgram4, l4v4+4, 0, 9), want: packet.OK, flow: udp4Flow},
		{desc: "IPv6 UDP", frame: dgram6, want: packet.OK, flow: udp6Flow},
		{desc: "IPv6 UDP 802.1Q", frame: withTag(dgram6, packet.EtherTypeVLAN, 3000), want: packet.OK,
			flow: with(udp6Flow, func(f *packet.Flow) { f.VLAN, f.L3Off, f.L4Off = 3000, l3+4, l4v6+4 })},

		// IPv6.
		{desc: "IPv6 TCP PSH|ACK", frame: seg6, want: packet.OK, flow: tcp6Flow},
		{desc: "IPv6 version 4 under EtherType IPv6", frame: setAt(seg6, l3, 0x40), want: packet.BadIPHeader},
		{desc: "IPv6 payload length beyond frame", frame: setAt(seg6, l3+4, 0, 39), want: packet.Truncated},
		{desc: "IPv6 payload length hides TCP header", frame: setAt(seg6, l3+4, 0, 19), want: packet.BadL4Header},
		{desc: "IPv6 hop-by-hop + destination options", frame: withIPv6Ext(dgram6, l3, ext{packet.ProtoHopByHop, 8}, ext{packet.ProtoDestOpts, 16}),
			want: packet.OK, flow: with(udp6Flow, func(f *packet.Flow) { f.L4Off, f.Len = l4v6+24, f.Len+24 })},
		{desc: "IPv6 routing + AH", frame: withIPv6Ext(seg6, l3, ext{packet.ProtoRouting, 24}, ext{packet.ProtoAH, 24}),
			want: packet.OK, flow: with(tcp6Flow, func(f *packet.Flow) { f.L4Off, f.Len = l4v6+48, f.Len+48 })},
		{desc: "IPv6 AH of 12 bytes (IPv4-style length)", frame: withIPv6Ext(seg6, l3, ext{packet.ProtoAH, 12}),
			want: packet.OK, flow: with(tcp6Flow, func(f *packet.Flow) { f.L4Off, f.Len = l4v6+12, f.Len+12 })},
		{desc: "IPv6 8 extension headers", frame: withIPv6Ext(dgram6, l3, ext{0, 8}, ext{60, 8}, ext{43, 8}, ext{60, 8}, ext{51, 16}, ext{60, 8}, ext{43, 8}, ext{60, 8}),
			want: packet.OK, flow: with(udp6Flow, func(f *packet.Flow) { f.L4Off, f.Len = l4v6+72, f.Len+72 })},
		{desc: "IPv6 9 extension headers", frame: withIPv6Ext(dgram6, l3, ext{0, 8}, ext{60, 8}, ext{43, 8}, ext{60, 8}, ext{51, 16}, ext{60, 8}, ext{43, 8}, ext{60, 8}, ext{60, 8}),
			want: packet.IPv6ExtHeaders},
		{desc: "IPv6 hop-by-hop not first", frame: withIPv6Ext(dgram6, l3, ext{packet.ProtoDestOpts, 8}, ext{packet.ProtoHopByHop, 8}), want: packet.BadIPHeader},
		{desc: "IPv6 fragment header", frame: withIPv6Ext(dgram6, l3, ext{packet.ProtoFragment, 8}), want: packet.IPFragment,
			flow: packet.Flow{L3Off: l3, Family: 6, Src: a16(client6), Dst: a16(vip6), Len: 40 + 8 + 8 + 33}},
		{desc: "IPv6 fragment header after hop-by-hop", frame: withIPv6Ext(dgram6, l3, ext{packet.ProtoHopByHop, 8}, ext{packet.ProtoFragment, 8}), want: packet.IPFragment},
		{desc: "IPv6 extension header overruns payload", frame: setAt(withIPv6Ext(dgram6, l3, ext{packet.ProtoDestOpts, 8}), l4v6+1, 20), want: packet.BadIPHeader},
		{desc: "IPv6 extension header cut by payload length", frame: setAt(withIPv6Ext(dgram6, l3, ext{packet.ProtoDestOpts, 8}), l3+4, 0, 4), want: packet.BadIPHeader},
		{desc: "IPv6 ESP", frame: setAt(dgram6, l3+6, packet.ProtoESP), want: packet.UnsupportedProto},
		{desc: "IPv6 no next header", frame: setAt(dgram6, l3+6, packet.ProtoNoNext), want: packet.UnsupportedProto},
		{desc: "IPv6 mobility header", frame: withIPv6Ext(dgram6, l3, ext{135, 8}), want: packet.IPv6ExtHeaders},
		{desc: "IPv6 ICMPv4", frame: setAt(dgram6, l3+6, packet.ProtoICMP), want: packet.UnsupportedProto},

		// SCTP.
		{desc: "IPv4 SCTP INIT", frame: init4, want: packet.OK, flow: sctpFlow4},
		{desc: "IPv6 SCTP DATA with tag", frame: encode(tb, sctpData), want: packet.OK, flow: packet.Flow{
			L3Off: l3, L4Off: l4v6, Family: 6, Proto: packet.ProtoSCTP, SCTPChunk: packet.SCTPChunkData, SCTPTag: 0x11223344,
			Src: a16(client6), Dst: a16(vip6), SrcPort: clientPort, DstPort: vipPort, Len: 40 + 16 + 20,
		}},
		{desc: "IPv4 SCTP SHUTDOWN with tag", frame: encode(tb, sctpShut), want: packet.OK,
			flow: with(sctpFlow4, func(f *packet.Flow) { f.SCTPChunk, f.SCTPTag, f.Len = packet.SCTPChunkShutdown, 0xfeedf00d, 20+16+4 })},
		{desc: "SCTP chunk length 3", frame: setAt(init4, l4v4+14, 0, 3), want: packet.BadL4Header},
		{desc: "SCTP chunk length beyond packet", frame: setAt(init4, l4v4+14, 0, 21), want: packet.BadL4Header},
		{desc: "SCTP common header only", frame: mutIPv4(init4, l3, func(ip packet.IPv4) { setIPv4TotalLen(ip, 32) }), want: packet.BadL4Header},

		// ICMP.
		{desc: "ICMPv4 frag needed quoting TCP", frame: fragNeeded, want: packet.OK, flow: icmpTCPFlow},
		{desc: "ICMPv4 frag needed, 802.1Q", frame: withTag(fragNeeded, packet.EtherTypeVLAN, 9), want: packet.OK,
			flow: with(icmpTCPFlow, func(f *packet.Flow) { f.VLAN, f.L3Off, f.L4Off = 9, l3+4, l4v4+4 })},
		{desc: "ICMPv4 time exceeded quoting SCTP", frame: icmpError(tb, packet.ICMPv4TimeExceeded, 0, 0, reply(tb, vip4, client4, packet.ProtoSCTP, 8), true),
			want: packet.OK, flow: with(icmpTCPFlow, func(f *packet.Flow) { f.Proto, f.SCTPTag = packet.ProtoSCTP, 0xc11e47 })},
		{desc: "ICMPv4 parameter problem quoting UDP with options", frame: icmpErr4(withIPv4Options(reply(tb, vip4, client4, packet.ProtoUDP, 8), 0, 1, 1, 1, 0)),
			want: packet.OK, flow: with(icmpTCPFlow, func(f *packet.Flow) { f.Proto, f.Len = packet.ProtoUDP, f.Len+4 })},
		{desc: "ICMPv4 quoting a first fragment", frame: icmpErr4(quoteFragV4(0x2000)), want: packet.OK, flow: icmpTCPFlow},
		{desc: "ICMPv4 quoting a later fragment", frame: icmpErr4(quoteFragV4(0x2000 | 100)), want: packet.ICMPBadQuote},
		{desc: "ICMPv4 quote with 7 bytes of L4", frame: icmpErr4(quote4[:27]), want: packet.ICMPQuoteTruncated},
		{desc: "ICMPv4 quote shorter than an IP header", frame: icmpErr4(quote4[:19]), want: packet.ICMPQuoteTruncated},
		{desc: "ICMPv4 quote with IHL beyond quote", frame: icmpErr4(setAt(quote4, 0, 0x4f)), want: packet.ICMPQuoteTruncated},
		{desc: "ICMPv4 quoting IPv6", frame: icmpErr4(quote6), want: packet.ICMPBadQuote},
		{desc: "ICMPv4 quote with IHL 3", frame: icmpErr4(setAt(quote4, 0, 0x43)), want: packet.ICMPBadQuote},
		{desc: "ICMPv4 quoting ICMP", frame: icmpErr4(setAt(quote4, 9, packet.ProtoICMP)), want: packet.UnsupportedProto},
		{desc: "ICMPv4 error without quote", frame: icmpErr4(nil), want: packet.ICMPQuoteTruncated},
		{desc: "ICMPv4 redirect is not followed", frame: icmpError(tb, 5, 0, 0, quote4, true), want: packet.ICMPNotError},
		{desc: "ICMPv4 echo request", frame: echo4, want: packet.ICMPNotError, flow: packet.Flow{
			L3Off: l3, L4Off: l4v4, Family: 4, Proto: packet.ProtoICMP, Src: a16(router4), Dst: a16(vip4), Len: 28,
		}},
		{desc: "ICMPv4 message of 7 bytes", frame: mutIPv4(echo4, l3, func(ip packet.IPv4) { setIPv4TotalLen(ip, 27) }), want: packet.BadL4Header},
		{desc: "ICMPv6 packet too big quoting UDP", frame: ptb, want: packet.OK, flow: icmpUDPFlow},
		{desc: "ICMPv6 time exceeded quoting TCP, 8 bytes", frame: icmpError(tb, packet.ICMPv6TimeExceeded, 0, 0, reply(tb, vip6, client6, packet.ProtoTCP, 8), false),
			want: packet.OK, flow: with(icmpUDPFlow, func(f *packet.Flow) { f.Proto, f.Len = packet.ProtoTCP, 40+8+48 })},
		{desc: "ICMPv6 parameter problem quoting SCTP", frame: icmpError(tb, packet.ICMPv6ParamProblem, 0, 0, reply(tb, vip6, client6, packet.ProtoSCTP, 8), false),
			want: packet.OK, flow: with(icmpUDPFlow, func(f *packet.Flow) { f.Proto, f.SCTPTag, f.Len = packet.ProtoSCTP, 0xc11e47, 40+8+48 })},
		{desc: "ICMPv6 quote with destination options", frame: icmpErr6(quote6Ext(ext{packet.ProtoDestOpts, 16})),
			want: packet.OK, flow: with(icmpUDPFlow, func(f *packet.Flow) { f.Len = 40 + 8 + 40 + 16 + 8 })},
		{desc: "ICMPv6 quoting a first fragment", frame: icmpErr6(quote6Ext(ext{packet.ProtoFragment, 8})),
			want: packet.OK, flow: with(icmpUDPFlow, func(f *packet.Flow) { f.Len = 40 + 8 + 40 + 8 + 8 })},
		{desc: "ICMPv6 quoting a later fragment", frame: icmpErr6(setAt(quote6Ext(ext{packet.ProtoFragment, 8}), 42, 0x01, 0x00)), want: packet.ICMPBadQuote},
		{desc: "ICMPv6 quote cut inside extension header", frame: icmpErr6(quote6Ext(ext{packet.ProtoDestOpts, 16})[:50]), want: packet.ICMPQuoteTruncated},
		{desc: "ICMPv6 quote with 7 bytes of L4", frame: icmpErr6(quote6[:47]), want: packet.ICMPQuoteTruncated},
		{desc: "ICMPv6 quote shorter than an IPv6 header", frame: icmpErr6(quote6[:39]), want: packet.ICMPQuoteTruncated},
		{desc: "ICMPv6 quoting IPv4", frame: icmpErr6(append(clone(quote4), make([]byte, 20)...)), want: packet.ICMPBadQuote},
		{desc: "ICMPv6 quoting ESP", frame: icmpErr6(setAt(quote6, 6, packet.ProtoESP)), want: packet.UnsupportedProto},
		{desc: "ICMPv6 echo request", frame: echo6, want: packet.ICMPNotError, flow: packet.Flow{
			L3Off: l3, L4Off: l4v6, Family: 6, Proto: packet.ProtoICMPv6, Src: a16(router6), Dst: a16(vip6), Len: 40 + 8 + 4,
		}},
		{desc: "ICMPv6 behind hop-by-hop", frame: withIPv6Ext(ptb, l3, ext{packet.ProtoHopByHop, 8}),
			want: packet.OK, flow: with(icmpUDPFlow, func(f *packet.Flow) { f.L4Off, f.Len = l4v6+8, f.Len+8 })},
		{desc: "ICMPv6 quoting an IPv4-mapped source (the IPv4 VIP's alias)", frame: icmpErr6(setAt(quote6, 8, mapped(vip4)...)), want: packet.ICMPBadQuote},
		{desc: "ICMPv6 quoting an IPv4-mapped destination", frame: icmpErr6(setAt(quote6, 24, mapped(client4)...)), want: packet.ICMPBadQuote},

		// Found by the hostile suite on the wire (e2e/hostile_test.go).
		{desc: "broadcast destination MAC", frame: setAt(syn4, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), want: packet.L2NotUnicast},
		{desc: "IPv4 multicast destination MAC", frame: setAt(syn4, 0, 0x01, 0x00, 0x5e, 0, 0, 1), want: packet.L2NotUnicast},
		{desc: "IPv6 multicast destination MAC", frame: setAt(seg6, 0, 0x33, 0x33, 0, 0, 0, 1), want: packet.L2NotUnicast},
		{desc: "locally administered unicast MAC", frame: setAt(syn4, 0, 0x02, 0xaa, 0, 0, 0, 1), want: packet.OK, flow: tcp4Flow},
		{desc: "IPv4 TTL 0", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { ip[8] = 0 }), want: packet.ZeroTTL,
			flow: packet.Flow{L3Off: l3, Family: 4, Src: a16(client4), Dst: a16(vip4), Len: 40}},
		{desc: "IPv4 TTL 1", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { ip[8] = 1 }), want: packet.OK, flow: tcp4Flow},
		{desc: "IPv6 hop limit 0", frame: setAt(seg6, l3+7, 0), want: packet.ZeroTTL,
			flow: packet.Flow{L3Off: l3, Family: 6, Src: a16(client6), Dst: a16(vip6), Len: tcp6Flow.Len}},
		{desc: "ICMPv4 error with TTL 0", frame: mutIPv4(fragNeeded, l3, func(ip packet.IPv4) { ip[8] = 0 }), want: packet.ZeroTTL},
		{desc: "IPv4 source equal to destination", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { copy(ip[12:16], vip4.AsSlice()) }), want: packet.MartianAddress,
			flow: packet.Flow{L3Off: l3, Family: 4, Src: a16(vip4), Dst: a16(vip4), Len: 40}},
		{desc: "IPv4 multicast source", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { copy(ip[12:16], []byte{239, 1, 2, 3}) }), want: packet.MartianAddress},
		{desc: "IPv4 limited broadcast source", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { copy(ip[12:16], []byte{255, 255, 255, 255}) }), want: packet.MartianAddress},
		{desc: "IPv4 loopback source", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { copy(ip[12:16], []byte{127, 0, 0, 1}) }), want: packet.MartianAddress},
		{desc: "IPv4 source 0.0.0.0", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { copy(ip[12:16], []byte{0, 0, 0, 0}) }), want: packet.MartianAddress},
		{desc: "IPv4 source 0.1.2.3 (this network)", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { copy(ip[12:16], []byte{0, 1, 2, 3}) }), want: packet.MartianAddress},
		{desc: "IPv4 source 240.0.0.1 (reserved, not broadcast) is a client", frame: mutIPv4(syn4, l3, func(ip packet.IPv4) { copy(ip[12:16], []byte{240, 0, 0, 1}) }),
			want: packet.OK, flow: with(tcp4Flow, func(f *packet.Flow) { f.Src = a16(netip.MustParseAddr("240.0.0.1")) })},
		{desc: "IPv6 source equal to destination", frame: setAt(seg6, l3+8, vip6.AsSlice()...), want: packet.MartianAddress},
		{desc: "IPv6 unspecified source", frame: setAt(seg6, l3+8, make([]byte, 16)...), want: packet.MartianAddress},
		{desc: "IPv6 loopback source", frame: setAt(seg6, l3+8, netip.IPv6Loopback().AsSlice()...), want: packet.MartianAddress},
		{desc: "IPv6 multicast source", frame: setAt(seg6, l3+8, netip.MustParseAddr("ff02::1").AsSlice()...), want: packet.MartianAddress},
		{desc: "IPv6 IPv4-mapped source", frame: setAt(seg6, l3+8, mapped(client4)...), want: packet.MartianAddress},
		{desc: "IPv6 IPv4-mapped destination", frame: setAt(seg6, l3+24, mapped(vip4)...), want: packet.MartianAddress},
		{desc: "IPv6 IPv4-compatible-looking source ::198.51.100.7 is a client", frame: setAt(seg6, l3+8, append(make([]byte, 12), client4.AsSlice()...)...),
			want: packet.OK, flow: with(tcp6Flow, func(f *packet.Flow) { f.Src = [16]byte(append(make([]byte, 12), client4.AsSlice()...)) })},
	}
}

// mapped returns the 16 bytes of a's IPv4-mapped IPv6 form.
func mapped(a netip.Addr) []byte { b := a.As16(); return b[:] }

func TestParse(t *testing.T) {
	for _, tc := range parseCases(t) {
		t.Run(tc.desc, func(t *testing.T) {
			var f packet.Flow
			if got := packet.Parse(tc.frame, &f); got != tc.want {
				t.Fatalf("Parse() = %v, want %v (flow %+v)", got, tc.want, f)
			}
			if tc.flow != (packet.Flow{}) && f != tc.flow {
				t.Errorf("Parse() flow =\n%+v\nwant\n%+v", f, tc.flow)
			}
			if tc.want == packet.OK {
				checkViews(t, tc.frame, &f)
			}
		})
	}
}

// checkViews reads the accepted frame again through the typed views, which
// must agree with the Flow.
func checkViews(t *testing.T, frame []byte, f *packet.Flow) {
	t.Helper()
	if f.Family == 4 {
		ip := packet.IPv4(frame[f.L3Off:])
		if !ip.IsChecksumValid() || ip.ComputeChecksum() != ip.Checksum() {
			t.Errorf("IPv4 header checksum %#04x invalid, want %#04x", ip.Checksum(), ip.ComputeChecksum())
		}
		if ip.TotalLen() != f.Len || ip.IsFragment() || int(f.L3Off)+ip.HeaderLen() > int(f.L4Off) {
			t.Errorf("IPv4 view: len %d, fragment %v, header %d; flow %+v", ip.TotalLen(), ip.IsFragment(), ip.HeaderLen(), f)
		}
	} else {
		ip := packet.IPv6(frame[f.L3Off:])
		if int(ip.PayloadLen())+packet.IPv6HeaderLen != int(f.Len) || ip.Version() != 6 {
			t.Errorf("IPv6 view: payload %d; flow %+v", ip.PayloadLen(), f)
		}
	}
	l4 := frame[f.L4Off:]
	if f.ICMPError {
		return
	}
	var sport, dport uint16
	switch f.Proto {
	case packet.ProtoTCP:
		sport, dport = packet.TCP(l4).SrcPort(), packet.TCP(l4).DstPort()
		if packet.TCP(l4).Flags() != f.TCPFlags {
			t.Errorf("TCP flags %#x, flow %#x", packet.TCP(l4).Flags(), f.TCPFlags)
		}
	case packet.ProtoUDP:
		sport, dport = packet.UDP(l4).SrcPort(), packet.UDP(l4).DstPort()
	case packet.ProtoSCTP:
		s := packet.SCTP(l4)
		sport, dport = s.SrcPort(), s.DstPort()
		if s.VerificationTag() != f.SCTPTag || s.ChunkType() != f.SCTPChunk {
			t.Errorf("SCTP tag %#x chunk %d, flow %+v", s.VerificationTag(), s.ChunkType(), f)
		}
	}
	if sport != f.SrcPort || dport != f.DstPort {
		t.Errorf("ports %d->%d, flow %d->%d", sport, dport, f.SrcPort, f.DstPort)
	}
}

// TestParseTruncated cuts every accepted fixture at every length. Parse must
// refuse every cut that loses part of the IP packet and accept, with the same
// Flow, every cut that loses only padding.
func TestParseTruncated(t *testing.T) {
	for _, tc := range parseCases(t) {
		if tc.want != packet.OK {
			continue
		}
		var full packet.Flow
		if r := packet.Parse(tc.frame, &full); r != packet.OK {
			t.Fatalf("%s: Parse(full) = %v", tc.desc, r)
		}
		end := int(full.L3Off) + int(full.Len)
		for n := 0; n < len(tc.frame); n++ {
			var f packet.Flow
			r := packet.Parse(tc.frame[:n], &f)
			switch {
			case n < end && r == packet.OK:
				t.Errorf("%s: Parse(frame[:%d]) = OK for a packet ending at %d", tc.desc, n, end)
			case n >= end && (r != packet.OK || f != full):
				t.Errorf("%s: Parse(frame[:%d]) = %v, %+v; want OK, %+v", tc.desc, n, r, f, full)
			}
		}
	}
}

// TestParseResetsFlow: a worker reuses one Flow, so nothing from the previous
// frame may survive into the next.
func TestParseResetsFlow(t *testing.T) {
	cases := parseCases(t)
	for _, prev := range cases {
		for _, tc := range cases {
			var fresh, reused packet.Flow
			packet.Parse(prev.frame, &reused)
			r1 := packet.Parse(tc.frame, &fresh)
			r2 := packet.Parse(tc.frame, &reused)
			if r1 != r2 || fresh != reused {
				t.Fatalf("Parse(%q) after Parse(%q) = %v %+v, fresh = %v %+v", tc.desc, prev.desc, r2, reused, r1, fresh)
			}
		}
	}
}

// TestParseDoesNotWrite: Parse reads the frame only, so a frame shared with
// the NIC is not disturbed.
func TestParseDoesNotWrite(t *testing.T) {
	for _, tc := range parseCases(t) {
		before := clone(tc.frame)
		var f packet.Flow
		packet.Parse(tc.frame, &f)
		if string(before) != string(tc.frame) {
			t.Errorf("%s: Parse modified the frame", tc.desc)
		}
	}
}

func TestReasonString(t *testing.T) {
	seen := map[string]packet.Reason{}
	for r := packet.Reason(0); r < packet.NumReasons; r++ {
		s := r.String()
		if s == "" || s == "unknown" {
			t.Errorf("Reason(%d).String() = %q", r, s)
		}
		for _, c := range s {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
				t.Errorf("Reason(%d).String() = %q, not snake_case", r, s)
				break
			}
		}
		if prev, dup := seen[s]; dup {
			t.Errorf("Reason(%d) and Reason(%d) are both %q", prev, r, s)
		}
		seen[s] = r
	}
	if got := packet.NumReasons.String(); got != "unknown" {
		t.Errorf("NumReasons.String() = %q, want unknown", got)
	}
	if got := packet.IPFragment.String(); got != "ip_fragment" {
		t.Errorf("IPFragment.String() = %q, want ip_fragment", got)
	}
}

func TestFlowAddr(t *testing.T) {
	var f packet.Flow
	if r := packet.Parse(encode(t, spec(client4, vip4, packet.ProtoUDP)), &f); r != packet.OK {
		t.Fatal(r)
	}
	if f.SrcAddr() != client4 || f.DstAddr() != vip4 {
		t.Errorf("SrcAddr, DstAddr = %v, %v; want %v, %v", f.SrcAddr(), f.DstAddr(), client4, vip4)
	}
	if r := packet.Parse(encode(t, spec(client6, vip6, packet.ProtoUDP)), &f); r != packet.OK {
		t.Fatal(r)
	}
	if f.SrcAddr() != client6 || f.DstAddr() != vip6 {
		t.Errorf("SrcAddr, DstAddr = %v, %v; want %v, %v", f.SrcAddr(), f.DstAddr(), client6, vip6)
	}
}

// TestViews covers the accessors Parse does not use, against known bytes.
func TestViews(t *testing.T) {
	s := spec(client4, vip4, packet.ProtoTCP)
	s.VLAN, s.TTL, s.Seq, s.Ack, s.TCPFlags = 42, 17, 0x01020304, 0x0a0b0c0d, packet.TCPFlagSYN|packet.TCPFlagACK
	b := encode(t, s)
	eth := packet.Ethernet(b)
	if eth.Src() != clientMAC || eth.Dst() != lbMAC || eth.EtherType() != packet.EtherTypeVLAN {
		t.Errorf("Ethernet %v %v %#x", eth.Src(), eth.Dst(), eth.EtherType())
	}
	eth.SetSrc(lbMAC)
	eth.SetDst(clientMAC)
	if eth.Src() != lbMAC || eth.Dst() != clientMAC {
		t.Errorf("after Set: Ethernet %v %v", eth.Src(), eth.Dst())
	}
	ip := packet.IPv4(b[18:])
	if ip.Version() != 4 || ip.TOS() != 0 || ip.ID() != 0 || !ip.DontFragment() || ip.MoreFragments() ||
		ip.FragmentOffset() != 0 || ip.TTL() != 17 || ip.Protocol() != packet.ProtoTCP ||
		ip.Src() != client4.As4() || ip.Dst() != vip4.As4() || len(ip.Payload()) != 20 {
		t.Errorf("IPv4 view of %x", []byte(ip))
	}
	setIPv4FlagsFrag(ip, 0x2000|3)
	if !ip.MoreFragments() || ip.FragmentOffset() != 24 || ip.DontFragment() {
		t.Errorf("IPv4 fragment fields of %x", []byte(ip[:8]))
	}
	tcp := packet.TCP(ip.Payload())
	if tcp.Seq() != s.Seq || tcp.Ack() != s.Ack || tcp.DataOffset() != 20 || tcp.Window() != 0xffff ||
		tcp.UrgentPointer() != 0 || tcp.Flags() != s.TCPFlags {
		t.Errorf("TCP view of %x", []byte(tcp))
	}

	s6 := spec(client6, vip6, packet.ProtoSCTP)
	s6.SCTPChunk, s6.Payload = packet.SCTPChunkCookieEcho, []byte{1, 2, 3}
	b = encode(t, s6)
	ip6 := packet.IPv6(b[l3:])
	if ip6.Version() != 6 || ip6.TrafficClass() != 0 || ip6.FlowLabel() != 0 || ip6.HopLimit() != 64 ||
		ip6.NextHeader() != packet.ProtoSCTP || ip6.Src() != client6.As16() || ip6.Dst() != vip6.As16() || ip6.PayloadLen() != 20 {
		t.Errorf("IPv6 view of %x", []byte(ip6))
	}
	ip6[0], ip6[1], ip6[2], ip6[3] = 0x6a, 0xbc, 0xde, 0xf1
	ip6.SetHopLimit(3)
	if ip6.TrafficClass() != 0xab || ip6.FlowLabel() != 0xcdef1 || ip6.HopLimit() != 3 {
		t.Errorf("IPv6 traffic class %#x, flow label %#x", ip6.TrafficClass(), ip6.FlowLabel())
	}
	sctp := packet.SCTP(b[l4v6:])
	if sctp.ChunkType() != packet.SCTPChunkCookieEcho || sctp.ChunkFlags() != 0 || sctp.ChunkLen() != 7 ||
		sctp.Checksum() != sctp.ComputeChecksum() {
		t.Errorf("SCTP view of %x", []byte(sctp))
	}

	b = icmpError(t, packet.ICMPv4DestUnreachable, packet.ICMPv4CodeFragNeeded, 1400, reply(t, vip4, client4, packet.ProtoTCP, 8), true)
	icmp := packet.ICMPv4(b[l4v4:])
	if icmp.Type() != 3 || icmp.Code() != 4 || icmp.MTU() != 1400 || icmp.Rest() != 1400 || !icmp.IsError() ||
		len(icmp.Body()) != 28 || packet.Checksum(icmp, 0) != 0xffff {
		t.Errorf("ICMPv4 view of %x", []byte(icmp))
	}
	b = icmpError(t, packet.ICMPv6PacketTooBig, 0, 70000, reply(t, vip6, client6, packet.ProtoTCP, 8), false)
	icmp6 := packet.ICMPv6(b[l4v6:])
	if icmp6.Type() != 2 || icmp6.Code() != 0 || icmp6.MTU() != 70000 || icmp6.Rest() != 70000 || !icmp6.IsError() ||
		len(icmp6.Body()) != 48 {
		t.Errorf("ICMPv6 view of %x", []byte(icmp6))
	}
	ip6 = packet.IPv6(b[l3:])
	if packet.Checksum(icmp6, packet.PseudoHeaderSum6(ip6.Src(), ip6.Dst(), packet.ProtoICMPv6, uint32(len(icmp6)))) != 0xffff {
		t.Errorf("ICMPv6 checksum %#04x invalid", icmp6.Checksum())
	}
	for typ := range 256 {
		want4 := typ == 3 || typ == 11 || typ == 12
		want6 := typ >= 1 && typ <= 4
		icmp[0], icmp6[0] = byte(typ), byte(typ)
		if icmp.IsError() != want4 || icmp6.IsError() != want6 {
			t.Errorf("type %d: ICMPv4 IsError %v, ICMPv6 IsError %v", typ, icmp.IsError(), icmp6.IsError())
		}
	}
}

// TestParseLongIPv6: an IPv6 packet longer than 65535 bytes is legal but does
// not fit Flow.Len; no AF_XDP frame is that long, so Parse refuses it rather
// than report a wrong length.
func TestParseLongIPv6(t *testing.T) {
	s := spec(client6, vip6, packet.ProtoUDP)
	s.Payload = make([]byte, 65535-48)
	frame := encode(t, s)
	var f packet.Flow
	if r := packet.Parse(frame, &f); r != packet.OK || f.Len != 65535 {
		t.Fatalf("Parse(65535-byte IPv6 packet) = %v, Len %d; want OK, 65535", r, f.Len)
	}
	frame = append(clone(frame), make([]byte, 40)...)
	binary.BigEndian.PutUint16(frame[l3+4:], 65535)
	binary.BigEndian.PutUint16(frame[l4v6+4:], 65535)
	if r := packet.Parse(frame, &f); r != packet.BadIPHeader {
		t.Errorf("Parse(65575-byte IPv6 packet) = %v, want BadIPHeader", r)
	}
}
