package health

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// key names a server across Updates: its set and its address.
type key struct {
	set  string
	addr netip.Addr
}

// Monitor runs a checker per server and reports verdict changes. See the
// package documentation for the state machine, the timing bound and the
// contract on onChange.
type Monitor struct {
	onChange func(Event)
	opts     Options

	// view maps servers to their checkers. Update and Close publish a new map
	// and never change a published one; State loads it without locking.
	view atomic.Pointer[map[key]*checker]

	mu     sync.Mutex // held by Update and Close for their whole run, so that they never interleave
	closed bool       // guarded by mu
}

// NewMonitor returns a Monitor that checks nothing until Update. onChange
// receives every verdict change; it is called from the Monitor's goroutines
// and must not block (see the package documentation).
func NewMonitor(onChange func(Event)) *Monitor { return NewMonitorOptions(onChange, Options{}) }

// Options replace what a Monitor's checkers probe with and time by; the zero
// value probes the network on the system clock. Tests use them to drive
// checkers deterministically.
type Options struct {
	// Probe, if set, checks a server once instead of the network probe of
	// its Check; ctx carries the probe's deadline.
	Probe func(ctx context.Context, t Target) (ok bool, reason string)
	// Now, if set, replaces time.Now for events and tick bookkeeping.
	Now func() time.Time
	// NewTicker, if set, replaces time.NewTicker for the probe schedule; it
	// returns the tick channel and a function that stops the ticker.
	NewTicker func(d time.Duration) (<-chan time.Time, func())
}

// NewMonitorOptions is NewMonitor with o.
func NewMonitorOptions(onChange func(Event), o Options) *Monitor {
	m := &Monitor{onChange: onChange, opts: o}
	m.view.Store(&map[key]*checker{})
	return m
}

func (o *Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

func (o *Options) probe(t Target) probe {
	if o.Probe != nil {
		return func(ctx context.Context) (bool, string) { return o.Probe(ctx, t) }
	}
	return newProbe(t)
}

func (o *Options) ticker(d time.Duration) (<-chan time.Time, func()) {
	if o.NewTicker != nil {
		return o.NewTicker(d)
	}
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// Update makes targets the servers being checked:
//
//   - a server whose Check and Device are unchanged keeps its checker, its
//     counters and its verdict (a down server stays down); a new Server name
//     is used by its next events;
//   - a server whose Check or Device changed gets a new checker, which probes
//     at once with fresh counters but keeps the old verdict, so a reload never
//     brings a down server up before Rise successes of the new check;
//   - a new server starts unknown (reported as up);
//   - a server no longer listed is stopped.
//
// An invalid target (see Target.Validate) is reported down, with the error as
// Reason, and never probed. When a (Set, Addr) pair appears more than once,
// the first wins.
//
// Update returns once the checkers it stopped have exited: from then on they
// deliver no events, and the events of a restarted server never interleave
// between its old and new checker. Update after Close does nothing.
func (m *Monitor) Update(targets []Target) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	old := *m.view.Load()
	next := make(map[key]*checker, len(targets))
	replaced := make(map[*checker]*checker) // new checker -> the one it replaces
	for _, t := range targets {
		k := key{t.Set, t.Addr}
		if _, dup := next[k]; dup {
			continue
		}
		c := old[k]
		if c != nil && c.sameProbe(t) {
			if *c.target.Load() != t {
				c.target.Store(&t)
			}
			next[k] = c
			continue
		}
		nc := newChecker(t)
		next[k] = nc
		if c != nil {
			replaced[nc] = c
		}
	}

	var stopped []*checker
	for k, c := range old {
		if next[k] != c {
			c.cancel()
			stopped = append(stopped, c)
		}
	}
	for _, c := range stopped {
		<-c.done
	}

	for nc, c := range replaced {
		nc.state.Store(c.state.Load()) // final: c has exited
	}
	m.view.Store(&next)
	for k, c := range next {
		if old[k] != c {
			m.start(c)
		}
	}
}

// start runs c's goroutine.
func (m *Monitor) start(c *checker) {
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(ctx, m.onChange, &m.opts)
}

// State reports the verdict on the server addr of set: up is false only for
// a server that is down. known is false for a server whose first verdict is
// pending (then up is true) and for a server that is not being checked (then
// up is false).
func (m *Monitor) State(set string, addr netip.Addr) (up, known bool) {
	c := (*m.view.Load())[key{set, addr}]
	if c == nil {
		return false, false
	}
	switch verdict(c.state.Load()) {
	case verdictUp:
		return true, true
	case verdictDown:
		return false, true
	default:
		return true, false
	}
}

// Close stops every checker and waits for them to exit; no event is
// delivered after it returns, and State knows no server. Close may be called
// more than once.
func (m *Monitor) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.closed = true
	old := *m.view.Load()
	for _, c := range old {
		c.cancel()
	}
	for _, c := range old {
		<-c.done
	}
	m.view.Store(&map[key]*checker{})
}
