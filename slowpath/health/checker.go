package health

import (
	"context"
	"sync/atomic"
	"time"
)

// verdict is what a checker concludes about its server.
type verdict uint32

const (
	verdictUnknown verdict = iota // no verdict yet; reported as up
	verdictUp
	verdictDown
)

// hysteresis turns probe results into a verdict: fall consecutive failures
// make the server down, rise consecutive successes make it up.
type hysteresis struct {
	rise, fall int
	state      verdict
	ok, failed int // current run of successes, of failures; saturate at rise, fall
}

// observe records one probe result and reports whether the verdict changed.
func (h *hysteresis) observe(success bool) bool {
	if success {
		h.failed = 0
		if h.ok < h.rise {
			h.ok++
		}
		return h.ok >= h.rise && h.set(verdictUp)
	}
	h.ok = 0
	if h.failed < h.fall {
		h.failed++
	}
	return h.failed >= h.fall && h.set(verdictDown)
}

// set makes v the verdict and reports whether it changed.
func (h *hysteresis) set(v verdict) bool {
	changed := h.state != v
	h.state = v
	return changed
}

// checker probes one server. Its goroutine (run) owns the probing and the
// hysteresis; the fields are shared with the Monitor as commented.
type checker struct {
	// target is replaced by Update when only the server's name changed; run
	// reads it for events. Its Check and Device never change.
	target atomic.Pointer[Target]
	// state holds a verdict: written by Update before run starts, then by
	// run only; read by State.
	state  atomic.Uint32
	cancel context.CancelFunc // stops run; called by Update and Close
	done   chan struct{}      // closed when run has returned
}

func newChecker(t Target) *checker {
	c := &checker{done: make(chan struct{})}
	c.target.Store(&t)
	return c
}

// sameProbe reports whether c probes t the way it would be probed anew.
func (c *checker) sameProbe(t Target) bool {
	o := c.target.Load()
	return o.Check == t.Check && o.Device == t.Device
}

// run is c's goroutine: it probes until ctx is cancelled, starting from the
// verdict in c.state.
func (c *checker) run(ctx context.Context, onChange func(Event), o *Options) {
	defer close(c.done)
	t := c.target.Load()
	h := hysteresis{rise: t.Check.Rise, fall: t.Check.Fall, state: verdict(c.state.Load())}
	report := func(reason string) {
		c.state.Store(uint32(h.state)) // before the event: a caller reacting to it sees the new state
		onChange(Event{Target: *c.target.Load(), Up: h.state == verdictUp, Reason: reason, At: o.now()})
	}

	if err := t.Validate(); err != nil {
		if h.set(verdictDown) {
			report(err.Error())
		}
		<-ctx.Done()
		return
	}
	if t.Check.Type == TypeNone {
		if h.set(verdictUp) {
			report("no check")
		}
		<-ctx.Done()
		return
	}

	probe := o.probe(*t)
	tick, stop := o.ticker(t.Check.Interval)
	defer stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, t.Check.Timeout)
		ok, reason := probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return // stopped mid-probe: the result says nothing about the server
		}
		end := o.now()
		if h.observe(ok) {
			report(reason)
		}
		if !waitTick(ctx, tick, end) {
			return
		}
	}
}

// waitTick waits for the first tick that fired at or after end, skipping the
// one a probe that outlasted Interval left pending. It returns false if ctx
// is cancelled first.
func waitTick(ctx context.Context, c <-chan time.Time, end time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case at := <-c:
			if !at.Before(end) {
				return true
			}
		}
	}
}
