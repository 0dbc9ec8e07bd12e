package v1

import (
	"net/netip"
	"time"
)

// BGP is the body of GET /v1/bgp, POST /v1/node/drain and POST
// /v1/node/undrain: how this instance announces its VIPs ([bgp]).
type BGP struct {
	// Mode is "speaker" (embedded BGP speaker) or "kernel" (host routes in
	// a kernel table the site's routing daemon exports); "" without [bgp].
	Mode string `json:"mode"`
	// NodeDrained is set by POST /v1/node/drain: every VIP withdrawn while
	// the data plane keeps forwarding what still arrives.
	NodeDrained bool `json:"node_drained"`
	// Stopping is set once the daemon was told to stop: every VIP is
	// withdrawn and it forwards until [bgp] drain_time ends.
	Stopping bool `json:"stopping"`
	// Announced are the host routes the routers are told (or, in kernel
	// mode, that are in the table); Withdrawn the VIPs configured but not
	// announced (no eligible server, node drained, stopping or not ready).
	Announced []netip.Prefix `json:"announced"`
	Withdrawn []netip.Prefix `json:"withdrawn"`
	// Neighbors are the speaker's BGP sessions, in configuration order.
	Neighbors []BGPNeighbor `json:"neighbors"`
}

// BGPNeighbor is one BGP session of the embedded speaker.
type BGPNeighbor struct {
	Address netip.Addr `json:"address"`
	ASN     uint32     `json:"asn"`
	// State is the RFC 4271 session state: idle, connect, active,
	// opensent, openconfirm or established.
	State string `json:"state"`
	// Since is when the session was last established; absent if never.
	Since      *time.Time `json:"since,omitempty"`
	Advertised uint64     `json:"advertised"` // prefixes sent
	Received   uint64     `json:"received"`   // prefixes learned from the router
}
