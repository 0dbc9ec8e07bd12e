package fastpath

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/steer"
)

// The worker's side of overload shedding (steer/overload.go): it tells the
// steering program when its RX ring is filling faster than it drains, so
// that openings are dropped before the ring and established connections'
// segments are not lost in it.
const (
	// overloadArmedFor is how long after an overload the cell stays armed
	// (shedding whenever the worker stalls): a flood comes in waves of
	// scheduling, not in single batches.
	overloadArmedFor = time.Second
	// overloadBeatEvery is how stale the heartbeat may be before the
	// worker writes it again: the write is a cache line the steering
	// program reads on another core, and the program's stall threshold
	// is hundreds of microseconds.
	overloadBeatEvery = 16 * time.Microsecond
)

// overloadCell is where the worker publishes its state; *steer.OverloadCell.
type overloadCell interface {
	SetState(uint32)
	Beat(ns uint64)
}

// rxBacklogger is a port that can tell its RX ring's backlog cheaply;
// *xsk.Socket.
type rxBacklogger interface{ RxBacklog() uint32 }

// overload is a worker's overload state. The zero value (no cell) does
// nothing.
type overload struct {
	cell    overloadCell
	port    rxBacklogger
	state   uint32
	on, off uint32 // backlog at which shedding starts (half the ring) and stops (an eighth)
	// armedUntil is when an armed cell returns to normal; lastBeat the
	// clock reading of the last heartbeat written (0: none since sleep).
	armedUntil, lastBeat time.Duration
	// monoBase is CLOCK_MONOTONIC (the steering program's clock) in
	// nanoseconds at assoc.Elapsed() == 0.
	monoBase int64
}

// setOverload gives w its queue's overload cell; ringSize is the RX ring's.
// Ports that cannot tell their backlog get none.
func (w *Worker) setOverload(cell overloadCell, ringSize uint32) {
	port, ok := w.port.(rxBacklogger)
	if !ok || cell == nil || ringSize < 8 {
		return
	}
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	w.ovl = overload{cell: cell, port: port, on: ringSize / 2, off: ringSize / 8,
		monoBase: ts.Nano() - int64(assoc.Elapsed())}
	cell.SetState(steer.OverloadNormal)
}

// tick is the worker's once-per-iteration look at its ring, el the
// iteration's clock reading: normal -> shedding at half a ring of backlog,
// shedding -> armed at an eighth, armed -> normal after overloadArmedFor
// without another overload. The heartbeat is written only while not normal.
func (o *overload) tick(el time.Duration) {
	if o.cell == nil {
		return
	}
	backlog := o.port.RxBacklog()
	next := o.state
	switch {
	case backlog >= o.on:
		next = steer.OverloadShedding
	case o.state == steer.OverloadShedding && backlog <= o.off:
		next, o.armedUntil = steer.OverloadArmed, el+overloadArmedFor
	case o.state == steer.OverloadArmed && el >= o.armedUntil:
		next = steer.OverloadNormal
	}
	if next != steer.OverloadNormal && (o.lastBeat == 0 || el-o.lastBeat >= overloadBeatEvery) {
		o.lastBeat = el
		o.cell.Beat(uint64(o.monoBase + int64(el)))
	}
	if next != o.state {
		o.state = next
		o.cell.SetState(next)
	}
}

// asleep tells the program the worker sleeps in poll(2): its ring is empty
// and the kernel wakes it, so a missing heartbeat is not a stall.
func (o *overload) asleep() {
	if o.cell != nil && o.lastBeat != 0 {
		o.lastBeat = 0
		o.cell.Beat(0)
	}
}

// stopped leaves the cell normal: nothing drains the ring any more, and a
// queue without a worker passes its frames to the kernel.
func (o *overload) stopped() {
	if o.cell != nil {
		o.state = steer.OverloadNormal
		o.cell.SetState(steer.OverloadNormal)
		o.cell.Beat(0)
	}
}
