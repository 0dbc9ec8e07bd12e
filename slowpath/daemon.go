package slowpath

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/steer"
	"github.com/ipfront/ipfront/fastpath/xsk"
	"github.com/ipfront/ipfront/slowpath/config"
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
// One control goroutine (Run) does all of that; the API reads through
// accessors that never touch workers.
type Daemon struct {
	log   zerolog.Logger
	neigh *Neighbors
	ready atomic.Bool
	reqs  chan request // work for the control goroutine, from API handlers and signals

	mu      sync.Mutex // guards the fields below against API readers; written by the control goroutine
	spec    *config.Spec
	id      *Identity
	gen     uint64
	dp      *fastpath.Dataplane
	drained map[serverRef]bool // set by ctl drain, cleared by ctl enable; survives reloads
	down    map[serverRef]bool // failed health checks
	alarms  []Alarm            // balance alarms, raised and cleared
	samp    loadSampler        // balance trackers and bias

	health  *health.Monitor // nil until Run
	healthQ *healthQueue
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

// NewDaemon returns a daemon for spec; nothing touches the kernel until Run.
func NewDaemon(spec *config.Spec, log zerolog.Logger) *Daemon {
	return &Daemon{log: log, neigh: NewNeighbors(), spec: spec, id: NewIdentity(),
		reqs: make(chan request), drained: map[serverRef]bool{}, down: map[serverRef]bool{}, healthQ: newHealthQueue()}
}

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

// DataplaneConfig translates the spec's [dataplane] table for the fast path.
func DataplaneConfig(dp *config.Dataplane) fastpath.Config {
	mode := map[config.XDPMode]steer.XDPMode{config.XDPAuto: steer.ModeAuto, config.XDPNative: steer.ModeNative, config.XDPGeneric: steer.ModeGeneric}[dp.XDPMode]
	sock := map[string]xsk.Mode{config.ZeroCopyAuto: xsk.ModeAuto, config.ZeroCopyOn: xsk.ModeZeroCopy, config.ZeroCopyOff: xsk.ModeCopy}[dp.ZeroCopy]
	return fastpath.Config{
		Interfaces: dp.Interfaces, Queues: dp.Queues, CPUs: dp.CPUs, XDPMode: mode,
		BusyPoll: dp.BusyPoll, BatchSize: dp.BatchSize, MaxAssociations: dp.MaxAssociations,
		RingSize: uint32(dp.RingSize), FrameSize: uint32(dp.FrameSize), Frames: uint32(dp.Frames),
		NeedWakeup: dp.NeedWakeup, SocketMode: sock,
	}
}

// Run starts the data plane and serves until ctx is cancelled, then tears
// everything down. onReady, if set, is called once the daemon is ready.
func (d *Daemon) Run(ctx context.Context, onReady func()) error {
	dp, err := fastpath.Start(DataplaneConfig(&d.spec.Dataplane))
	if err != nil {
		return fmt.Errorf("start data plane: %w", err)
	}
	d.mu.Lock()
	d.dp = dp
	d.mu.Unlock()
	defer func() {
		if err := dp.Close(); err != nil {
			d.log.Warn().Err(err).Msg("data plane teardown")
		}
	}()
	for _, ifc := range dp.Interfaces() {
		d.log.Info().Str("interface", ifc.Name).Int("ifindex", ifc.Index).Str("xdp_mode", ifc.XDPMode.String()).
			Ints("queues", ifc.Queues).Msg("steering program attached")
	}
	for _, w := range dp.Workers() {
		d.log.Info().Str("interface", w.Interface).Int("queue", w.Queue).Int("cpu", w.CPU).
			Bool("busy_poll", d.spec.Dataplane.BusyPoll).Msg("worker started")
	}
	if err := d.refreshAndPublish(true); err != nil {
		return err
	}
	d.health = health.NewMonitor(d.healthQ.push)
	defer d.health.Close()
	d.health.Update(healthTargets(d.Spec()))
	start := time.Now()
	timer := time.NewTimer(resolveFast)
	defer timer.Stop()
	sampling := time.NewTicker(samplePeriod)
	defer sampling.Stop()
	for {
		select {
		case <-ctx.Done():
			d.log.Info().Msg("shutting down")
			return nil
		case r := <-d.reqs:
			r.done <- r.fn()
			continue
		case <-d.healthQ.notify:
			if err := d.applyHealth(d.healthQ.drain()); err != nil {
				d.log.Error().Err(err).Msg("publish health change")
			}
			continue
		case now := <-sampling.C:
			if err := d.sample(now); err != nil {
				d.log.Error().Err(err).Msg("publish balance bias")
			}
			continue
		case <-timer.C:
		}
		if err := d.refreshAndPublish(false); err != nil {
			d.log.Error().Err(err).Msg("publish tables")
		}
		if !d.ready.Load() && (d.unresolved() == 0 || time.Since(start) > readyTimeout) {
			if n := d.unresolved(); n > 0 {
				d.log.Warn().Int("unresolved_servers", n).Msg("ready with servers whose MAC is unknown; their new flows are dropped until resolved")
			}
			d.ready.Store(true)
			d.log.Info().Uint64("generation", d.Generation()).Msg("ready")
			if onReady != nil {
				onReady()
			}
		}
		next := resolveSteady
		if d.unresolved() > 0 {
			next = resolveFast
		}
		timer.Reset(next)
	}
}

// refreshAndPublish re-reads server MACs and publishes a new generation when
// one changed (or always, when force is set).
func (d *Daemon) refreshAndPublish(force bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ifs := d.dp.Interfaces()
	idx, names := make([]int, len(ifs)), make([]string, len(ifs))
	for i, ifc := range ifs {
		idx[i], names[i] = ifc.Index, ifc.Name
	}
	changed, _ := d.neigh.Refresh(idx, names, serverAddrs(d.spec))
	if !changed && !force {
		return nil
	}
	return d.publishLocked()
}

func (d *Daemon) publishLocked() error {
	ifs := d.dp.Interfaces()
	macs := func(iface int, addr netip.Addr) ([6]byte, bool) { return d.neigh.Lookup(ifs[iface].Index, addr) }
	t, id, err := Build(d.spec, d.id, Inputs{Interfaces: len(ifs), MACs: macs, Policy: d.policy, Generation: d.gen + 1, Now: time.Now()})
	if err != nil {
		return err
	}
	if err := d.dp.Publish(t); err != nil {
		return err
	}
	d.id, d.gen = id, t.Generation
	d.log.Debug().Uint64("generation", d.gen).Int("target_sets", len(d.spec.TargetSets)).Msg("tables published")
	return nil
}

// baseWeight applies operator drain and health to a configured server: the
// weight new associations would see without the balance bias, and whether
// its associations must move. Called with d.mu held.
func (d *Daemon) baseWeight(set *config.TargetSet, srv *config.Server) (uint32, bool) {
	ref := serverRef{set.Name, srv.Address}
	if d.down[ref] {
		return 0, set.OnServerFailure != config.FailureKeep
	}
	if d.drained[ref] {
		return 0, false // drained: no new associations, existing ones stay
	}
	return uint32(srv.Weight), false
}

// policy is baseWeight scaled by the balance bias of an active alarm. A
// biased weight never rounds a weighted server down to 0 unless the bias is 0.
// Called with d.mu held.
func (d *Daemon) policy(set *config.TargetSet, srv *config.Server) (uint32, bool) {
	w, reselect := d.baseWeight(set, srv)
	if b, ok := d.samp.bias[serverRef{set.Name, srv.Address}]; ok && w > 0 {
		w = uint32(math.Round(float64(w) * b))
		if b > 0 && w == 0 {
			w = 1
		}
	}
	return w, reselect
}

// unresolved counts servers without a MAC on some interface.
func (d *Daemon) unresolved() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, ifc := range d.dp.Interfaces() {
		for _, a := range serverAddrs(d.spec) {
			if _, ok := d.neigh.Lookup(ifc.Index, a); !ok {
				n++
			}
		}
	}
	return n
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
func (d *Daemon) Generation() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.gen
}

// Dataplane returns the running data plane, or nil before Run started it.
func (d *Daemon) Dataplane() *fastpath.Dataplane {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dp
}

// ErrNotRunning is returned by accessors used before Run started the data plane.
var ErrNotRunning = errors.New("data plane not running")
