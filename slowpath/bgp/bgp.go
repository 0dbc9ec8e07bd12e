// Package bgp announces ipfront's VIPs to the routers in front of it
// (issue 11): as host routes (/32, /128) over BGP sessions of an embedded
// speaker (GoBGP, [bgp] mode = "speaker"), or as host routes in a kernel
// routing table that the site's own routing daemon exports (mode =
// "kernel"). The daemon decides what is announced (VIPs with a healthy
// server, nothing while the node drains or stops); an Announcer only makes
// the routers' view match that set.
package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/rs/zerolog"

	"github.com/ipfront/ipfront/slowpath/config"
)

// Announcer makes a set of host routes what the routers learn from this
// instance. Its methods are safe for concurrent use.
type Announcer interface {
	// Announce makes prefixes exactly the announced set: new ones are
	// announced, missing ones withdrawn. On error some changes may not
	// have been made; the next call retries them.
	Announce(prefixes []netip.Prefix) error
	// Status describes the sessions (speaker mode) and what is announced.
	Status() Status
	// Close withdraws everything and stops; it is the last call.
	Close() error
}

// Status is an Announcer's view for the API.
type Status struct {
	Mode      string         // config.BGPSpeaker or config.BGPKernel
	Announced []netip.Prefix // sorted
	Peers     []Peer         // speaker mode, in configuration order
}

// Peer is one BGP session.
type Peer struct {
	Address netip.Addr
	ASN     uint32
	// State is the session's RFC 4271 state in lower case: idle, connect,
	// active, opensent, openconfirm or established.
	State string
	// Since is when the session was last established (zero if never).
	Since time.Time
	// Advertised and Received count prefixes sent to and learned from the
	// peer.
	Advertised, Received uint64
}

// Options are what New needs besides the [bgp] table.
type Options struct {
	// Interface is the interface kernel mode's routes point at (the first
	// of [dataplane] interfaces): the VIPs are reached through it.
	Interface string
	Log       zerolog.Logger
}

// New starts the announcer cfg describes. It announces nothing until the
// first Announce.
func New(cfg config.BGP, o Options) (Announcer, error) {
	switch cfg.Mode {
	case config.BGPSpeaker:
		return NewSpeaker(cfg, o.Log)
	case config.BGPKernel:
		return NewKernel(cfg, o.Interface, o.Log)
	}
	return nil, fmt.Errorf("bgp mode %q: %w", cfg.Mode, errors.ErrUnsupported)
}

// HostRoute is the host route of a VIP: /32 or /128.
func HostRoute(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()) }

// diff splits want against have into what to add and what to remove.
func diff(have map[netip.Prefix]bool, want []netip.Prefix) (add, del []netip.Prefix) {
	w := map[netip.Prefix]bool{}
	for _, p := range want {
		w[p] = true
		if !have[p] {
			add = append(add, p)
		}
	}
	for p := range have {
		if !w[p] {
			del = append(del, p)
		}
	}
	slices.SortFunc(add, comparePrefix)
	slices.SortFunc(del, comparePrefix)
	return add, del
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
