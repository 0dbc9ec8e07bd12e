package config

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The [bgp] table and its [[bgp.neighbor]]s: how the VIPs are announced to
// the routers in front of ipfront (issue 11). Absent, nothing is announced
// and the routers must be given static routes.
//
//	[bgp]
//	asn = 64512                  # this instance's AS, 1..4294967295
//	router_id = "198.51.100.1"   # speaker mode: the BGP identifier, an IPv4 address
//	mode = "speaker"             # "speaker" (embedded GoBGP) or "kernel" (routes for the site's daemon)
//	drain_time = "5s"            # on SIGTERM: withdraw, then keep forwarding this long
//	med = 10                     # optional MULTI_EXIT_DISC on every announcement
//	communities = ["64512:100"]  # optional standard communities (or "no-export", "no-advertise")
//	kernel_table = 100           # kernel mode: the routing table the VIP host routes go in
//	listen_port = 179            # speaker mode: 0 connects out only
//
//	[[bgp.neighbor]]             # speaker mode: one or more
//	address = "198.51.100.254"   # the router, on the shared segment
//	asn = 64500
//	password = "..."             # optional TCP MD5 (RFC 2385)
//	hold_time = "9s"             # optional, 3s..65535s; default 90s
//
// A neighbour's address family decides which VIPs it learns: IPv4 VIPs over
// IPv4 sessions, IPv6 VIPs over IPv6 sessions, each with the session's local
// address (ipfront's address on the shared segment) as the next hop.

// BGP modes.
const (
	BGPSpeaker = "speaker" // the embedded speaker peers with the routers
	BGPKernel  = "kernel"  // VIP host routes in a kernel table the site's routing daemon exports
)

// BGP defaults and bounds.
const (
	DefaultDrainTime   = 5 * time.Second
	maxDrainTime       = 10 * time.Minute
	DefaultHoldTime    = 90 * time.Second
	DefaultKernelTable = 100
	defaultBGPPort     = 179
	maxNeighbors       = 32
	maxCommunities     = 32
)

// BGP is the [bgp] table; Enabled is false when the file has none.
type BGP struct {
	Enabled  bool
	ASN      uint32
	RouterID netip.Addr // speaker mode; an IPv4 address
	Mode     string     // BGPSpeaker or BGPKernel
	// DrainTime is how long a daemon told to stop keeps forwarding after
	// it withdrew its VIPs, so routers move new flows away first: 0..10m.
	DrainTime time.Duration
	// MED is sent with every announcement when MEDSet.
	MED    uint32
	MEDSet bool
	// Communities are RFC 1997 communities, each ASN<<16 | value.
	Communities []uint32
	// KernelTable is the routing table kernel mode installs the VIP host
	// routes in: 1..4294967295 except the local (255) and the main (254)
	// and default (253) tables, which the host itself routes by.
	KernelTable uint32
	// ListenPort is the TCP port the speaker accepts sessions on; 0: it
	// only connects out.
	ListenPort int
	Neighbors  []Neighbor
}

// Neighbor is one [[bgp.neighbor]]: a router the speaker peers with.
type Neighbor struct {
	Address  netip.Addr
	ASN      uint32
	Password string        // TCP MD5 signature key; "" for none
	HoldTime time.Duration // whole seconds, 3s..65535s
}

var (
	bgpSchema = &schema{"[bgp]", []string{
		"asn", "router_id", "mode", "drain_time", "med", "communities", "kernel_table", "listen_port", "neighbor",
	}}
	neighborSchema = &schema{"[[bgp.neighbor]]", []string{"address", "asn", "password", "hold_time"}}
)

// decodeBGP reads [bgp]; ranges and how the keys fit together are
// validate's.
func decodeBGP(t table) BGP {
	if t.m == nil {
		return BGP{}
	}
	t.checkKeys(bgpSchema)
	t.require("asn", "set this instance's AS number: asn = 64512")
	b := BGP{
		Enabled:     true,
		Mode:        t.str("mode", BGPSpeaker),
		DrainTime:   t.duration("drain_time", DefaultDrainTime),
		ASN:         decodeASN(t, "asn"),
		Communities: decodeCommunities(t),
		ListenPort:  t.integer("listen_port", defaultBGPPort),
	}
	if a, ok := t.addr("router_id"); ok {
		b.RouterID = a
	}
	if _, path, ok := t.get("med"); ok {
		b.MED, b.MEDSet = uint32(t.ranged("med", path, 0, math.MaxUint32)), true
	}
	b.KernelTable = DefaultKernelTable
	if _, path, ok := t.get("kernel_table"); ok {
		b.KernelTable = uint32(t.ranged("kernel_table", path, 1, math.MaxUint32))
	}
	for _, nt := range t.tables("neighbor") {
		if nt.m == nil {
			b.Neighbors = append(b.Neighbors, Neighbor{})
			continue
		}
		nt.checkKeys(neighborSchema)
		nt.require("address", `set the router's address: address = "198.51.100.254"`)
		nt.require("asn", "set the router's AS number: asn = 64500")
		n := Neighbor{
			ASN:      decodeASN(nt, "asn"),
			Password: nt.str("password", ""),
			HoldTime: nt.duration("hold_time", DefaultHoldTime),
		}
		n.Address, _ = nt.addr("address")
		b.Neighbors = append(b.Neighbors, n)
	}
	return b
}

// ranged returns the integer at key if it lies in lo..hi, else reports it
// and returns lo.
func (t table) ranged(key, path string, lo, hi int64) int64 {
	n := t.integer(key, int(lo))
	if t.r.muted(path) {
		return lo
	}
	if int64(n) < lo || int64(n) > hi {
		t.r.errorf(path, fmt.Sprintf("%s is %d..%d", key, lo, hi), "%s %d is out of range", key, n)
		return lo
	}
	return int64(n)
}

// decodeASN reads a 4-byte AS number (RFC 6793); 0 is reserved.
func decodeASN(t table, key string) uint32 {
	_, path, ok := t.get(key)
	if !ok {
		return 0
	}
	return uint32(t.ranged(key, path, 1, math.MaxUint32))
}

// wellKnownCommunities are the RFC 1997 communities written by name.
var wellKnownCommunities = map[string]uint32{
	"no-export":           0xFFFFFF01,
	"no-advertise":        0xFFFFFF02,
	"no-export-subconfed": 0xFFFFFF03,
}

// decodeCommunities reads communities: "ASN:value" with both halves
// 0..65535, or a well-known name.
func decodeCommunities(t table) []uint32 {
	strs, _ := t.strings("communities")
	if len(strs) == 0 {
		return nil
	}
	path := join(t.path, "communities")
	out := make([]uint32, 0, len(strs))
	for i, s := range strs {
		ep := elem(path, i)
		if t.r.muted(ep) {
			continue
		}
		c, ok := ParseCommunity(s)
		if !ok {
			t.r.errorf(ep, `write "ASN:value" with both parts 0..65535, such as "64512:100", or "no-export"`,
				"invalid community %s", quote(s))
			continue
		}
		out = append(out, c)
	}
	if len(strs) > maxCommunities {
		t.r.errorf(path, fmt.Sprintf("list at most %d", maxCommunities), "%d communities", len(strs))
	}
	return out
}

// ParseCommunity parses an RFC 1997 community: "ASN:value" (each 0..65535)
// or one of no-export, no-advertise, no-export-subconfed.
func ParseCommunity(s string) (uint32, bool) {
	if c, ok := wellKnownCommunities[strings.ToLower(s)]; ok {
		return c, true
	}
	hi, lo, ok := strings.Cut(s, ":")
	if !ok {
		return 0, false
	}
	a, err1 := strconv.ParseUint(hi, 10, 16)
	b, err2 := strconv.ParseUint(lo, 10, 16)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return uint32(a)<<16 | uint32(b), true
}

func (b *BGP) validate(r *reporter) {
	if !b.Enabled {
		return
	}
	r.enum("bgp.mode", b.Mode, []string{BGPSpeaker, BGPKernel}, nil)
	if b.DrainTime < 0 || b.DrainTime > maxDrainTime {
		r.errorf("bgp.drain_time", "use 0s..10m: long enough for the routers to move new flows, a few seconds",
			"drain_time %s is out of range", b.DrainTime)
	}
	switch b.KernelTable {
	case 253, 254, 255:
		r.errorf("bgp.kernel_table", "use a table of its own, such as 100, that your routing daemon exports",
			"table %d is the host's own (default, main or local)", b.KernelTable)
	}
	if b.ListenPort < 0 || b.ListenPort > 65535 {
		r.errorf("bgp.listen_port", "use 1..65535, or 0 to only connect out", "listen_port %d is out of range", b.ListenPort)
	}
	if b.Mode == BGPKernel {
		if len(b.Neighbors) > 0 {
			r.errorf("bgp.neighbor", `remove the neighbours: your routing daemon peers with the routers in mode = "kernel"`,
				"neighbours are for mode = %q", BGPSpeaker)
		}
		return
	}
	if b.Mode != BGPSpeaker {
		return
	}
	switch {
	case !b.RouterID.IsValid() && !r.muted("bgp.router_id"):
		r.errorf("bgp", `set router_id = "198.51.100.1" (usually this instance's IPv4 address)`, "router_id is required in speaker mode")
	case b.RouterID.IsValid() && (!b.RouterID.Is4() || b.RouterID.IsUnspecified()):
		r.errorf("bgp.router_id", `write an IPv4 address such as "198.51.100.1"; it names this speaker, also over IPv6 sessions`,
			"router_id %s is not a non-zero IPv4 address", b.RouterID)
	}
	if len(b.Neighbors) == 0 {
		r.errorf("bgp.neighbor", `add a [[bgp.neighbor]] with address and asn, or use mode = "kernel"`, "speaker mode needs at least one neighbour")
	}
	if len(b.Neighbors) > maxNeighbors {
		r.errorf("bgp.neighbor", fmt.Sprintf("list at most %d", maxNeighbors), "%d neighbours", len(b.Neighbors))
	}
	seen := map[netip.Addr]int{}
	for i, n := range b.Neighbors {
		p := elem("bgp.neighbor", i)
		if j, dup := seen[n.Address]; dup && n.Address.IsValid() {
			r.errorf(join(p, "address"), "list each router once", "neighbour %s is already bgp.neighbor[%d]", n.Address, j)
		} else if n.Address.IsValid() {
			seen[n.Address] = i
			if n.Address.IsUnspecified() || n.Address.IsMulticast() || n.Address.Zone() != "" {
				r.errorf(join(p, "address"), "write the router's unicast address on the shared segment", "neighbour address %s is not a unicast address", n.Address)
			}
		}
		if n.HoldTime != n.HoldTime.Truncate(time.Second) || n.HoldTime < 3*time.Second || n.HoldTime > 65535*time.Second {
			r.errorf(join(p, "hold_time"), "use whole seconds, 3s..65535s (RFC 4271); the keepalive is a third of it",
				"hold_time %s is out of range", n.HoldTime)
		}
		if len(n.Password) > 80 {
			r.errorf(join(p, "password"), "TCP MD5 keys are at most 80 bytes (TCP_MD5SIG_MAXKEYLEN)", "password has %d bytes", len(n.Password))
		}
	}
}
