package slowpath

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/maglev"
	"github.com/ipfront/ipfront/slowpath/config"
	"github.com/ipfront/ipfront/slowpath/ha"
	"github.com/ipfront/ipfront/slowpath/health"
)

// How often the control loop re-reads the neighbour table: quickly until
// every server is resolved, then at a steady pace that still notices a
// server's MAC changing within seconds.
const (
	resolveFast   = 100 * time.Millisecond
	resolveSteady = time.Second
	// readyTimeout bounds how long start-up waits for servers to resolve
	// before declaring itself ready anyway (with a warning): one dead
	// server must not keep the rest of the farm out of service.
	readyTimeout = 5 * time.Second
)

// Daemon is the slow path: it owns the validated spec, starts the data plane
// from it, keeps server MACs resolved, and publishes new table generations.
//
// One control goroutine (Run) makes every change. It builds table
// generations without holding any lock and, once one is published, swaps
// the state it was built from in with one atomic store; API readers load
// that state and never wait for a build, a publication or a shard walk.
type Daemon struct {
	log   zerolog.Logger
	opts  DaemonOptions // every field set by NewDaemon
	ready atomic.Bool
	reqs  chan request // work for the control goroutine, from API handlers and signals

	st    atomic.Pointer[state]     // the state in force; replaced whole by the control goroutine
	plane atomic.Pointer[DataPlane] // nil until Run started the data plane

	alarmView atomic.Pointer[alarmView] // the alarms as readers see them; nil before the first

	helperStats HelperStats // the FTP helper's counters (helper_loop.go)

	ann announceState // [bgp]: what the routers are told (announce.go)

	haNode atomic.Pointer[ha.Node] // [ha]: association replication (ha_loop.go); nil without

	reloads reloadLog // outcome of the last configuration load (reload_status.go)

	// seed keys the flow hash of every generation this process publishes:
	// resolved once in Run ([dataplane] hash_seed, else random), since a
	// seed that changed at a reload would move every flow without an
	// association.
	seed maglev.Seed

	// Owned by the control goroutine.
	samp     loadSampler // balance trackers and alarms
	health   *health.Monitor
	healthQ  *healthQueue // safe for the monitor's goroutines too
	missing  int          // unresolved (interface, server) pairs at the last refresh
	unsynced bool         // a health or balance change is recorded in st but its publication failed: retry
}

// state is one consistent view of what a table generation is built from and
// the numbering it used. It is immutable once stored: the control goroutine
// makes a modified copy (copying any map it changes) and stores that.
type state struct {
	spec    *config.Spec
	id      *Identity
	gen     uint64                // generation of the tables last published; 0 before the first
	drained map[serverRef]bool    // set by ctl drain, cleared by ctl enable; survives reloads
	down    map[serverRef]bool    // failed health checks
	bias    map[serverRef]float64 // weight factors while a set's balance alarm is active
}

// serverRef names a server across reloads: its set's name and its address.
type serverRef struct {
	set  string
	addr netip.Addr
}

// request is a function the control goroutine runs on a caller's behalf, so
// that every change to the spec and tables happens on one goroutine.
type request struct {
	fn   func() error
	done chan error
}

// NewDaemon returns a daemon for spec; nothing touches the kernel until Run,
// which starts the data plane with o.Start.
func NewDaemon(spec *config.Spec, log zerolog.Logger, o DaemonOptions) *Daemon {
	if o.Clock == nil {
		o.Clock = WallClock{}
	}
	if o.Neighbors == nil {
		o.Neighbors = NewNeighbors()
	}
	if o.NAT == nil {
		o.NAT = NewNATRoutes()
	}
	d := &Daemon{log: log, opts: o, reqs: make(chan request), healthQ: newHealthQueue()}
	d.reloads.start(o.Clock.Now())
	d.st.Store(&state{spec: spec, id: NewIdentity(), drained: map[serverRef]bool{}, down: map[serverRef]bool{},
		bias: map[serverRef]float64{}})
	return d
}

// cur is the state in force.
func (d *Daemon) cur() *state { return d.st.Load() }

// dp is the running data plane; only the control goroutine calls it, after
// Run started it.
func (d *Daemon) dp() DataPlane { return *d.plane.Load() }

// do runs fn on the control goroutine and returns its error; it fails if
// the daemon is not running.
func (d *Daemon) do(ctx context.Context, fn func() error) error {
	r := request{fn: fn, done: make(chan error, 1)}
	select {
	case d.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	return <-r.done
}

// Run starts the data plane and serves until ctx is cancelled, then tears
// everything down. onReady, if set, is called once the daemon is ready.
func (d *Daemon) Run(ctx context.Context, onReady func()) error {
	spec := d.cur().spec
	if d.opts.Start == nil {
		return errors.New("start data plane: no start function")
	}
	seed, err := spec.Dataplane.ResolveHashSeed()
	if err != nil {
		return err
	}
	d.seed = maglev.NewSeed(seed)
	dp, err := d.opts.Start(&spec.Dataplane)
	if err != nil {
		return fmt.Errorf("start data plane: %w", err)
	}
	d.plane.Store(&dp)
	defer func() {
		if err := dp.Close(); err != nil {
			d.log.Warn().Err(err).Msg("data plane teardown")
		}
	}()
	defer d.opts.NAT.Close() // route.go's neighbour watch
	if hp, ok := dp.(HelperPlane); ok {
		defer d.startHelpers(ctx, hp)() // stopped before the data plane closes
	}
	for _, ifc := range dp.Interfaces() {
		d.log.Info().Str("interface", ifc.Name).Int("ifindex", ifc.Index).Str("xdp_mode", ifc.XDPMode.String()).
			Ints("queues", ifc.Queues).Msg("steering program attached")
	}
	for _, w := range dp.Workers() {
		d.log.Info().Str("interface", w.Interface).Int("queue", w.Queue).Int("cpu", w.CPU).
			Bool("busy_poll", spec.Dataplane.BusyPoll).Msg("worker started")
	}
	d.logUnchecked(spec)
	stopAnnounce, err := d.startAnnouncer(spec) // announce.go
	if err != nil {
		return err
	}
	defer stopAnnounce() // before the data plane detaches
	d.refreshNeighbors()
	if err := d.apply(d.cur()); err != nil {
		return err
	}
	d.health = health.NewMonitorOptions(d.healthQ.push, d.opts.healthOptions())
	defer d.health.Close()
	d.health.Update(healthTargets(spec))
	stopHA, err := d.startHA(spec, dp) // ha_loop.go: after the first tables, before ready
	if err != nil {
		return err
	}
	defer stopHA()

	clock := d.opts.Clock
	start := clock.Now()
	period := resolveFast
	refresh := clock.NewTicker(period)
	defer refresh.Stop()
	sampling := clock.NewTicker(samplePeriod)
	defer sampling.Stop()
	d.checkReady(start, onReady)
	for {
		select {
		case <-ctx.Done():
			d.log.Info().Msg("shutting down")
			d.drainForStop() // [bgp]: withdraw, then forward for drain_time
			return nil
		case r := <-d.reqs:
			r.done <- r.fn()
		case <-d.healthQ.notify:
			d.applyHealth(d.healthQ.drain())
		case now := <-sampling.C():
			d.sample(now)
		case <-refresh.C():
			if d.refreshNeighbors() || d.unsynced {
				d.republish("publish tables")
			}
			d.checkReady(start, onReady)
			d.retryAnnounce()
			next := resolveSteady
			if d.missing > 0 {
				next = resolveFast
			}
			if next != period {
				period = next
				refresh.Reset(period)
			}
		}
	}
}

// checkReady declares the daemon ready once every server is resolved, or
// readyTimeout after start, and [ha] has pulled its mates' associations.
func (d *Daemon) checkReady(start time.Time, onReady func()) {
	if d.ready.Load() || !d.haJoined() || !d.importsApplied() || (d.missing > 0 && d.opts.Clock.Now().Sub(start) <= readyTimeout) {
		return
	}
	if d.missing > 0 {
		d.log.Warn().Int("unresolved_servers", d.missing).Msg("ready with servers whose MAC is unknown; their new flows are dropped until resolved")
	}
	d.ready.Store(true)
	d.log.Info().Uint64("generation", d.Generation()).Msg("ready")
	d.syncAnnounce() // announce.go: VIPs go to the routers only now
	if onReady != nil {
		onReady()
	}
}

// importsApplied reports whether the workers took every record the [ha]
// pull queued on their control rings: once ready, the VIPs are announced,
// and a flow a router then sends here must find its mate's association in
// the worker's shard, not in a ring the worker has yet to read.
func (d *Daemon) importsApplied() bool {
	if !d.cur().spec.HA.Enabled {
		return true
	}
	for _, w := range d.dp().Workers() {
		if w.Rings != nil && w.Rings().Control.Queued > 0 {
			return false
		}
	}
	return true
}

// refreshNeighbors re-reads server MACs and reports whether one changed.
// Control goroutine only; it holds no lock while the kernel answers.
func (d *Daemon) refreshNeighbors() bool {
	ifs := d.dp().Interfaces()
	idx, names := make([]int, len(ifs)), make([]string, len(ifs))
	for i, ifc := range ifs {
		idx[i], names[i] = ifc.Index, ifc.Name
	}
	dsr, nat := splitServers(d.cur().spec) // route.go: NAT servers are reached by routes
	changed, missing := d.opts.Neighbors.Refresh(idx, names, dsr)
	if len(nat) > 0 {
		c, m := d.opts.NAT.Refresh(idx, names, nat)
		changed, missing = changed || c, missing+m
	}
	d.missing = missing
	return changed
}

// apply builds the tables of next, publishes them and makes next (with the
// numbering and generation of those tables) the daemon's state. On error
// nothing changed: not the state, not the numbering, not the tables the
// workers use, not the steered VIPs. Control goroutine only.
func (d *Daemon) apply(next *state) error {
	dp := d.dp()
	ifs := dp.Interfaces()
	macs := func(iface int, addr netip.Addr) ([6]byte, bool) {
		return d.opts.Neighbors.Lookup(ifs[iface].Index, addr)
	}
	t, id, err := Build(next.spec, next.id, Inputs{Interfaces: len(ifs), MACs: macs, Policy: next.policy,
		Generation: d.cur().gen + 1, Now: d.opts.Clock.Now(), NAT: d.opts.NAT, Seed: d.seed})
	if err != nil {
		return fmt.Errorf("build tables: %w", err)
	}
	if err := dp.Publish(t); err != nil {
		if !errors.Is(err, fastpath.ErrStaleVIPs) {
			return fmt.Errorf("publish tables: %w", err)
		}
		d.log.Warn().Err(err).Uint64("generation", t.Generation).Msg("tables published; removed VIPs stay steered to the workers, which drop them as no_target_set")
	}
	s := *next
	s.id, s.gen = id, t.Generation
	d.st.Store(&s)
	d.unsynced = false
	d.log.Debug().Uint64("generation", s.gen).Int("target_sets", len(s.spec.TargetSets)).Msg("tables published")
	d.syncAnnounce() // announce.go: a VIP that lost its last server is withdrawn
	return nil
}

// record applies an observation (health, balance) that must not be lost if
// its publication fails: the state keeps it, and the next neighbour refresh
// publishes again. Control goroutine only.
func (d *Daemon) record(next *state, what string) {
	if err := d.apply(next); err != nil {
		d.log.Error().Err(err).Msg(what + "; retrying at the next refresh")
		d.st.Store(next) // its numbering and generation are still those in force
		d.unsynced = true
	}
}

// republish publishes the current state again (MACs changed, or a failed
// publication is retried).
func (d *Daemon) republish(what string) {
	if err := d.apply(d.cur()); err != nil {
		d.unsynced = true
		d.log.Error().Err(err).Msg(what)
	}
}

// baseWeight applies operator drain and health to a configured server: the
// weight new associations would see without the balance bias, and whether
// its associations must move.
func (s *state) baseWeight(set *config.TargetSet, srv *config.Server) (uint32, bool) {
	ref := serverRef{set.Name, srv.Address}
	if s.down[ref] {
		return 0, set.OnServerFailure != config.FailureKeep
	}
	if s.drained[ref] {
		return 0, false // drained: no new associations, existing ones stay
	}
	return uint32(srv.Weight), false
}

// policy is baseWeight scaled by the balance bias of an active alarm. A
// biased weight never rounds a weighted server down to 0 unless the bias is 0.
func (s *state) policy(set *config.TargetSet, srv *config.Server) (uint32, bool) {
	w, reselect := s.baseWeight(set, srv)
	if b, ok := s.bias[serverRef{set.Name, srv.Address}]; ok && w > 0 {
		w = uint32(math.Round(float64(w) * b))
		if b > 0 && w == 0 {
			w = 1
		}
	}
	return w, reselect
}

func serverAddrs(spec *config.Spec) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for _, ts := range spec.TargetSets {
		for _, s := range ts.Servers {
			if !seen[s.Address] {
				seen[s.Address] = true
				out = append(out, s.Address)
			}
		}
	}
	return out
}

// Ready reports whether start-up finished.
func (d *Daemon) Ready() bool { return d.ready.Load() }

// Generation is the generation of the tables last published.
func (d *Daemon) Generation() uint64 { return d.cur().gen }

// Plane returns the running data plane for readers, or nil before Run
// started it.
func (d *Daemon) Plane() Plane {
	if p := d.plane.Load(); p != nil {
		return *p
	}
	return nil
}

// ErrNotRunning is returned by accessors used before Run started the data plane.
var ErrNotRunning = errors.New("data plane not running")

// cloneRefs copies a server map for a modified state.
func cloneRefs[V any](m map[serverRef]V) map[serverRef]V {
	if m == nil {
		return map[serverRef]V{}
	}
	return maps.Clone(m)
}
