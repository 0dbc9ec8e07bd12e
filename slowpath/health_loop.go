package slowpath

import (
	"sync"

	"github.com/ipfront/ipfront/slowpath/config"
	"github.com/ipfront/ipfront/slowpath/health"
)

// healthQueue hands health events from the monitor's goroutines to the
// control goroutine. It never blocks the monitor: the monitor waits for its
// checkers inside Update, which the control goroutine calls, so a blocking
// hand-off could deadlock.
type healthQueue struct {
	mu     sync.Mutex
	events []health.Event
	notify chan struct{} // capacity 1: "there are events"
}

func newHealthQueue() *healthQueue { return &healthQueue{notify: make(chan struct{}, 1)} }

func (q *healthQueue) push(ev health.Event) {
	q.mu.Lock()
	q.events = append(q.events, ev)
	q.mu.Unlock()
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *healthQueue) drain() []health.Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.events
	q.events = nil
	return out
}

// healthTargets lists what the monitor should check for a spec.
func healthTargets(spec *config.Spec) []health.Target {
	var out []health.Target
	for _, ts := range spec.TargetSets {
		if ts.Health.Type == config.HealthNone {
			continue
		}
		for _, s := range ts.Servers {
			out = append(out, health.Target{Set: ts.Name, Server: s.Name, Addr: s.Address, Check: health.Check(ts.Health)})
		}
	}
	return out
}

// applyHealth records health verdicts and republishes when a server's
// eligibility changed. Control goroutine only.
func (d *Daemon) applyHealth(events []health.Event) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	changed := false
	for _, ev := range events {
		ref := serverRef{ev.Target.Set, ev.Target.Addr}
		if _, err := d.findServer(ev.Target.Set, ev.Target.Addr.String()); err != nil {
			continue // removed by a reload since
		}
		if d.down[ref] == !ev.Up {
			continue
		}
		changed = true
		if ev.Up {
			delete(d.down, ref)
			d.log.Info().Str("target_set", ev.Target.Set).Str("server", ev.Target.Server).Str("address", ev.Target.Addr.String()).
				Msg("server up: eligible for new associations")
		} else {
			d.down[ref] = true
			d.log.Warn().Str("target_set", ev.Target.Set).Str("server", ev.Target.Server).Str("address", ev.Target.Addr.String()).
				Str("reason", ev.Reason).Msg("server down: no new associations")
		}
	}
	if !changed {
		return nil
	}
	return d.publishLocked()
}
