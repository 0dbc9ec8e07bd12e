package fastpath

import "time"

// DefaultIdleSpin is how long a worker with busy_poll = false keeps polling
// its rings after the last packet before it sleeps in poll(2). Under load a
// packet comes back well within it, so the worker never pays for sleeping
// and being woken (a context switch each way, and the interrupt that wakes
// it); at 50 µs an idle worker spins that long once per wake-up, a fraction
// of a percent of a core. The kernel's own busy-poll sysctls suggest 50 µs
// for the same trade.
const DefaultIdleSpin = 50 * time.Microsecond

// idle is a loop iteration that received nothing: recycle, sweep and publish,
// then, with busyPoll false and once the spin is over, sleep.
//
// A single empty poll between batches is not idleness: the sweep starts
// from the second empty poll in a row. With busyPoll false the first empty
// poll starts the spin clock; the worker sleeps once idleSpin has passed
// without a packet (at once with idleSpin 0), sweeping more first since
// nobody waits on it then. After a sleep that brought no packet the clock is
// not restarted: the worker sleeps again right away.
func (w *Worker) idle(st *loopState, now uint32) {
	w.port.Recycle()
	st.idle++
	if w.busyPoll {
		if st.idle > 1 {
			w.sweepIdle(st, now)
		}
		w.publishIdle(st)
		return
	}
	if st.idle == 1 {
		if w.idleSpin > 0 {
			st.spinStart = time.Now()
			w.engine.Publish()
			return
		}
	} else if w.idleSpin > 0 && time.Since(st.spinStart) < w.idleSpin {
		w.sweepIdle(st, now)
		w.publishIdle(st)
		return
	}
	if st.idle > 1 {
		w.engine.Sweep(sweepSleepBudget, now)
	}
	w.engine.Publish()
	w.sleep()
}

// sleep waits in the port until a frame arrives, a producer wakes the worker
// or idleWait passes.
//
// The hand-off with the producers of the control and inject rings is a
// flag (sleeping) and the rings' own indices: the worker sets the flag and
// then looks at the rings; a producer pushes and then looks at the flag
// (wakeIfSleeping). With sequentially consistent atomics at least one of
// the two sees the other's write, so a message pushed while the worker
// falls asleep either keeps it awake or wakes it. The producer that clears
// the flag is the only one to call Wake, so one sleep costs the slow path at
// most one wake-up however many messages it pushes meanwhile, and pushes to
// a worker that is awake cost no system call at all.
func (w *Worker) sleep() {
	w.sleeping.Store(true)
	if w.rings.control.Len() == 0 && w.rings.inject.Len() == 0 && w.handoffIdle() {
		_ = w.port.Wait(w.idleWait)
	}
	// If a producer cleared it, it has called (or is about to call) Wake:
	// the port then returns from its next Wait at once, one extra loop
	// iteration and no lost message.
	w.sleeping.Store(false)
}

// wakeIfSleeping wakes the worker if it sleeps and nobody woke it yet. Any
// goroutine, after a successful push.
func (w *Worker) wakeIfSleeping() {
	if w.sleeping.Load() && w.sleeping.CompareAndSwap(true, false) {
		w.port.Wake()
	}
}
