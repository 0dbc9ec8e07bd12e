package packet

import "net/netip"

// Flow is what Parse extracts from a frame: the flow key and the few other
// facts the forwarder needs. Parse fills it in place, so one Flow per worker,
// reused for every frame, costs no allocation. Only OK guarantees every field;
// after another Reason, fields parsed before the problem are set (e.g.
// addresses for IPFragment) and the rest are zero.
type Flow struct {
	// L3Off is the offset of the IP header in the frame: 14, plus 4 per VLAN
	// tag.
	L3Off uint16
	// L4Off is the offset of the L4 header, after IPv4 options and IPv6
	// extension headers; for an ICMP error, of the ICMP header.
	L4Off uint16
	// VLAN is the VLAN ID of the outermost tag, 0 if untagged.
	VLAN uint16
	// Family is 4 or 6.
	Family uint8
	// Proto is the flow's L4 protocol: ProtoTCP, ProtoUDP or ProtoSCTP,
	// which for an ICMP error is the quoted packet's.
	Proto uint8
	// TCPFlags is the flag byte of a TCP header; zero for ICMP errors.
	TCPFlags uint8
	// SCTPChunk is the type of the first SCTP chunk; zero (which is also
	// SCTPChunkData) for ICMP errors, whose 8 quoted bytes end before it.
	SCTPChunk uint8
	// ICMPError is set when the frame is an ICMP or ICMPv6 error quoting a
	// packet of one of our flows. The quoted packet went from the VIP to the
	// client (the server's reply), so Parse swaps it back: Src, SrcPort,
	// Dst and DstPort describe the flow as the client sent it, and a
	// lookup by the same key as for the client's own packets finds the
	// flow. Proto and SCTPTag come from the quote, Family, L3Off, L4Off,
	// VLAN and Len from the outer packet.
	ICMPError bool
	// Src and Dst are the addresses, IPv4 as IPv4-mapped IPv6
	// (::ffff:a.b.c.d) so that one key type serves both families.
	Src, Dst [16]byte
	// SrcPort and DstPort are the L4 ports.
	SrcPort, DstPort uint16
	// SCTPTag is the SCTP verification tag; for an ICMP error, the tag of the
	// quoted packet.
	SCTPTag uint32
	// Len is the IP packet length as on the wire, header included, without
	// link-layer padding: IPv4 total length, or 40 plus the IPv6 payload
	// length.
	Len uint16
}

// SrcAddr returns Src as a netip.Addr, a 4-byte address for Family 4.
func (f *Flow) SrcAddr() netip.Addr { return f.addr(&f.Src) }

// DstAddr returns Dst as a netip.Addr, a 4-byte address for Family 4.
func (f *Flow) DstAddr() netip.Addr { return f.addr(&f.Dst) }

func (f *Flow) addr(a *[16]byte) netip.Addr {
	if f.Family == 4 {
		return netip.AddrFrom4([4]byte(a[12:16]))
	}
	return netip.AddrFrom16(*a)
}
