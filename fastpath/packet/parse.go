package packet

import "encoding/binary"

// Parse parses the Ethernet frame into f and says whether the forwarder can
// handle it; see Reason for what is refused and why. It validates every
// length it reads: the frame may carry link-layer padding after the IP
// packet, but must not end before it. It does not verify checksums, which the
// hosts behind the balancer check anyway. Parse never panics and never
// allocates, whatever the input, and reads nothing past the IP packet.
func Parse(frame []byte, f *Flow) Reason {
	// Reset first: a worker reuses one Flow, and a field the previous
	// frame set (VLAN, TCPFlags, ...) must not leak into this one.
	*f = Flow{}
	if len(frame) < EthernetHeaderLen {
		return Truncated
	}
	if frame[ethDst]&1 != 0 {
		return L2NotUnicast // the I/G bit: broadcast or multicast
	}
	et := binary.BigEndian.Uint16(frame[ethType : ethType+2])
	off := EthernetHeaderLen
	if et == EtherTypeVLAN || et == EtherTypeQinQ {
		var r Reason
		if et, off, r = parseVLAN(frame, f); r != OK {
			return r
		}
	}
	switch et {
	case EtherTypeIPv4:
		return parseIPv4(frame, off, f)
	case EtherTypeIPv6:
		return parseIPv6(frame, off, f)
	}
	return NotIP
}

// parseVLAN skips up to MaxVLANTags tags, recording the outer VLAN ID, and
// returns the payload EtherType and its offset.
func parseVLAN(frame []byte, f *Flow) (uint16, int, Reason) {
	off := EthernetHeaderLen
	et := uint16(EtherTypeVLAN)
	for tags := 0; et == EtherTypeVLAN || et == EtherTypeQinQ; tags++ {
		if tags == MaxVLANTags {
			return et, off, VLANTooDeep
		}
		// off is just past the TPID: TCI, then the next EtherType.
		tag := frame[off:]
		if len(tag) < VLANTagLen {
			return et, off, Truncated
		}
		if tags == 0 {
			f.VLAN = binary.BigEndian.Uint16(tag[0:2]) & vlanIDMask
		}
		et = binary.BigEndian.Uint16(tag[2:4])
		off += VLANTagLen
	}
	return et, off, OK
}

func parseIPv4(frame []byte, off int, f *Flow) Reason {
	ip := frame[off:]
	if len(ip) < IPv4MinHeaderLen {
		return Truncated
	}
	hl := int(ip[ipv4VersionIHL]&0xf) * 4
	if ip[ipv4VersionIHL]>>4 != 4 || hl < IPv4MinHeaderLen {
		return BadIPHeader
	}
	tl := int(binary.BigEndian.Uint16(ip[ipv4TotalLen : ipv4TotalLen+2]))
	if tl < hl {
		return BadIPHeader
	}
	if tl > len(ip) {
		return Truncated
	}
	f.Family = 4
	f.L3Off = uint16(off)
	f.Len = uint16(tl)
	setMapped(&f.Src, ip[ipv4Src:ipv4Src+4])
	setMapped(&f.Dst, ip[ipv4Dst:ipv4Dst+4])
	if martian4(ip[ipv4Src:ipv4Src+4], ip[ipv4Dst:ipv4Dst+4]) {
		return MartianAddress
	}
	if ip[ipv4TTL] == 0 {
		return ZeroTTL
	}
	if binary.BigEndian.Uint16(ip[ipv4FlagsFrag:ipv4FlagsFrag+2])&ipv4FragmentMask != 0 {
		return IPFragment
	}
	proto := ip[ipv4Protocol]
	f.L4Off = uint16(off + hl)
	if proto == ProtoICMP {
		return parseICMPv4(ip[hl:tl], f)
	}
	return parseL4(ip[hl:tl], proto, f)
}

func parseIPv6(frame []byte, off int, f *Flow) Reason {
	ip := frame[off:]
	if len(ip) < IPv6HeaderLen {
		return Truncated
	}
	if ip[ipv6VersionTC]>>4 != 6 {
		return BadIPHeader
	}
	tl := IPv6HeaderLen + int(binary.BigEndian.Uint16(ip[ipv6PayloadLen:ipv6PayloadLen+2]))
	if tl > len(ip) {
		return Truncated
	}
	if tl > maxPacketLen {
		// Legal, but Len cannot hold it, and no AF_XDP frame is this
		// large: a single-buffer frame is at most a page.
		return BadIPHeader
	}
	f.Family = 6
	f.L3Off = uint16(off)
	f.Len = uint16(tl)
	f.Src = [16]byte(ip[ipv6Src : ipv6Src+16])
	f.Dst = [16]byte(ip[ipv6Dst : ipv6Dst+16])
	if martian6(&f.Src, &f.Dst) {
		return MartianAddress
	}
	if ip[ipv6HopLimit] == 0 {
		return ZeroTTL
	}
	ip = ip[:tl]
	proto, l4, r := ip[ipv6NextHeader], IPv6HeaderLen, OK
	if proto != ProtoTCP && proto != ProtoUDP {
		if proto, l4, r = skipIPv6Ext(ip, proto, l4, BadIPHeader, false); r != OK {
			return r
		}
	}
	f.L4Off = uint16(off + l4)
	if proto == ProtoICMPv6 {
		return parseICMPv6(ip[l4:], f)
	}
	return parseL4(ip[l4:], proto, f)
}

// parseL4 reads the ports and the protocol's extras from l4, which holds the
// L4 header and payload up to the end of the IP packet.
func parseL4(l4 []byte, proto uint8, f *Flow) Reason {
	switch proto {
	case ProtoTCP:
		if len(l4) < TCPMinHeaderLen {
			return BadL4Header
		}
		doff := int(l4[tcpDataOffset]>>4) * 4
		if doff < TCPMinHeaderLen || doff > len(l4) {
			return BadL4Header
		}
		f.TCPFlags = l4[tcpFlags]
		f.SrcPort = binary.BigEndian.Uint16(l4[tcpSrcPort : tcpSrcPort+2])
		f.DstPort = binary.BigEndian.Uint16(l4[tcpDstPort : tcpDstPort+2])
	case ProtoUDP:
		if len(l4) < UDPHeaderLen {
			return BadL4Header
		}
		// The length may be below the IP payload (Linux trims the excess)
		// but not above it.
		ulen := int(binary.BigEndian.Uint16(l4[udpLength : udpLength+2]))
		if ulen < UDPHeaderLen || ulen > len(l4) {
			return BadL4Header
		}
		f.SrcPort = binary.BigEndian.Uint16(l4[udpSrcPort : udpSrcPort+2])
		f.DstPort = binary.BigEndian.Uint16(l4[udpDstPort : udpDstPort+2])
	case ProtoSCTP:
		if len(l4) < SCTPHeaderLen+SCTPChunkHeaderLen {
			return BadL4Header
		}
		clen := int(binary.BigEndian.Uint16(l4[sctpChunkLen : sctpChunkLen+2]))
		if clen < SCTPChunkHeaderLen || clen > len(l4)-SCTPHeaderLen {
			return BadL4Header
		}
		f.SCTPChunk = l4[sctpChunkType]
		f.SCTPTag = binary.BigEndian.Uint32(l4[sctpVTag : sctpVTag+4])
		f.SrcPort = binary.BigEndian.Uint16(l4[sctpSrcPort : sctpSrcPort+2])
		f.DstPort = binary.BigEndian.Uint16(l4[sctpDstPort : sctpDstPort+2])
	default:
		return UnsupportedProto
	}
	f.Proto = proto
	return OK
}

func parseICMPv4(icmp []byte, f *Flow) Reason {
	if len(icmp) < ICMPHeaderLen {
		return BadL4Header
	}
	if !isICMPv4Error(icmp[icmpType]) {
		f.Proto = ProtoICMP
		return ICMPNotError
	}
	q := icmp[ICMPHeaderLen:]
	if len(q) < IPv4MinHeaderLen {
		return ICMPQuoteTruncated
	}
	hl := int(q[ipv4VersionIHL]&0xf) * 4
	if q[ipv4VersionIHL]>>4 != 4 || hl < IPv4MinHeaderLen {
		return ICMPBadQuote
	}
	// The quoted total length is not checked: the quote is cut short
	// anyway, and old BSD stacks quote it modified.
	if binary.BigEndian.Uint16(q[ipv4FlagsFrag:ipv4FlagsFrag+2])&ipv4FragOffMask != 0 {
		return ICMPBadQuote
	}
	if len(q) < hl {
		return ICMPQuoteTruncated
	}
	return parseQuoteL4(q[hl:], q[ipv4Protocol], q[ipv4Src:ipv4Src+4], q[ipv4Dst:ipv4Dst+4], f)
}

func parseICMPv6(icmp []byte, f *Flow) Reason {
	if len(icmp) < ICMPHeaderLen {
		return BadL4Header
	}
	if !isICMPv6Error(icmp[icmpType]) {
		f.Proto = ProtoICMPv6
		return ICMPNotError
	}
	q := icmp[ICMPHeaderLen:]
	if len(q) < IPv6HeaderLen {
		return ICMPQuoteTruncated
	}
	if q[ipv6VersionTC]>>4 != 6 {
		return ICMPBadQuote
	}
	proto, l4, r := skipIPv6Ext(q, q[ipv6NextHeader], IPv6HeaderLen, ICMPQuoteTruncated, true)
	switch r {
	case OK:
	case BadIPHeader, IPFragment:
		return ICMPBadQuote
	default:
		return r
	}
	if isMapped(q[ipv6Src:ipv6Src+16]) || isMapped(q[ipv6Dst:ipv6Dst+16]) {
		// In the Flow it would read as the IPv4 address: an IPv6
		// error must not reach an IPv4 flow's server.
		return ICMPBadQuote
	}
	return parseQuoteL4(q[l4:], proto, q[ipv6Src:ipv6Src+16], q[ipv6Dst:ipv6Dst+16], f)
}

// parseQuoteL4 fills f from the L4 header of a quoted packet, which the
// server sent from the VIP (src) to the client (dst), so that f describes the
// flow the other way round, as the client sends it.
func parseQuoteL4(l4 []byte, proto uint8, src, dst []byte, f *Flow) Reason {
	if proto != ProtoTCP && proto != ProtoUDP && proto != ProtoSCTP {
		return UnsupportedProto
	}
	if len(l4) < ICMPQuoteL4Len {
		return ICMPQuoteTruncated
	}
	if len(src) == 4 {
		setMapped(&f.Src, dst)
		setMapped(&f.Dst, src)
	} else {
		f.Src = [16]byte(dst)
		f.Dst = [16]byte(src)
	}
	// Source and destination ports are the first two words of all three.
	f.SrcPort = binary.BigEndian.Uint16(l4[2:4])
	f.DstPort = binary.BigEndian.Uint16(l4[0:2])
	if proto == ProtoSCTP {
		f.SCTPTag = binary.BigEndian.Uint32(l4[sctpVTag : sctpVTag+4])
	}
	f.Proto = proto
	f.ICMPError = true
	return OK
}

// setMapped stores the IPv4 address a as ::ffff:a.b.c.d in dst, which Parse
// has zeroed.
func setMapped(dst *[16]byte, a []byte) {
	dst[10], dst[11] = 0xff, 0xff
	copy(dst[12:], a)
}

// martian4 reports whether an IPv4 packet from src to dst cannot come from a
// client (see MartianAddress). 240.0.0.0/4 other than the limited broadcast
// is let through: some networks number hosts in it.
func martian4(src, dst []byte) bool {
	s := binary.BigEndian.Uint32(src)
	switch {
	case s>>24 == 0, s>>24 == 127, s>>28 == 0xe, s == 0xffffffff:
		return true
	}
	return s == binary.BigEndian.Uint32(dst)
}

// martian6 reports whether an IPv6 packet from src to dst cannot come from a
// client (see MartianAddress).
func martian6(src, dst *[16]byte) bool {
	hi, lo := binary.BigEndian.Uint64(src[:8]), binary.BigEndian.Uint64(src[8:])
	switch {
	case hi == 0 && lo <= 1: // :: and ::1
		return true
	case src[0] == 0xff: // multicast
		return true
	case isMapped(src[:]), isMapped(dst[:]):
		return true
	}
	return *src == *dst
}

// isMapped reports whether the 16-byte address a is IPv4-mapped
// (::ffff:0:0/96).
func isMapped(a []byte) bool {
	return binary.BigEndian.Uint64(a[:8]) == 0 && binary.BigEndian.Uint32(a[8:12]) == 0xffff
}
