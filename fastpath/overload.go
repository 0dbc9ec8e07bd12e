package fastpath

import "github.com/ipfront/ipfront/fastpath/steer"

// The worker's side of overload shedding (steer/overload.go): it tells the
// steering program when its RX ring is close to full, so that openings are
// dropped before the ring and established connections' segments are not
// lost in it.
//
// Shedding starts at three quarters of a ring of backlog, when the kernel
// is a fraction of a millisecond from dropping every frame, and stops at a
// quarter. Lower marks would shed the SYNs of real clients whenever bulk
// transfers fill the ring in bursts (seen on the lab's FTP tests at half a
// ring); the flood test holds with these.

// overloadCell is where the worker publishes its state; *steer.OverloadCell.
type overloadCell interface{ SetState(uint32) }

// rxBacklogger is a port that can tell its RX ring's backlog cheaply;
// *xsk.Socket.
type rxBacklogger interface{ RxBacklog() uint32 }

// overload is a worker's overload state. The zero value (no cell) does
// nothing.
type overload struct {
	cell     overloadCell
	port     rxBacklogger
	shedding bool
	on, off  uint32 // backlog at which shedding starts and stops
}

// setOverload gives w its queue's overload cell; ringSize is the RX ring's.
// Ports that cannot tell their backlog get none.
func (w *Worker) setOverload(cell overloadCell, ringSize uint32) {
	port, ok := w.port.(rxBacklogger)
	if !ok || cell == nil || ringSize < 4 {
		return
	}
	w.ovl = overload{cell: cell, port: port, on: ringSize * 3 / 4, off: ringSize / 4}
	cell.SetState(steer.OverloadNormal)
}

// tick is the worker's once-per-iteration look at its ring (one atomic
// load); the cell is written only when the state changes.
func (o *overload) tick() {
	if o.cell == nil {
		return
	}
	switch backlog := o.port.RxBacklog(); {
	case !o.shedding && backlog >= o.on:
		o.shedding = true
		o.cell.SetState(steer.OverloadShedding)
	case o.shedding && backlog <= o.off:
		o.shedding = false
		o.cell.SetState(steer.OverloadNormal)
	}
}

// stopped leaves the cell normal: nothing drains the ring any more, and a
// queue without a worker passes its frames to the kernel.
func (o *overload) stopped() {
	if o.cell != nil {
		o.shedding = false
		o.cell.SetState(steer.OverloadNormal)
	}
}
