package fastpath

import (
	"sync/atomic"
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/fastpath/porttest"
	"github.com/ipfront/ipfront/fastpath/xsk"
)

// accountingPort is the fake port with the xsk.Socket's frame accounting, so
// that the worker's UMEM gauges have something to read.
type accountingPort struct{ *porttest.Port }

func (p accountingPort) Accounting() xsk.Accounting {
	a := p.Port.Accounting()
	return xsk.Accounting{Total: int64(a.Total), Free: int64(a.Free), Fill: int64(a.Rx), Caller: int64(a.Held), Tx: int64(a.Tx)}
}

// TestWorkerLoopAccounting: every nanosecond between the first and the last
// iteration's clock reading is charged to busy or idle, busy after an
// iteration that received frames and idle after one that found nothing; so
// the busy share operators graph is the loop's real share of work.
func TestWorkerLoopAccounting(t *testing.T) {
	tab := wTables(t, 1)
	var tables atomic.Pointer[Tables]
	tables.Store(tab)
	port := porttest.New(porttest.Config{Discard: true})
	w := newWorker(port, newEngine(t, 1024, tab), &tables, workerConfig{iface: "fake0", cpu: -1, batch: 16, slotSize: 2048, busyPoll: true})
	c := client(false, 1)
	deliver := func() {
		for i := range 4 {
			port.Deliver(tcp(t, c, uint16(30000+i), packet.TCPFlagACK))
		}
	}
	var st loopState
	step := func(what string, frames bool, wantBusy, wantIdle bool) {
		t.Helper()
		if frames {
			deliver()
		}
		busy, idle := w.engine.local.BusyNanos, w.engine.local.IdleNanos
		w.iterate(&st)
		if grew := w.engine.local.BusyNanos != busy; grew != wantBusy {
			t.Errorf("%s: busy time grew = %v, want %v", what, grew, wantBusy)
		}
		if grew := w.engine.local.IdleNanos != idle; grew != wantIdle {
			t.Errorf("%s: idle time grew = %v, want %v", what, grew, wantIdle)
		}
	}
	step("first iteration", true, false, false) // nothing before it to charge
	first := st.clock
	step("batch after a batch", true, true, false)
	step("empty poll after a batch", false, true, false)
	step("empty poll after an empty poll", false, false, true)
	step("another empty poll", false, false, true)
	step("batch after an empty poll", true, false, true)
	step("batch after a batch, again", true, true, false)
	w.engine.Publish()
	got := published(w.engine)
	if span := uint64(st.clock - first); got.BusyNanos+got.IdleNanos != span {
		t.Errorf("BusyNanos + IdleNanos = %d + %d, want the span between the first and last clock readings, %d",
			got.BusyNanos, got.IdleNanos, span)
	}
	if got.RxPackets != 16 {
		t.Errorf("RxPackets = %d, want 16: the batches were not received", got.RxPackets)
	}
}

// TestWorkerUMEMGauges: once a second the worker publishes where its port's
// frames are, and the counts add up to the UMEM.
func TestWorkerUMEMGauges(t *testing.T) {
	tab := wTables(t, 1)
	var tables atomic.Pointer[Tables]
	tables.Store(tab)
	fake := porttest.New(porttest.Config{Frames: 64, Discard: true})
	w := newWorker(accountingPort{fake}, newEngine(t, 1024, tab), &tables, workerConfig{iface: "fake0", cpu: -1, batch: 16, slotSize: 2048, busyPoll: true})
	// Three frames wait on the RX ring when the once-a-second refresh runs
	// (the first iteration's housekeeping, after its receive took the rest).
	for i := range 16 + 3 {
		fake.Deliver(tcp(t, client(false, 1), uint16(30000+i), packet.TCPFlagACK))
	}
	st := loopState{lastKernelPoll: ^uint32(0)} // never a clock reading: this iteration refreshes
	w.iterate(&st)
	w.engine.Publish()
	got := published(w.engine)
	if got.UMEMFrames != 64 || got.UMEMFillRx != 3 || got.UMEMHeld != 16 || got.UMEMFree != 64-3-16 || got.UMEMTx != 0 {
		t.Errorf("UMEM frames, free, fill/rx, held, tx = %d, %d, %d, %d, %d; want 64, 45, 3, 16, 0",
			got.UMEMFrames, got.UMEMFree, got.UMEMFillRx, got.UMEMHeld, got.UMEMTx)
	}
}

// TestWorkerRingOccupancy: the ring depths a reader sees are the entries
// queued for the worker and not yet taken.
func TestWorkerRingOccupancy(t *testing.T) {
	tab := wTables(t, 1)
	var tables atomic.Pointer[Tables]
	tables.Store(tab)
	port := porttest.New(porttest.Config{Discard: true})
	w := newWorker(port, newEngine(t, 1024, tab), &tables, workerConfig{iface: "fake0", cpu: -1, batch: 16, slotSize: 2048,
		busyPoll: true, injectSlots: 8, controlSlots: 16})
	frame := tcp(t, client(false, 1), 30000, packet.TCPFlagACK)
	for range 3 {
		w.Inject(frame)
	}
	for range 5 {
		w.PushControl(ControlMsg{Op: ControlDelete})
	}
	want := RingOccupancy{Punt: RingDepth{0, puntSlots}, Inject: RingDepth{3, 8}, Control: RingDepth{5, 16}}
	if got := w.RingOccupancy(); got != want {
		t.Errorf("RingOccupancy() = %+v, want %+v", got, want)
	}
	var st loopState
	w.iterate(&st)
	if got := w.RingOccupancy(); got.Inject.Queued != 0 || got.Control.Queued != 0 {
		t.Errorf("after an iteration: RingOccupancy() = %+v, want the inject and control rings drained", got)
	}
}
