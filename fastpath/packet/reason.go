package packet

// Reason names why Parse did not accept a frame; OK (zero) means it did. Every
// value below NumReasons has a String usable as a metric label, so drop
// counters can be an array: var drops [packet.NumReasons]uint64.
type Reason uint8

// Reasons Parse returns. New reasons are added before NumReasons; the values
// are not stable across versions and should not be stored or sent.
const (
	// OK: the frame is an IPv4 or IPv6 TCP, UDP or SCTP packet, or an ICMP
	// error quoting one, and every Flow field is set.
	OK Reason = iota
	// NotIP: the EtherType after any VLAN tags is neither IPv4 nor IPv6.
	NotIP
	// Truncated: the frame ends before the Ethernet or IP header does, or
	// before the IP total length says the packet ends.
	Truncated
	// BadIPHeader: wrong version, IHL below 5, total length shorter than
	// the header, or an IPv6 extension header chain that overruns the
	// packet or has Hop-by-Hop Options other than first.
	BadIPHeader
	// IPFragment: an IPv4 fragment (MF set or nonzero offset, so first and
	// later fragments alike) or an IPv6 packet with a Fragment header. Only
	// the first fragment carries ports, so the flow cannot be looked up;
	// fragments are counted and dropped. Family, Src, Dst, L3Off and Len are
	// set.
	IPFragment
	// IPv6ExtHeaders: more than MaxIPv6ExtHeaders extension headers, or one
	// Parse does not skip (Mobility, HIP, Shim6, experimental).
	IPv6ExtHeaders
	// UnsupportedProto: the L4 protocol (or, in an ICMP error, the quoted
	// packet's) is not TCP, UDP or SCTP, or not ICMP for the IP family, or
	// is ESP or No Next Header. Proto is not set.
	UnsupportedProto
	// BadL4Header: the IP payload is too short for the L4 header, a TCP data
	// offset is below 5 or overruns the payload, a UDP length is below 8 or
	// overruns the payload, the first SCTP chunk length is below 4 or
	// overruns the packet, or an ICMP message is shorter than 8 bytes.
	BadL4Header
	// ICMPNotError: an ICMP message that quotes no packet (echo and the
	// like); Proto is ProtoICMP or ProtoICMPv6.
	ICMPNotError
	// ICMPQuoteTruncated: an ICMP error whose quote ends before the quoted
	// IP header and 8 bytes of L4 header do.
	ICMPQuoteTruncated
	// ICMPBadQuote: an ICMP error quoting something other than an IP packet
	// of the same family, a non-first fragment, which has no ports, or an
	// IPv6 packet with an IPv4-mapped address (never on the wire; it
	// would alias an IPv4 flow).
	ICMPBadQuote
	// VLANTooDeep: more than MaxVLANTags stacked VLAN tags.
	VLANTooDeep
	// L2NotUnicast: the destination MAC is a group (broadcast or
	// multicast) address. A switch floods such a frame to every host on
	// the segment, servers included, so forwarding it too would deliver
	// the packet twice; no router sends a VIP's traffic that way.
	L2NotUnicast
	// ZeroTTL: an IPv4 TTL or IPv6 hop limit of 0, which no host sends and
	// no router forwards (RFC 1812 section 5.3.1, RFC 8200 section 3).
	// Family, Src, Dst, L3Off and Len are set.
	ZeroTTL
	// MartianAddress: a source no client can have (unspecified, loopback,
	// multicast, IPv4 limited broadcast, "this network" 0.0.0.0/8), an
	// IPv4-mapped IPv6 source or destination (RFC 4291 section 2.5.5.2:
	// never on the wire; in a Flow it would alias the IPv4 address), or a
	// source equal to the destination (a client "at" the VIP, the land
	// attack). Family, Src, Dst, L3Off and Len are set.
	MartianAddress

	// NumReasons is the number of Reason values, for sizing counter arrays.
	NumReasons
)

var reasonNames = [NumReasons]string{
	OK:                 "ok",
	NotIP:              "not_ip",
	Truncated:          "truncated",
	BadIPHeader:        "bad_ip_header",
	IPFragment:         "ip_fragment",
	IPv6ExtHeaders:     "ipv6_ext_headers",
	UnsupportedProto:   "unsupported_proto",
	BadL4Header:        "bad_l4_header",
	ICMPNotError:       "icmp_not_error",
	ICMPQuoteTruncated: "icmp_quote_truncated",
	ICMPBadQuote:       "icmp_bad_quote",
	VLANTooDeep:        "vlan_too_deep",
	L2NotUnicast:       "l2_not_unicast",
	ZeroTTL:            "ttl_zero",
	MartianAddress:     "martian_address",
}

// String returns the reason's snake_case metric label, or "unknown" for a
// value not below NumReasons.
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}
