package slowpath

import (
	"context"
	"net/netip"
	"time"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/slowpath/config"
	"github.com/ipfront/ipfront/slowpath/health"
)

// DataPlane is the running fast path as the daemon drives it: what the API
// reads (Plane), publishing table generations, and tearing down. The daemon
// gets one from the StartFunc it is given, so unit tests drive the real
// daemon with a fake.
type DataPlane interface {
	Plane
	// Publish makes t the workers' tables and steers exactly t's VIPs to
	// them, all or nothing: on error the workers keep the tables and the
	// steering programs the VIPs they had, except for an error wrapping
	// fastpath.ErrStaleVIPs, which means t was published but removed VIPs
	// are still steered (and dropped as no_target_set).
	Publish(t *fastpath.Tables) error
	// Close stops the workers and detaches the steering programs.
	Close() error
}

// StartFunc starts the data plane a [dataplane] table describes.
type StartFunc func(cfg *config.Dataplane) (DataPlane, error)

// FastPlane adapts a running *fastpath.Dataplane to DataPlane.
func FastPlane(dp *fastpath.Dataplane) DataPlane { return dataplanePlane{dp} }

// Publish implements DataPlane.
func (p dataplanePlane) Publish(t *fastpath.Tables) error { return p.dp.Publish(t) }

// Close implements DataPlane.
func (p dataplanePlane) Close() error { return p.dp.Close() }

// Clock is the time the daemon's loops run on: the neighbour refresh, load
// sampling, readiness and health probing. Tests drive a fake.
type Clock interface {
	Now() time.Time
	NewTicker(d time.Duration) Ticker
}

// Ticker delivers ticks like time.Ticker: at most one pending, later ones
// dropped while it is unread.
type Ticker interface {
	C() <-chan time.Time
	Reset(d time.Duration)
	Stop()
}

// WallClock is the system clock.
type WallClock struct{}

// Now implements Clock.
func (WallClock) Now() time.Time { return time.Now() }

// NewTicker implements Clock.
func (WallClock) NewTicker(d time.Duration) Ticker { return wallTicker{time.NewTicker(d)} }

type wallTicker struct{ *time.Ticker }

func (t wallTicker) C() <-chan time.Time { return t.Ticker.C }

// NeighborTable resolves servers' MAC addresses; *Neighbors (the kernel's
// neighbour table) implements it.
type NeighborTable interface {
	// Refresh re-reads the MACs of addrs on every interface and reports
	// whether one changed and how many (interface, address) pairs remain
	// unresolved.
	Refresh(ifindexes []int, ifnames []string, addrs []netip.Addr) (changed bool, missing int)
	Lookup(ifindex int, addr netip.Addr) ([6]byte, bool)
}

// DaemonOptions is what a Daemon runs on. Every nil field means the real
// system; tests replace them with fakes.
type DaemonOptions struct {
	// Start starts the data plane; required.
	Start StartFunc
	// Clock drives the daemon's loops and the health checks' schedule;
	// nil means WallClock.
	Clock Clock
	// Neighbors resolves server MACs; nil means the kernel's neighbour
	// table (NewNeighbors).
	Neighbors NeighborTable
	// NAT resolves where NAT sets' frames leave; nil means the kernel's
	// routes and neighbours (NewNATRoutes). Asked only while a NAT set is
	// configured.
	NAT NATResolver
	// Probe replaces the health checks' network probes; nil probes the
	// servers.
	Probe func(ctx context.Context, t health.Target) (ok bool, reason string)
	// Announce starts the announcer of a [bgp] table (announce.go); nil
	// means bgp.New.
	Announce AnnounceFunc
}

// healthOptions runs the health checks on the daemon's clock and prober.
func (o *DaemonOptions) healthOptions() health.Options {
	return health.Options{
		Probe: o.Probe,
		Now:   o.Clock.Now,
		NewTicker: func(d time.Duration) (<-chan time.Time, func()) {
			t := o.Clock.NewTicker(d)
			return t.C(), t.Stop
		},
	}
}
