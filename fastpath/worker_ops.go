package fastpath

import (
	"time"

	"github.com/ipfront/ipfront/fastpath/xsk"
)

// Operators' view of a worker: how busy its loop is, where its UMEM frames
// are and how full its rings with the slow path are. None of it costs a
// packet anything: the loop accounting is an add per iteration on the clock
// reading the iteration takes anyway, the UMEM gauges are refreshed once a
// second, and the ring depths are read by the slow path from the rings'
// own indices.

// account charges the time since the previous iteration's clock reading to
// busy or idle, by what the previous iteration was: one that received frames
// (st.idle == 0: iterate resets it after housekeeping) or one that found the
// RX ring empty (its spinning and sleeping included). The iteration's own
// poll falls into the previous one's share: a receive is short next to the
// forwarding or sleeping it follows. el is assoc.Elapsed at this
// iteration's housekeeping.
func (w *Worker) account(st *loopState, el time.Duration) {
	if st.clock != 0 && el > st.clock {
		d := uint64(el - st.clock)
		if st.idle == 0 {
			w.engine.local.BusyNanos += d
		} else {
			w.engine.local.IdleNanos += d
		}
	}
	st.clock = el
}

// umemAccounter is a port that says where its frames are; *xsk.Socket is
// one (owner goroutine only, which the worker is).
type umemAccounter interface {
	Accounting() xsk.Accounting
}

// pollUMEM copies the port's frame accounting into the worker's gauges.
// Once a second, from housekeeping: the type assertion and the copy are a
// few nanoseconds, but nobody needs them fresher.
func (w *Worker) pollUMEM() {
	p, ok := w.port.(umemAccounter)
	if !ok {
		return
	}
	a := p.Accounting()
	l := &w.engine.local
	l.UMEMFrames, l.UMEMFree, l.UMEMFillRx = uint64(a.Total), uint64(a.Free), uint64(a.Fill)
	l.UMEMHeld, l.UMEMTx = uint64(a.Caller), uint64(a.Tx)
}

// RingDepth is how many entries one of a worker's rings holds now and at
// most.
type RingDepth struct {
	Queued, Capacity int
}

// RingOccupancy is a reading of a worker's rings with the slow path.
type RingOccupancy struct {
	Punt    RingDepth // frame copies for the slow path (the worker produces)
	Inject  RingDepth // frames the slow path asked the worker to send
	Control RingDepth // shard changes waiting for the worker
}

// RingOccupancy reads the depth of the worker's rings with the slow path
// from the rings' indices. Safe from any goroutine; the worker is not
// disturbed. A reading may be a few entries off while producers and the
// consumer move.
func (w *Worker) RingOccupancy() RingOccupancy {
	r := w.rings
	return RingOccupancy{
		Punt:    RingDepth{r.punt.Len(), r.punt.Cap()},
		Inject:  RingDepth{r.inject.Len(), r.inject.Cap()},
		Control: RingDepth{r.control.Len(), r.control.Cap()},
	}
}
