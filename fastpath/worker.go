package fastpath

import (
	"fmt"
	"runtime"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/xsk"
)

// Loop tuning that is not worth a configuration key.
const (
	// Association slots examined per loop iteration: a few after a batch,
	// so sweeping costs well under a nanosecond per packet under load, and
	// more once the worker is really idle (two empty polls in a row: a
	// single empty poll between batches is not idleness). A sleeping worker
	// wakes every idleWaitMs and sweeps more, since nobody waits on it.
	// Staleness is also checked on every lookup, so the sweep only has to
	// keep capacity and counters current, not be prompt.
	sweepBudget      = 16
	sweepIdleBudget  = 256
	sweepSleepBudget = 4096
	idleWaitMs       = 100 // poll(2) timeout of an idle worker with busy_poll = false
)

// Worker busy-polls one AF_XDP socket (one NIC queue) on one pinned OS
// thread. Everything it touches per packet is its own: socket, engine,
// association shard. The only shared inputs are the published tables (an
// atomic pointer it loads once per loop) and its stop flag.
type Worker struct {
	Interface string
	Queue     int
	CPU       int // -1: not pinned

	sock     *xsk.Socket
	engine   *Engine
	tables   *atomic.Pointer[Tables]
	busyPoll bool
	batch    int

	stop atomic.Bool
	done chan struct{}

	descs  []xsk.Desc
	frames [][]byte
	acts   []Action
	tx     []xsk.Desc
}

// Engine returns the worker's engine, for counters and association listing.
func (w *Worker) Engine() *Engine { return w.engine }

// start runs the loop on a new goroutine locked to its thread and pinned to
// w.CPU. It returns once pinning succeeded or failed.
func (w *Worker) start() error {
	w.descs = make([]xsk.Desc, w.batch)
	w.frames = make([][]byte, w.batch)
	w.acts = make([]Action, w.batch)
	w.tx = make([]xsk.Desc, 0, w.batch)
	w.done = make(chan struct{})
	started := make(chan error, 1)
	go func() {
		defer close(w.done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if w.CPU >= 0 {
			var set unix.CPUSet
			set.Set(w.CPU)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				started <- fmt.Errorf("pin worker %s/%d to cpu %d: %w", w.Interface, w.Queue, w.CPU, err)
				return
			}
		}
		started <- nil
		w.loop()
	}()
	return <-started
}

func (w *Worker) loop() {
	var lastKernelPoll uint32
	idle := 0 // empty polls in a row
	for !w.stop.Load() {
		if t := w.tables.Load(); t != w.engine.tables {
			w.engine.SetTables(t)
		}
		now := assoc.Now()
		if now != lastKernelPoll {
			// Once a second, not per packet: the kernel's drops before the
			// RX ring (frame larger than a UMEM frame, ring full).
			lastKernelPoll = now
			w.pollKernelDrops()
		}
		n := w.sock.Receive(w.descs)
		if n == 0 {
			w.sock.Recycle()
			if idle++; idle > 1 {
				w.engine.Sweep(w.idleSweep(), now)
			}
			w.engine.Publish()
			if !w.busyPoll {
				_ = w.sock.Wait(idleWaitMs)
			}
			continue
		}
		idle = 0
		w.forward(n, now)
		w.engine.Sweep(sweepBudget, now)
		w.engine.Publish()
	}
}

// idleSweep is the sweep budget of an idle iteration: small when spinning,
// so a packet arriving mid-sweep waits little; large when the worker is about
// to sleep anyway.
func (w *Worker) idleSweep() int {
	if w.busyPoll {
		return sweepIdleBudget
	}
	return sweepSleepBudget
}

// forward runs one received batch through the engine and hands the frames to
// transmit to the TX ring, returning every other frame to the socket.
func (w *Worker) forward(n int, now uint32) {
	for i := 0; i < n; i++ {
		w.frames[i] = w.sock.Frame(w.descs[i])
	}
	w.engine.Process(w.frames[:n], w.acts[:n], now)
	tx := w.tx[:0]
	for i := 0; i < n; i++ {
		if w.acts[i] == Transmit {
			tx = append(tx, w.descs[i])
		} else {
			w.sock.Release(w.descs[i].Addr)
		}
	}
	sent := w.sock.Transmit(tx)
	var bytes uint64
	for _, d := range tx[:sent] {
		bytes += uint64(d.Len)
	}
	for _, d := range tx[sent:] {
		w.sock.Release(d.Addr)
	}
	w.engine.countTx(uint64(sent), bytes, uint64(len(tx)-sent))
	w.sock.Recycle()
}

func (w *Worker) pollKernelDrops() {
	st, err := w.sock.Stats()
	if err != nil {
		return
	}
	w.engine.local.Drops[DropKernelRx] = st.Kernel.RxDropped + st.Kernel.RxRingFull
}

// halt stops the loop and waits for it to exit.
func (w *Worker) halt() {
	w.stop.Store(true)
	<-w.done
}
