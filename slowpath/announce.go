package slowpath

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"

	"github.com/ipfront/ipfront/slowpath/bgp"
	"github.com/ipfront/ipfront/slowpath/config"
)

// VIP announcement ([bgp], issue 11). The daemon decides what the routers
// should learn and an announcer (slowpath/bgp: the embedded speaker or
// kernel routes) makes it so:
//
//   - nothing before the daemon is ready (tables published, servers
//     resolved), so routers never send traffic to an instance that would
//     drop it;
//   - each VIP while at least one of its servers may take new associations
//     (not down by health checks, not drained, weight above 0): a VIP whose
//     servers are all gone is withdrawn so the routers use other instances;
//   - nothing while the node is drained (ipfront ctl drain-node) or
//     stopping: on SIGTERM every VIP is withdrawn first, the data plane
//     keeps forwarding for [bgp] drain_time while the routers move new
//     flows elsewhere, and only then detaches.

// AnnounceFunc starts the announcer of a [bgp] table; DaemonOptions.Announce
// replaces bgp.New in tests.
type AnnounceFunc func(cfg config.BGP, o bgp.Options) (bgp.Announcer, error)

// announceState is the daemon's announcement state.
type announceState struct {
	a           atomic.Pointer[bgp.Announcer] // nil without [bgp]; set once by Run
	nodeDrained atomic.Bool                   // ctl drain-node; written by the control goroutine
	stopping    atomic.Bool                   // SIGTERM seen: everything withdrawn until exit
	dirty       bool                          // control goroutine: the last Announce failed, retry
	want        []netip.Prefix                // control goroutine: what the last Announce asked for
}

// ErrNoBGP is returned by node drain requests on a daemon without [bgp].
var ErrNoBGP = errors.New("no [bgp] configured: nothing is announced")

// startAnnouncer starts the announcer of spec's [bgp], if any, and returns
// the function that withdraws everything and stops it.
func (d *Daemon) startAnnouncer(spec *config.Spec) (stop func(), err error) {
	if !spec.BGP.Enabled {
		return func() {}, nil
	}
	start := d.opts.Announce
	if start == nil {
		start = bgp.New
	}
	a, err := start(spec.BGP, bgp.Options{Interface: spec.Dataplane.Interfaces[0], Log: d.log})
	if err != nil {
		return nil, fmt.Errorf("start bgp %s: %w", spec.BGP.Mode, err)
	}
	d.ann.a.Store(&a)
	d.log.Info().Str("mode", spec.BGP.Mode).Uint32("asn", spec.BGP.ASN).Int("neighbors", len(spec.BGP.Neighbors)).
		Msg("bgp started; VIPs are announced once ready")
	return func() {
		if err := a.Close(); err != nil {
			d.log.Warn().Err(err).Msg("bgp stop")
		}
		d.log.Info().Msg("bgp stopped")
	}, nil
}

// announcer returns the running announcer, or nil.
func (d *Daemon) announcer() bgp.Announcer {
	if p := d.ann.a.Load(); p != nil {
		return *p
	}
	return nil
}

// wantAnnounced lists the host routes s should be announced with.
func (d *Daemon) wantAnnounced(s *state) []netip.Prefix {
	if !d.ready.Load() || d.ann.nodeDrained.Load() || d.ann.stopping.Load() {
		return nil
	}
	seen := map[netip.Prefix]bool{}
	var out []netip.Prefix
	for i := range s.spec.TargetSets {
		ts := &s.spec.TargetSets[i]
		up := false
		for j := range ts.Servers {
			if w, _ := s.baseWeight(ts, &ts.Servers[j]); w > 0 {
				up = true
				break
			}
		}
		if !up {
			continue
		}
		for _, p := range setRoutes(ts) {
			if !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

// setRoutes are the host routes of a set's addresses: its VIP and, for a
// multihomed SCTP set, its secondary address.
func setRoutes(ts *config.TargetSet) []netip.Prefix {
	out := []netip.Prefix{bgp.HostRoute(ts.Address)}
	if ts.SecondaryAddress.IsValid() {
		out = append(out, bgp.HostRoute(ts.SecondaryAddress))
	}
	return out
}

// syncAnnounce makes the announced set match the state in force. Control
// goroutine only; a failure is logged and retried at the next refresh.
func (d *Daemon) syncAnnounce() {
	a := d.announcer()
	if a == nil {
		return
	}
	want := d.wantAnnounced(d.cur())
	if !d.ann.dirty && slices.Equal(want, d.ann.want) {
		return
	}
	before := a.Status().Announced
	err := a.Announce(want)
	d.ann.want, d.ann.dirty = want, err != nil
	if err != nil {
		d.log.Error().Err(err).Msg("bgp announce; retrying at the next refresh")
	}
	after := a.Status().Announced
	var added, withdrawn []string
	for _, p := range after {
		if !slices.Contains(before, p) {
			added = append(added, p.String())
		}
	}
	for _, p := range before {
		if !slices.Contains(after, p) {
			withdrawn = append(withdrawn, p.String())
		}
	}
	if len(added) > 0 {
		d.log.Info().Strs("prefixes", added).Msg("bgp: VIPs announced")
	}
	if len(withdrawn) > 0 {
		d.log.Info().Strs("prefixes", withdrawn).Bool("node_drained", d.ann.nodeDrained.Load()).
			Bool("stopping", d.ann.stopping.Load()).Msg("bgp: VIPs withdrawn")
	}
}

// retryAnnounce retries a failed announcement. Control goroutine only.
func (d *Daemon) retryAnnounce() {
	if d.ann.dirty {
		d.syncAnnounce()
	}
}

// drainForStop withdraws every VIP and keeps serving requests and health
// events for [bgp] drain_time, so routers move new flows to other
// instances while this one still forwards what reaches it. It returns at
// once without [bgp]. Control goroutine only.
func (d *Daemon) drainForStop() {
	wait := d.cur().spec.BGP.DrainTime
	if d.announcer() == nil {
		return
	}
	d.ann.stopping.Store(true)
	d.syncAnnounce()
	if wait <= 0 {
		return
	}
	d.log.Info().Dur("drain_time", wait).Msg("VIPs withdrawn; forwarding until drain_time ends, then detaching")
	t := d.opts.Clock.NewTicker(wait)
	defer t.Stop()
	for {
		select {
		case <-t.C():
			return
		case r := <-d.reqs:
			r.done <- r.fn()
		case <-d.healthQ.notify:
			d.applyHealth(d.healthQ.drain())
		}
	}
}

// SetNodeDrained withdraws every VIP from the routers (drained) or
// announces them again, leaving the data plane as it is: traffic that
// still arrives is forwarded. ipfront ctl drain-node and undrain-node.
func (d *Daemon) SetNodeDrained(ctx context.Context, drained bool) error {
	if d.announcer() == nil {
		return ErrNoBGP
	}
	return d.do(ctx, func() error {
		if d.ann.nodeDrained.Swap(drained) != drained {
			d.log.Info().Bool("drained", drained).Msg("node admin state")
		}
		d.syncAnnounce()
		if d.ann.dirty {
			return errors.New("announcement failed; retrying at the next refresh")
		}
		return nil
	})
}

// BGPState is what GET /v1/bgp reports.
type BGPState struct {
	Configured  bool
	Status      bgp.Status
	NodeDrained bool
	Stopping    bool
	// Withdrawn are the VIPs configured but not announced.
	Withdrawn []netip.Prefix
}

// BGP returns the announcement state; safe from any goroutine.
func (d *Daemon) BGP() BGPState {
	a := d.announcer()
	if a == nil {
		return BGPState{}
	}
	st := BGPState{Configured: true, Status: a.Status(), NodeDrained: d.ann.nodeDrained.Load(), Stopping: d.ann.stopping.Load()}
	seen := map[netip.Prefix]bool{}
	for i := range d.cur().spec.TargetSets {
		for _, p := range setRoutes(&d.cur().spec.TargetSets[i]) {
			if !seen[p] && !slices.Contains(st.Status.Announced, p) {
				st.Withdrawn = append(st.Withdrawn, p)
			}
			seen[p] = true
		}
	}
	return st
}
