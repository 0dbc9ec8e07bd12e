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

// logUnchecked says once, at start, which sets are not health-checked, so
// an operator who expected checks learns why no server ever goes down.
func (d *Daemon) logUnchecked(spec *config.Spec) {
	for _, ts := range spec.TargetSets {
		if ts.Health.Type != config.HealthNone {
			continue
		}
		d.log.Info().Str("target_set", ts.Name).
			Msg(`servers are not health-checked (type = "none", or no [target_set.health] on a set without TCP or with ports "*"); add [target_set.health] to check them`)
	}
}

// applyHealth records health verdicts and republishes when a server's
// eligibility changed. Events for servers the spec no longer checks come
// from checkers a reload stopped and are ignored: such a server is up.
// Control goroutine only.
func (d *Daemon) applyHealth(events []health.Event) {
	cur := d.cur()
	checked := map[serverRef]bool{}
	for _, t := range healthTargets(cur.spec) {
		checked[serverRef{t.Set, t.Addr}] = true
	}
	var down map[serverRef]bool
	for _, ev := range events {
		ref := serverRef{ev.Target.Set, ev.Target.Addr}
		if !checked[ref] {
			continue
		}
		if down == nil {
			down = cloneRefs(cur.down)
		}
		if down[ref] == !ev.Up {
			continue
		}
		if ev.Up {
			delete(down, ref)
			d.log.Info().Str("target_set", ev.Target.Set).Str("server", ev.Target.Server).Str("address", ev.Target.Addr.String()).
				Msg("server up: eligible for new associations")
		} else {
			down[ref] = true
			d.log.Warn().Str("target_set", ev.Target.Set).Str("server", ev.Target.Server).Str("address", ev.Target.Addr.String()).
				Str("reason", ev.Reason).Msg("server down: no new associations")
		}
	}
	if down == nil || equalRefs(down, cur.down) {
		return
	}
	next := *cur
	next.down = down
	d.record(&next, "publish health change")
}

func equalRefs(a, b map[serverRef]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}
