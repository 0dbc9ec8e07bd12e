package fastpath

// IPIP and GUE forwarding (forwarding = "ipip" | "gue"): the client's IP
// packet, unchanged, inside an outer IP header (and, for GUE, a UDP and a
// GUE header) addressed to the chosen server, which may sit on any subnet
// the kernel routes to. The server decapsulates (Linux `ipip`/`ip6tnl`
// devices in external mode, `fou` with `gue`, or ipfront's own decap
// program, fastpath/decap), holds the VIP on a loopback interface and
// answers the client directly: DSR, ipfront sees no replies.
//
// # Frames
//
//	in:   Ethernet [VLAN] | inner IP (client -> VIP) ...           [padding]
//	ipip: Ethernet [VLAN] | outer IP (proto 4 or 41) | inner IP ...
//	gue:  Ethernet [VLAN] | outer IP (proto 17) | UDP | GUE | inner IP ...
//
// The outer family is the server's (an IPv4 VIP may be served over IPv6 and
// the reverse); the inner packet is the client's, byte for byte: TTL,
// options and checksums untouched, Ethernet padding dropped. The VLAN tag
// is kept as received, the EtherType becomes the outer family's, the MACs
// those of the server's next hop (Server.Egress, Server.MAC[Egress], from
// the kernel's route to the server, as for NAT) and of the egress interface.
//
// Outer IPv4: IHL 5, the inner TOS / traffic class (DSCP and ECN, the RFC
// 6040 normal mode), identification 0 with DF set (RFC 6864: an atomic
// datagram; ipfront never fragments), TTL 64, header checksum computed.
// Outer IPv6: the inner traffic class, a flow label from the flow hash (ECMP
// and RSS on the way), hop limit 64.
//
// GUE is variant 0 (draft-ietf-intarea-gue): a 4-byte header with no
// optional fields, version 0, C 0, Hlen 0, Proto/ctype the inner protocol
// (4 for IPv4, 41 for IPv6), flags 0. The UDP destination port is
// Encap.Port; the UDP checksum is 0 over IPv4 (RFC 768 allows it; the inner
// packet carries its own checksums) and computed over IPv6, where a zero
// checksum is not allowed (RFC 8200) unless the receiver opts in.
//
// # Spreading over the servers' queues
//
// A server's NIC picks its RX queue by hashing the outer header, so every
// flow would land on one queue if the outer addresses were fixed. The outer
// source is therefore chosen per flow from Encap.Src4 / Src6: the prefix's
// host bits (at most 32 of them) come from the flow's hash, so a /24 gives
// the server up to 254 sources to spread; GUE adds a UDP source port from
// the hash (49152..65535, RFC 7605's dynamic range), and outer IPv6 a flow
// label. The same flow always gets the same outer header, so its packets
// stay in order on one queue. A /32 (/128) prefix is one fixed source.
//
// # Size
//
// The frame grows by the outer headers: 20 (IPIP over IPv4), 40 (over
// IPv6), 32 (GUE over IPv4) or 52 (GUE over IPv6) bytes. It is grown in
// place: the inner packet moves towards the end of its UMEM frame, whose
// capacity (the frame size less the kernel's headroom: 1792 bytes with 2048-
// byte frames) bounds the result. A frame whose encapsulated form exceeds
// that capacity or Encap.MTU (the outer IP packet's limit on the path to the
// servers) is dropped as encap_too_big: ipfront sets DF and does not
// fragment, and it does not answer with an ICMP "fragmentation needed" of
// its own. Operators keep frames within the limit (README "IPIP and GUE"):
// a path MTU towards the servers of at least the clients' MTU plus the
// overhead (jumbo frames between ipfront and the servers), or the servers
// advertise a smaller TCP MSS (`ip route ... advmss`, the MTU less 40 and
// the overhead) so that clients never send larger segments. ICMP errors
// routers on the client's side send about the servers' replies (frag
// needed, packet too big) reach the quoted flow's server encapsulated like
// its other packets; errors about the outer packets go to the outer source,
// which should route back to ipfront's host.
//
// The frame's new length reaches the worker through Process: frames[i] is
// re-sliced after the batch (encapState). Injected frames (ProcessInjected)
// never belong to an encapsulating set: only NAT sets have helpers.

import (
	"encoding/binary"
	"net/netip"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// Outer header sizes.
const (
	encapIPv4Len = packet.IPv4MinHeaderLen
	encapIPv6Len = packet.IPv6HeaderLen
	encapUDPLen  = 8
	encapGUELen  = 4 // variant 0, no optional fields
	// EncapMaxOverhead is the most a frame grows by: GUE over IPv6.
	EncapMaxOverhead = encapIPv6Len + encapUDPLen + encapGUELen
	// DefaultGUEPort is the usual GUE destination port (Katran's and the
	// Linux fou examples').
	DefaultGUEPort = 6080
	// encapTTL is the outer TTL / hop limit.
	encapTTL = 64
	// IP protocol numbers of the inner packet in the outer header.
	protoIPIP = 4  // IPv4 in IP
	protoIPv6 = 41 // IPv6 in IP
	// ethTypeIPv4 and ethTypeIPv6 are the outer EtherTypes.
	ethTypeIPv4 = 0x0800
	ethTypeIPv6 = 0x86dd
	// ipv4FlagDF is the don't-fragment bit of the flags/offset word.
	ipv4FlagDF = 0x4000
	// gueSportBase is the first UDP source port GUE uses; the hash fills
	// the low 14 bits.
	gueSportBase = 0xc000
)

// Encap is the outer header configuration of an IPIP or GUE target set.
type Encap struct {
	// Src4 and Src6 are the outer sources towards IPv4 and IPv6 servers.
	// A family without one drops its frames as encap_no_source.
	Src4, Src6 EncapSource
	// Port is GUE's UDP destination port (0: DefaultGUEPort).
	Port uint16
	// MTU is the largest outer IP packet the path to the servers carries
	// (0: only the UMEM frame's capacity limits it).
	MTU uint16
}

// EncapSource is a prefix the outer source address is drawn from per flow.
type EncapSource struct {
	base [16]byte // IPv4-mapped for IPv4, host bits zero
	mask uint32   // host bits taken from the flow hash, in the last 4 bytes
	ok   bool
}

// NewEncapSource returns the source prefix p (IPv4 or IPv6). At most its
// last 32 host bits vary; a single address (/32, /128) is a fixed source.
func NewEncapSource(p netip.Prefix) EncapSource {
	if !p.IsValid() {
		return EncapSource{}
	}
	p = p.Masked()
	host := p.Addr().BitLen() - p.Bits()
	var s EncapSource
	s.base = p.Addr().As16()
	s.mask = uint32(uint64(1)<<min(host, 32) - 1)
	s.ok = true
	return s
}

// IsValid reports whether s holds a prefix.
func (s EncapSource) IsValid() bool { return s.ok }

// Pick returns the outer source of a flow with hash h, in its 16 bytes
// (IPv4-mapped for IPv4). Host parts of all zeros and all ones (an IPv4
// network's own and broadcast addresses) are avoided when the prefix has
// more than two addresses.
func (s *EncapSource) Pick(h uint64) [16]byte {
	a := s.base
	if s.mask == 0 {
		return a
	}
	host := uint32(h) & s.mask
	if s.mask > 1 {
		switch host {
		case 0:
			host = 1
		case s.mask:
			host = s.mask - 1
		}
	}
	last := binary.BigEndian.Uint32(a[12:])
	binary.BigEndian.PutUint32(a[12:], last|host)
	return a
}

// encapState carries the batch's new frame lengths to Process, which
// re-slices the frames once the batch is decided.
type encapState struct {
	idx  [MaxBatch]uint16 // frames whose length changed
	lens [MaxBatch]uint16 // their new lengths
	n    int
}

// resize re-slices the frames forwardEncap grew (frames of the batch just
// processed) and forgets them.
func (s *encapState) resize(frames [][]byte) {
	for j := 0; j < s.n; j++ {
		i := s.idx[j]
		frames[i] = frames[i][:s.lens[j]]
	}
	s.n = 0
}

// forwardEncap wraps frame i, a client's packet for slot of ts (or an ICMP
// error about one of its flows), in an outer IP (and UDP and GUE) header to
// the server and addresses it to the server's next hop.
func (e *Engine) forwardEncap(frame []byte, ts *TargetSet, slot uint8, i int) Action {
	f := &e.flows[i]
	srv := &ts.Servers[slot]
	eg := srv.Egress
	if !srv.HasMAC[eg] {
		e.local.Drops[DropNeighborUnresolved]++
		return Drop
	}
	outer4 := srv.Addr.Is4()
	src, hl := &ts.Encap.Src6, encapIPv6Len
	if outer4 {
		src, hl = &ts.Encap.Src4, encapIPv4Len
	}
	if !src.ok {
		e.local.Drops[DropEncapNoSource]++
		return Drop
	}
	gue := ts.Forwarding == FwdGUE
	if gue {
		hl += encapUDPLen + encapGUELen
	}
	l3, inner := int(f.L3Off), int(f.Len)
	total := l3 + hl + inner
	if total > cap(frame) || ts.Encap.MTU != 0 && hl+inner > int(ts.Encap.MTU) {
		e.local.Drops[DropEncapTooBig]++
		return Drop
	}
	out := frame[:total]
	copy(out[l3+hl:], frame[l3:l3+inner]) // memmove: the regions overlap
	ip := out[l3 : l3+hl]
	in := out[l3+hl:]
	var tos uint8
	proto := uint8(protoIPIP)
	if f.Family == 4 {
		tos = in[1]
	} else {
		tos = in[0]<<4 | in[1]>>4
		proto = protoIPv6
	}
	h := e.hashes[i]
	s := src.Pick(h)
	d := srv.Addr.As16()
	next := proto
	if gue {
		next = packet.ProtoUDP
	}
	var udp []byte
	if outer4 {
		binary.BigEndian.PutUint16(out[l3-2:], ethTypeIPv4)
		ip[0] = 4<<4 | encapIPv4Len/4
		ip[1] = tos
		binary.BigEndian.PutUint16(ip[2:], uint16(hl+inner))
		binary.BigEndian.PutUint32(ip[4:], ipv4FlagDF) // identification 0, DF, offset 0
		ip[8], ip[9] = encapTTL, next
		ip[10], ip[11] = 0, 0
		copy(ip[12:16], s[12:])
		copy(ip[16:20], d[12:])
		binary.BigEndian.PutUint16(ip[10:], ^packet.Checksum(ip[:encapIPv4Len], 0))
		udp = ip[encapIPv4Len:]
	} else {
		binary.BigEndian.PutUint16(out[l3-2:], ethTypeIPv6)
		binary.BigEndian.PutUint32(ip[0:], 6<<28|uint32(tos)<<20|uint32(h>>40)&0xfffff)
		binary.BigEndian.PutUint16(ip[4:], uint16(hl-encapIPv6Len+inner))
		ip[6], ip[7] = next, encapTTL
		copy(ip[8:24], s[:])
		copy(ip[24:40], d[:])
		udp = ip[encapIPv6Len:]
	}
	if gue {
		ulen := encapUDPLen + encapGUELen + inner
		port := ts.Encap.Port
		if port == 0 {
			port = DefaultGUEPort
		}
		binary.BigEndian.PutUint16(udp[0:], gueSportBase|uint16(h>>32)&0x3fff)
		binary.BigEndian.PutUint16(udp[2:], port)
		binary.BigEndian.PutUint16(udp[4:], uint16(ulen))
		binary.BigEndian.PutUint16(udp[6:], 0)
		binary.BigEndian.PutUint32(udp[8:], uint32(proto)<<16) // version 0, C 0, Hlen 0, proto, flags 0
		if !outer4 {
			var sa, da [16]byte = s, d
			sum := packet.Checksum(out[l3+encapIPv6Len:], packet.PseudoHeaderSum6(sa, da, packet.ProtoUDP, uint32(ulen)))
			binary.BigEndian.PutUint16(udp[6:], udpSum(^sum))
		}
	}
	e.toward(out, i, eg, srv.MAC[eg])
	st := &e.encap
	st.idx[st.n], st.lens[st.n] = uint16(i), uint16(total)
	st.n++
	e.local.Forwarded[ts.Forwarding]++
	return Transmit
}
