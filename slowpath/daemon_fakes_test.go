package slowpath

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/slowpath/config"
	"github.com/ipfront/ipfront/slowpath/health"
)

// waitLimit bounds every wait for an event in these tests. It is not a
// timing claim: events arrive in microseconds, and a test that reaches the
// limit fails because the event never came.
const waitLimit = 10 * time.Second

// fakePlane is a DataPlane without a kernel: one interface, workers with
// real association shards and counters the test sets, and a record of the
// tables and VIPs published. Publish is all or nothing, like the real one,
// and fails while failPublish is set.
type fakePlane struct {
	ifc     fastpath.Interface
	workers []*fakeWorker

	mu          sync.Mutex
	tables      *fastpath.Tables
	vips        []netip.Addr
	publishes   int   // successful publications
	failPublish error // Publish returns it while set
	staleVIPs   bool  // Publish publishes but reports removed VIPs still steered
	inPublish   chan struct{}
	release     chan struct{} // if set, Publish waits for it (after signalling inPublish)
	closed      bool
	changed     chan struct{} // capacity 1: something was published
}

type fakeWorker struct {
	shard *assoc.Shard
	walk  func() // if set, runs at the start of every Range: tests block shard walks with it

	mu sync.Mutex
	c  fastpath.Counters
}

func newFakePlane(tb testing.TB, workers int) *fakePlane {
	tb.Helper()
	p := &fakePlane{ifc: fastpath.Interface{Name: "eth1", Index: 3, MAC: [6]byte{2, 0, 0, 0, 0, 0xfe}}, changed: make(chan struct{}, 1)}
	for q := range workers {
		sh, err := assoc.NewShard(1024)
		if err != nil {
			tb.Fatal(err)
		}
		p.ifc.Queues = append(p.ifc.Queues, q)
		p.workers = append(p.workers, &fakeWorker{shard: sh})
	}
	return p
}

func (p *fakePlane) start(*config.Dataplane) (DataPlane, error) { return p, nil }

func (p *fakePlane) Interfaces() []fastpath.Interface { return []fastpath.Interface{p.ifc} }

func (p *fakePlane) Workers() []PlaneWorker {
	out := make([]PlaneWorker, len(p.workers))
	for i, w := range p.workers {
		out[i] = PlaneWorker{Interface: p.ifc.Name, Queue: i, CPU: -1, Snapshot: w.snapshot, Assoc: walkHook{w.shard, w}}
	}
	return out
}

func (p *fakePlane) Tables() *fastpath.Tables {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tables
}

func (p *fakePlane) SteeringStats() (fastpath.SteeringCounts, error) {
	return fastpath.SteeringCounts{}, nil
}

func (p *fakePlane) Publish(t *fastpath.Tables) error {
	p.mu.Lock()
	in, release, fail, stale := p.inPublish, p.release, p.failPublish, p.staleVIPs
	p.mu.Unlock()
	if in != nil {
		in <- struct{}{}
	}
	if release != nil {
		<-release
	}
	if fail != nil {
		return fail
	}
	p.mu.Lock()
	old := p.vips
	p.tables, p.vips = t, t.VIPs()
	if stale {
		p.vips = unionVIPs(old, p.vips)
	}
	p.publishes++
	p.mu.Unlock()
	select {
	case p.changed <- struct{}{}:
	default:
	}
	if stale {
		return fmt.Errorf("unsteer removed VIPs: %w: fake map failure", fastpath.ErrStaleVIPs)
	}
	return nil
}

// unionVIPs returns the addresses of a and b, each once, sorted.
func unionVIPs(a, b []netip.Addr) []netip.Addr {
	out := slices.Concat(a, b)
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

func (p *fakePlane) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

// published returns the tables, steered VIPs and publication count.
func (p *fakePlane) published() (*fastpath.Tables, []netip.Addr, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tables, slices.Clone(p.vips), p.publishes
}

// setFailPublish makes Publish fail with err (nil: succeed).
func (p *fakePlane) setFailPublish(err error) {
	p.mu.Lock()
	p.failPublish = err
	p.mu.Unlock()
}

// waitTables waits until the published tables satisfy ok and returns them.
func (p *fakePlane) waitTables(tb testing.TB, what string, ok func(*fastpath.Tables) bool) *fastpath.Tables {
	tb.Helper()
	deadline := time.After(waitLimit)
	for {
		if t := p.Tables(); t != nil && ok(t) {
			return t
		}
		select {
		case <-p.changed:
		case <-deadline:
			tb.Fatalf("no publication with %s within %v", what, waitLimit)
		}
	}
}

// counterIndex is the counter index of a server in t.
func counterIndex(tb testing.TB, t *fastpath.Tables, set string, addr netip.Addr) int {
	tb.Helper()
	ts, slot := findSlot(tb, t, set, addr)
	return int(ts.ID)*fastpath.MaxServers + slot
}

// findSlot finds a present server in t.
func findSlot(tb testing.TB, t *fastpath.Tables, set string, addr netip.Addr) (*fastpath.TargetSet, int) {
	tb.Helper()
	for _, ts := range t.Sets() {
		if ts.Name != set {
			continue
		}
		for i := range ts.Servers {
			if ts.Servers[i].Present && ts.Servers[i].Addr == addr {
				return ts, i
			}
		}
	}
	tb.Fatalf("server %v of set %q not in tables generation %d", addr, set, t.Generation)
	return nil, 0
}

// server returns a present server of t, or nil.
func server(t *fastpath.Tables, set string, addr netip.Addr) *fastpath.Server {
	for _, ts := range t.Sets() {
		if ts.Name != set {
			continue
		}
		for i := range ts.Servers {
			if ts.Servers[i].Present && ts.Servers[i].Addr == addr {
				return &ts.Servers[i]
			}
		}
	}
	return nil
}

func (w *fakeWorker) snapshot(out *fastpath.Counters) {
	w.mu.Lock()
	*out = w.c
	w.mu.Unlock()
}

// update changes the worker's published counters.
func (w *fakeWorker) update(fn func(*fastpath.Counters)) {
	w.mu.Lock()
	fn(&w.c)
	w.mu.Unlock()
}

// walkHook is a shard whose walks a test can hold up.
type walkHook struct {
	*assoc.Shard
	w *fakeWorker
}

func (h walkHook) Range(fn func(assoc.Key, assoc.Value) bool) {
	h.w.mu.Lock()
	walk := h.w.walk
	h.w.mu.Unlock()
	if walk != nil {
		walk()
	}
	h.Shard.Range(fn)
}

// fakeClock is a Clock that moves only when the test advances it. Tickers
// fire like time.Ticker: one pending tick at most, later ones dropped.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	tickers []*fakeTicker
}

type fakeTicker struct {
	clk    *fakeClock
	c      chan time.Time
	period time.Duration // guarded by clk.mu
	next   time.Time     // guarded by clk.mu
	live   bool          // guarded by clk.mu
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTicker(d time.Duration) Ticker {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTicker{clk: c, c: make(chan time.Time, 1), period: d, next: c.now.Add(d), live: true}
	c.tickers = append(c.tickers, t)
	return t
}

// Advance moves the clock by d, firing every tick that falls due on the way.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	end := c.now.Add(d)
	for {
		// The earliest due tick first, so tickers see time in order.
		var first *fakeTicker
		for _, t := range c.tickers {
			if t.live && !t.next.After(end) && (first == nil || t.next.Before(first.next)) {
				first = t
			}
		}
		if first == nil {
			break
		}
		c.now = first.next
		select {
		case first.c <- first.next:
		default:
		}
		first.next = first.next.Add(first.period)
	}
	c.now = end
}

// pending reports whether a live ticker holds a tick nobody took yet.
func (c *fakeClock) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range c.tickers {
		if t.live && len(t.c) > 0 {
			return true
		}
	}
	return false
}

func (t *fakeTicker) C() <-chan time.Time { return t.c }

func (t *fakeTicker) Reset(d time.Duration) {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	t.period, t.next, t.live = d, t.clk.now.Add(d), true
}

func (t *fakeTicker) Stop() {
	t.clk.mu.Lock()
	defer t.clk.mu.Unlock()
	t.live = false
}

// fakeNeighbors resolves every server at once to a MAC made of its address.
type fakeNeighbors struct{}

func (fakeNeighbors) Refresh([]int, []string, []netip.Addr) (bool, int) { return false, 0 }

func (fakeNeighbors) Lookup(_ int, addr netip.Addr) ([6]byte, bool) {
	b := addr.As16()
	return [6]byte{2, 0, b[12], b[13], b[14], b[15]}, true
}

// fakeProber answers health probes from a table the test sets (a server is
// healthy unless marked otherwise) and reports every probe on probes.
type fakeProber struct {
	mu      sync.Mutex
	failing map[netip.Addr]bool
	count   map[netip.Addr]int
	probes  chan health.Target
}

func newFakeProber() *fakeProber {
	return &fakeProber{failing: map[netip.Addr]bool{}, count: map[netip.Addr]int{}, probes: make(chan health.Target, 1024)}
}

func (f *fakeProber) probe(_ context.Context, t health.Target) (bool, string) {
	f.mu.Lock()
	bad := f.failing[t.Addr]
	f.count[t.Addr]++
	f.mu.Unlock()
	f.probes <- t
	if bad {
		return false, "connection refused (fake)"
	}
	return true, "connected (fake)"
}

func (f *fakeProber) setFailing(addr netip.Addr, failing bool) {
	f.mu.Lock()
	f.failing[addr] = failing
	f.mu.Unlock()
}

func (f *fakeProber) probed(addr netip.Addr) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.count[addr]
}

// waitProbes waits until addr has been probed n times in all.
func (f *fakeProber) waitProbes(tb testing.TB, addr netip.Addr, n int) {
	tb.Helper()
	deadline := time.After(waitLimit)
	for f.probed(addr) < n {
		select {
		case <-f.probes:
		case <-deadline:
			tb.Fatalf("%v probed %d times within %v, want %d", addr, f.probed(addr), waitLimit, n)
		}
	}
}

// harness runs a real Daemon on fakes.
type harness struct {
	d      *Daemon
	plane  *fakePlane
	clock  *fakeClock
	prober *fakeProber
	path   string // the configuration file
	errc   chan error
	logs   *logBuffer // what the daemon logged
}

// logBuffer collects a daemon's log lines; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// lines returns the logged lines that contain s.
func (l *logBuffer) lines(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range strings.Split(l.b.String(), "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// startDaemon writes text to a configuration file, loads it and runs a
// daemon on fakes until the test ends; the servers at failing fail their
// health probes from the first. It returns once the daemon is ready.
func startDaemon(tb testing.TB, text string, failing ...netip.Addr) *harness {
	tb.Helper()
	h := &harness{plane: newFakePlane(tb, 2), clock: newFakeClock(), prober: newFakeProber(),
		path: filepath.Join(tb.TempDir(), "ipfront.toml"), errc: make(chan error, 1), logs: new(logBuffer)}
	for _, a := range failing {
		h.prober.setFailing(a, true)
	}
	h.write(tb, text)
	spec, err := config.Load(h.path)
	if err != nil {
		tb.Fatalf("load %s: %v", h.path, err)
	}
	h.d = NewDaemon(spec, zerolog.New(h.logs), DaemonOptions{Start: h.plane.start, Clock: h.clock,
		Neighbors: fakeNeighbors{}, Probe: h.prober.probe})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	go func() { h.errc <- h.d.Run(ctx, func() { close(ready) }) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-h.errc; err != nil {
			tb.Errorf("Run = %v", err)
		}
		h.plane.mu.Lock()
		defer h.plane.mu.Unlock()
		if !h.plane.closed {
			tb.Error("Run returned without closing the data plane")
		}
	})
	select {
	case <-ready:
	case err := <-h.errc:
		h.errc <- err
		tb.Fatalf("Run = %v before ready", err)
	case <-time.After(waitLimit):
		tb.Fatalf("daemon not ready within %v", waitLimit)
	}
	return h
}

// write replaces the configuration file.
func (h *harness) write(tb testing.TB, text string) {
	tb.Helper()
	if err := os.WriteFile(h.path, []byte(text), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// reload rewrites the file and reloads it.
func (h *harness) reload(tb testing.TB, text string) error {
	tb.Helper()
	h.write(tb, text)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	_, err := h.d.Reload(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		tb.Fatalf("Reload did not return within %v", waitLimit)
	}
	return err
}

// step advances the clock by d and returns once every tick it fired has
// been taken and the control goroutine has finished what the ticks started.
func (h *harness) step(tb testing.TB, d time.Duration) {
	tb.Helper()
	h.clock.Advance(d)
	deadline := time.Now().Add(waitLimit)
	for h.clock.pending() {
		if time.Now().After(deadline) {
			tb.Fatalf("ticks not taken within %v", waitLimit)
		}
		time.Sleep(100 * time.Microsecond)
	}
	h.sync(tb)
}

// waitTables waits for a publication whose tables satisfy ok, and for the
// daemon to have adopted the state they were built from.
func (h *harness) waitTables(tb testing.TB, what string, ok func(*fastpath.Tables) bool) *fastpath.Tables {
	tb.Helper()
	t := h.plane.waitTables(tb, what, ok)
	h.sync(tb)
	return t
}

// sync returns once the control goroutine has handled everything queued
// before it: a request goes through the same loop as events.
func (h *harness) sync(tb testing.TB) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := h.d.do(ctx, func() error { return nil }); err != nil {
		tb.Fatalf("control goroutine: %v", err)
	}
}

// healthEvent is a verdict on the server at addr of set.
func healthEvent(set string, addr netip.Addr, up bool) health.Event {
	return health.Event{Target: health.Target{Set: set, Server: addr.String(), Addr: addr}, Up: up}
}
