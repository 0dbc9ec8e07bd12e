package packet

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), which in
// IPv6 double as extension header types.
const (
	ProtoHopByHop = 0   // IPv6 Hop-by-Hop Options
	ProtoICMP     = 1   // ICMP for IPv4
	ProtoTCP      = 6   // TCP
	ProtoUDP      = 17  // UDP
	ProtoRouting  = 43  // IPv6 Routing header
	ProtoFragment = 44  // IPv6 Fragment header
	ProtoESP      = 50  // Encapsulating Security Payload
	ProtoAH       = 51  // Authentication Header
	ProtoICMPv6   = 58  // ICMP for IPv6
	ProtoNoNext   = 59  // IPv6 No Next Header
	ProtoDestOpts = 60  // IPv6 Destination Options
	ProtoSCTP     = 132 // SCTP

	protoMobility    = 135
	protoHIP         = 139
	protoShim6       = 140
	protoExperiment1 = 253
	protoExperiment2 = 254
)
