package health

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// The README promises that a server which stops answering is detected at
// most Interval*Fall + Timeout later, and the package doc gives the exact
// schedule behind it. Wall-clock tests can only check that with slack for
// the scheduler; these tests run one checker in virtual time instead, where
// the only slack is the one the model puts in: a probe returns
// probeLatency after its answer or its deadline, as a real one does.

// probeLatency is how long after its answer, or after its deadline, a
// virtual probe returns. It matters: a probe that runs into its deadline
// returns after the tick due at that moment, so with Timeout = Interval the
// checker skips that tick.
const probeLatency = time.Millisecond

// virtualServer is a server seen through probes in virtual time: it answers
// (at once) a probe that starts before stop or at or after resume, and lets
// every other probe run into its Timeout.
type virtualServer struct {
	stop, resume time.Duration // offsets from the start of the run
}

func (s virtualServer) answers(at time.Duration) bool {
	return at < s.stop || at >= s.resume
}

// vclock runs one checker in virtual time. The test goroutine is the clock:
// it hands the checker its ticks and answers its probes, and moves the time
// only while the checker waits for one of them, so every event is stamped
// with the virtual time it happened at.
type vclock struct {
	start  time.Time
	now    time.Duration // guarded by the hand-offs: the checker reads it only while the driver waits
	period chan time.Duration
	ticks  chan time.Time
	probes chan chan probeResult
	events chan Event
	quit   chan struct{}
}

type probeResult struct {
	ok     bool
	reason string
}

// newVclock starts a Monitor whose checker runs on a virtual clock.
func newVclock(t *testing.T) (*vclock, *Monitor) {
	v := &vclock{
		start:  time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		period: make(chan time.Duration, 1),
		ticks:  make(chan time.Time),
		probes: make(chan chan probeResult),
		events: make(chan Event),
		quit:   make(chan struct{}),
	}
	m := NewMonitorOptions(func(e Event) {
		select {
		case v.events <- e:
		case <-v.quit:
		}
	}, Options{
		Now: func() time.Time { return v.start.Add(v.now) },
		NewTicker: func(d time.Duration) (<-chan time.Time, func()) {
			v.period <- d
			return v.ticks, func() {}
		},
		// The probe ignores its context's deadline, which runs on the
		// wall clock: the driver decides when a probe times out.
		Probe: func(context.Context, Target) (bool, string) {
			reply := make(chan probeResult, 1)
			select {
			case v.probes <- reply:
			case <-v.quit:
				return false, "stopped"
			}
			r := <-reply
			return r.ok, r.reason
		},
	})
	t.Cleanup(func() { close(v.quit); m.Close() })
	return v, m
}

// run drives the checker of c against srv until it has reported want events
// or the virtual time passes until, and returns the events with their
// virtual times (offsets from the start).
func (v *vclock) run(t *testing.T, m *Monitor, c Check, srv virtualServer, want int, until time.Duration) ([]Event, []time.Duration) {
	t.Helper()
	m.Update([]Target{{Set: "web", Server: "s1", Addr: netip.MustParseAddr("192.0.2.1"), Check: c}})
	var period time.Duration
	select {
	case period = <-v.period:
	case <-time.After(wait):
		t.Fatal("the checker created no ticker")
	}
	var events []Event
	var at []time.Duration
	next := period
	for len(events) < want && v.now <= until {
		select {
		case v.ticks <- v.start.Add(next):
			// A tick the checker takes moves the clock to it, unless a
			// probe already ran past it (then the checker skips it).
			v.now = max(v.now, next)
			next += period
		case reply := <-v.probes:
			if srv.answers(v.now) {
				v.now += probeLatency
				reply <- probeResult{true, "connected"}
			} else {
				v.now += c.Timeout + probeLatency
				reply <- probeResult{false, "i/o timeout"}
			}
		case e := <-v.events:
			if got := e.At.Sub(v.start); got != v.now {
				t.Errorf("event stamped at %v, virtual time %v", got, v.now)
			}
			events = append(events, e)
			at = append(at, v.now)
		case <-time.After(wait):
			t.Fatalf("checker stuck at virtual time %v", v.now)
		}
	}
	return events, at
}

// TestDetectionBound checks the README's promise in virtual time, for
// moments across an interval at which the server can stop answering: it is
// reported down at most Interval*Fall + Timeout after it stops (plus the
// last probe's own return latency: the ticks keep their phase, so latencies
// do not add up), and exactly when the package doc's schedule says (probes
// on the ticks of a ticker started with the first probe, each failure
// waiting out Timeout). A server that stops just after a probe started and
// got its answer is the worst case, and reaches the bound. Timeout is below
// Interval, as the configuration requires.
func TestDetectionBound(t *testing.T) {
	for _, c := range []Check{
		{Type: TypeTCP, Port: 80, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 2}, // the defaults
		{Type: TypeTCP, Port: 80, Interval: 200 * time.Millisecond, Timeout: 100 * time.Millisecond, Rise: 2, Fall: 3},
		{Type: TypeTCP, Port: 80, Interval: time.Second, Timeout: 999 * time.Millisecond, Rise: 1, Fall: 2}, // the config's limit
		{Type: TypeTCP, Port: 80, Interval: 300 * time.Millisecond, Timeout: time.Millisecond, Rise: 5, Fall: 5},
	} {
		bound := c.Interval*time.Duration(c.Fall) + c.Timeout + probeLatency
		worst := time.Duration(0)
		// The server is up (Rise probes) and answers two more, then stops
		// somewhere between two probe starts (inclusive of both).
		for _, phase := range []time.Duration{0, 1, c.Interval / 4, c.Interval / 2, c.Interval - 1, c.Interval} {
			t.Run(fmt.Sprintf("interval %v timeout %v fall %d stop at +%v", c.Interval, c.Timeout, c.Fall, phase), func(t *testing.T) {
				v, m := newVclock(t)
				stop := time.Duration(c.Rise+2)*c.Interval + phase
				events, at := v.run(t, m, c, virtualServer{stop: stop, resume: 1 << 62}, 2, stop+10*bound)
				if len(events) != 2 || !events[0].Up || events[1].Up {
					t.Fatalf("events %+v, want up then down", events)
				}
				took := at[1] - stop
				if took > bound {
					t.Errorf("down %v after the server stopped answering, want at most Interval*Fall + Timeout + probe latency = %v", took, bound)
				}
				// The first probe to fail starts on the first tick at or
				// after stop; Fall-1 more follow one Interval apart.
				firstFail := (stop + c.Interval - 1) / c.Interval * c.Interval
				if want := firstFail + time.Duration(c.Fall-1)*c.Interval + c.Timeout + probeLatency; at[1] != want {
					t.Errorf("down at %v, want %v (first failing probe at %v)", at[1], want, firstFail)
				}
				worst = max(worst, took)
			})
		}
		if worst != bound-1 {
			t.Errorf("interval %v timeout %v fall %d: slowest detection %v, want %v: the bound is reached by a server that stops 1ns after a probe began",
				c.Interval, c.Timeout, c.Fall, worst, bound-1)
		}
	}
}

// TestDetectionDeadAtStart: a server that never answers is reported down
// Interval*(Fall-1) + Timeout after its checker starts, since the first
// probe runs at once.
func TestDetectionDeadAtStart(t *testing.T) {
	c := Check{Type: TypeTCP, Port: 80, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 2, Fall: 3}
	v, m := newVclock(t)
	events, at := v.run(t, m, c, virtualServer{stop: 0, resume: 1 << 62}, 1, time.Minute)
	if len(events) != 1 || events[0].Up {
		t.Fatalf("events %+v, want down", events)
	}
	if want := 2*c.Interval + c.Timeout + probeLatency; at[0] != want {
		t.Errorf("down at %v, want Interval*(Fall-1) + Timeout + probe latency = %v", at[0], want)
	}
}

// TestRecoveryBound: a server that answers again is reported up at most
// Interval*Rise + Timeout later (the package doc's bound), and only after
// Rise successes in a row.
func TestRecoveryBound(t *testing.T) {
	c := Check{Type: TypeTCP, Port: 80, Interval: time.Second, Timeout: 500 * time.Millisecond, Rise: 3, Fall: 2}
	bound := c.Interval*time.Duration(c.Rise) + c.Timeout + probeLatency
	for _, phase := range []time.Duration{0, 1, c.Timeout, c.Interval - 1} {
		t.Run(fmt.Sprintf("resume at +%v", phase), func(t *testing.T) {
			v, m := newVclock(t)
			resume := 5*c.Interval + phase
			events, at := v.run(t, m, c, virtualServer{stop: 0, resume: resume}, 2, resume+10*bound)
			if len(events) != 2 || events[0].Up || !events[1].Up {
				t.Fatalf("events %+v, want down then up", events)
			}
			if took := at[1] - resume; took > bound {
				t.Errorf("up %v after the server answered again, want at most Interval*Rise + Timeout = %v", took, bound)
			}
			firstOK := (resume + c.Interval - 1) / c.Interval * c.Interval
			if want := firstOK + time.Duration(c.Rise-1)*c.Interval + probeLatency; at[1] != want {
				t.Errorf("up at %v, want %v (first answered probe at %v)", at[1], want, firstOK)
			}
		})
	}
}

// TestSlowProbesSkipTicks: with Timeout at or above Interval (the package
// allows it, the configuration does not) a failing probe returns after the
// next tick, which the checker skips so that probes never run back to back,
// and detection stays within the package doc's
// Interval*(⌊Timeout/Interval⌋+1)*Fall + Timeout: beyond the README's
// Interval*Fall + Timeout, which is why the configuration keeps Timeout below
// Interval.
func TestSlowProbesSkipTicks(t *testing.T) {
	for _, tt := range []struct {
		c        Check
		stop     time.Duration
		failures []time.Duration // when the failing probes start
	}{{
		c:        Check{Type: TypeTCP, Port: 80, Interval: 200 * time.Millisecond, Timeout: 500 * time.Millisecond, Rise: 1, Fall: 3},
		stop:     401 * time.Millisecond,
		failures: []time.Duration{600 * time.Millisecond, 1200 * time.Millisecond, 1800 * time.Millisecond},
	}, {
		// Timeout = Interval: the probe ends probeLatency after the tick.
		c:        Check{Type: TypeTCP, Port: 80, Interval: time.Second, Timeout: time.Second, Rise: 1, Fall: 2},
		stop:     2*time.Second + 1,
		failures: []time.Duration{3 * time.Second, 5 * time.Second},
	}} {
		c := tt.c
		t.Run(fmt.Sprintf("interval %v timeout %v", c.Interval, c.Timeout), func(t *testing.T) {
			v, m := newVclock(t)
			events, at := v.run(t, m, c, virtualServer{stop: tt.stop, resume: 1 << 62}, 2, time.Minute)
			if len(events) != 2 || events[1].Up {
				t.Fatalf("events %+v, want up then down", events)
			}
			bound := c.Interval*(c.Timeout/c.Interval+1)*time.Duration(c.Fall) + c.Timeout + probeLatency
			if took := at[1] - tt.stop; took > bound {
				t.Errorf("down %v after the server stopped, want at most %v", took, bound)
			}
			if want := tt.failures[len(tt.failures)-1] + c.Timeout + probeLatency; at[1] != want {
				t.Errorf("down at %v, want %v (failing probes at %v)", at[1], want, tt.failures)
			}
			if readme := c.Interval*time.Duration(c.Fall) + c.Timeout + probeLatency; at[1]-tt.stop <= readme {
				t.Errorf("down %v after the server stopped, within Interval*Fall + Timeout: the case no longer shows why Timeout must stay below Interval", at[1]-tt.stop)
			}
		})
	}
}
