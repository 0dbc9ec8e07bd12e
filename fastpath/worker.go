package fastpath

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/ring"
	"github.com/ipfront/ipfront/fastpath/xsk"
)

// Loop tuning that is not worth a configuration key.
const (
	// Association slots examined by the sweep. Staleness is also checked
	// on every lookup, so the sweep only has to keep capacity and counters
	// current, not be prompt; what it must not do is cost a frame anything.
	//
	// Under load: sweepBudget slots per sweepEvery frames forwarded,
	// whatever the batch sizes (a quarter of a slot per frame, well under a
	// nanosecond per packet). Spinning idle (two empty polls in a row: a
	// single empty poll between batches is not idleness): chunks of
	// sweepIdleBudget slots, small so that a frame arriving mid-chunk waits
	// a microsecond or two, and no more than sweepIdlePerSecond slots a
	// second: a worker that spins through thousands of empty polls a
	// millisecond would otherwise stream its whole shard through the cache
	// hundreds of times a second, taking memory bandwidth and cache from
	// the cores that feed it. A sleeping worker wakes every idleWaitMs and
	// sweeps more, since nobody waits on it.
	sweepBudget        = 16
	sweepEvery         = 64
	sweepIdleBudget    = 64
	sweepIdlePerSecond = 1 << 20
	sweepSleepBudget   = 4096
	// idleWaitMs is the poll(2) timeout of an idle worker with busy_poll =
	// false: how often a sleeping worker sweeps and polls the kernel's drop
	// counters. Control messages and injected frames do not wait for it:
	// their producers wake a sleeping worker (see Worker.sleep).
	idleWaitMs = 100

	// controlBudget bounds the control messages applied per loop
	// iteration, and injectBudget the injected frames sent, so a burst from
	// the slow path (a bulk import) delays the next RX batch by
	// microseconds, not by the whole burst.
	controlBudget = 64
	injectBudget  = 32

	// Ring sizes per worker. The punt ring holds frame copies of the UMEM
	// frame size (PuntSlots * FrameSize bytes: 1 MiB at 2048), enough to
	// ride out a slow-path pause of a millisecond at a high punt rate; the
	// inject ring is smaller because the slow path refills it at its own
	// pace; control messages are small and come in bulk (resync).
	puntSlots    = 512
	injectSlots  = 128
	controlSlots = 4096
)

// workerRings are a worker's hand-offs with the slow path. None of them ever
// makes the worker wait: the worker produces into the punt ring (a full ring
// drops the frame, counted as punt_ring_full) and consumes the inject and
// control rings with a bounded budget per loop iteration.
type workerRings struct {
	// punt carries copies of frames the engine punted: the worker
	// produces, one slow-path goroutine consumes (Dataplane.Punted).
	punt *ring.Frames
	// inject carries frames the slow path wants transmitted: any slow-path
	// goroutine produces (Dataplane.Inject), the worker consumes.
	inject *ring.MPFrames
	// control carries changes to the worker's shard: any slow-path
	// goroutine produces (Dataplane.PushControl), the worker consumes.
	control *ring.MPSC[ControlMsg]
}

// newRings makes a worker's rings of the configured sizes.
func newRings(cfg *workerConfig) *workerRings {
	or := func(n, def int) int {
		if n > 0 {
			return n
		}
		return def
	}
	return &workerRings{
		punt:    ring.NewFrames(or(cfg.puntSlots, puntSlots), cfg.slotSize),
		inject:  ring.NewMPFrames(or(cfg.injectSlots, injectSlots), cfg.slotSize),
		control: ring.NewMPSC[ControlMsg](or(cfg.controlSlots, controlSlots)),
	}
}

// Worker busy-polls one port (one NIC queue) on one pinned OS thread.
// Everything it touches per packet is its own: port, engine, association
// shard. The shared inputs are the published tables (an atomic pointer it
// loads once per loop), its inject and control rings (drained with a budget
// at the top of each loop) and its stop flag; its one shared output besides
// the counters is the punt ring.
type Worker struct {
	Interface string
	Queue     int
	CPU       int // -1: not pinned

	port     Port
	engine   *Engine
	tables   *atomic.Pointer[Tables]
	rings    *workerRings
	busyPoll bool
	batch    int
	idleWait int           // poll timeout when idle, ms: idleWaitMs (tests: -1, woken by the port only)
	idleSpin time.Duration // busyPoll false: how long to keep polling after the last packet before sleeping

	// sleeping is set while the worker sleeps in its port's Wait (or is
	// about to); a producer of its control or inject ring that clears it
	// wakes the port (see sleep and wakeIfSleeping).
	sleeping atomic.Bool

	// process is engine.Process. Tests wrap it to force verdicts their
	// tables cannot produce (Punt, until a set has a helper); the worker
	// calls it once per batch.
	process func(frames [][]byte, acts []Action, now uint32)

	stop atomic.Bool
	done chan struct{}

	handoff *handoff // rings with other interfaces' workers (NAT, two-armed; handoff.go); nil with one interface
	ovl     overload // what the steering program is told of the RX ring's backlog (overload.go)

	descs  []xsk.Desc
	frames [][]byte
	acts   []Action
	tx     []xsk.Desc
	ctl    []ControlMsg // control messages taken off the ring, controlBudget
	itx    []xsk.Desc   // injected frames to transmit, injectBudget
	alloc  []xsk.Desc   // one frame for an injected frame (a field: a local would escape through Port)
}

// workerConfig is what newWorker needs besides the port, engine and tables.
type workerConfig struct {
	iface    string
	queue    int
	cpu      int
	busyPoll bool
	batch    int
	slotSize int // punt and inject ring slot size: the port's frame size
	// Ring sizes; zero takes puntSlots, injectSlots, controlSlots. Tests
	// shrink them to fill a ring with a few frames.
	puntSlots, injectSlots, controlSlots int
	// idleWaitMs overrides the idle poll timeout when not zero; -1 sleeps
	// until the port wakes the worker, which lets a test step the loop.
	idleWaitMs int
	// idleSpin is how long a worker with busyPoll false keeps polling after
	// its last packet before it sleeps; 0 sleeps at the first empty poll.
	idleSpin time.Duration
}

// newWorker wires a worker to its port, engine and the published tables and
// allocates everything its loop uses; start runs it.
func newWorker(port Port, engine *Engine, tables *atomic.Pointer[Tables], cfg workerConfig) *Worker {
	w := &Worker{
		Interface: cfg.iface, Queue: cfg.queue, CPU: cfg.cpu,
		port: port, engine: engine, tables: tables, rings: newRings(&cfg),
		busyPoll: cfg.busyPoll, batch: cfg.batch, idleWait: idleWaitMs, idleSpin: cfg.idleSpin,
		process: engine.Process,
		descs:   make([]xsk.Desc, cfg.batch),
		frames:  make([][]byte, cfg.batch),
		acts:    make([]Action, cfg.batch),
		tx:      make([]xsk.Desc, 0, cfg.batch),
		ctl:     make([]ControlMsg, controlBudget),
		itx:     make([]xsk.Desc, 0, injectBudget),
		alloc:   make([]xsk.Desc, 1),
	}
	if cfg.idleWaitMs != 0 {
		w.idleWait = cfg.idleWaitMs
	}
	return w
}

// Engine returns the worker's engine, for counters and association listing.
func (w *Worker) Engine() *Engine { return w.engine }

// start runs the loop on a new goroutine locked to its thread and pinned to
// w.CPU. It returns once pinning succeeded or failed.
func (w *Worker) start() error {
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

// loop is the worker: iterate until stopped, then publish the counters one
// last time.
func (w *Worker) loop() {
	var st loopState
	for !w.stop.Load() {
		w.iterate(&st)
	}
	w.ovl.stopped()
	w.engine.Publish()
}

// loopState is what one loop iteration leaves to the next.
type loopState struct {
	lastKernelPoll uint32        // clock reading of the last kernel drop poll
	idle           int           // empty polls in a row
	spinStart      time.Time     // when the current run of empty polls began (busyPoll false)
	sweepDebt      int           // frames forwarded since the last sweep after a batch, < sweepEvery
	sweepSecond    uint32        // clock reading sweepCredit belongs to
	sweepCredit    int           // slots the idle sweep may still examine in sweepSecond
	clock          time.Duration // the last iteration's clock reading (assoc.Elapsed); 0 before the first
}

// iterate is one loop iteration: receive a batch, then pick up new tables,
// apply control messages and send injected frames (housekeeping), then
// forward the batch; or, when there is none, do the housekeeping, sweep and
// perhaps sleep (idleIteration). So a table generation published or a
// control message queued before the worker starts an iteration applies to
// every frame that iteration receives.
func (w *Worker) iterate(st *loopState) {
	var n int
	if st.idle > 0 {
		n = w.idlePoll()
	} else {
		n = w.port.Receive(w.descs)
	}
	if n == 0 {
		w.idleIteration(st)
		return
	}
	now := w.housekeeping(st)
	st.idle = 0
	w.forward(n, now)
	if st.sweepDebt += n; st.sweepDebt >= sweepEvery {
		k := st.sweepDebt / sweepEvery
		st.sweepDebt -= k * sweepEvery
		w.engine.Sweep(k*sweepBudget, now)
	}
	if n < len(w.descs) {
		// A batch that did not fill: the RX ring is drained, and whoever
		// reads the counters next (the API, a test that just got its
		// answer) should see this batch; under full load the copy goes
		// every publishEvery batches instead.
		w.engine.Publish()
	} else {
		w.engine.MaybePublish()
	}
}

// idleIteration is an iteration whose poll found the RX ring empty. It is a
// function of its own, never inlined, so that a profile tells an idle
// worker's polling from its work (the benchmark harness's overhead
// accounting counts samples under Worker.idle* as idle).
//
//go:noinline
func (w *Worker) idleIteration(st *loopState) {
	now := w.housekeeping(st)
	// Nobody waits on an idle worker: the overflow counts the ring
	// producers keep are copied now rather than once a second.
	w.ringOverflows()
	w.idle(st, now) // worker_idle.go
}

// idlePoll is the RX poll of an iteration after an empty one, in a function
// of its own for the same reason as idleIteration: the polls a worker spins
// through while nothing arrives are idle time, not the adapter's work.
//
//go:noinline
func (w *Worker) idlePoll() int { return w.port.Receive(w.descs) }

// housekeeping is what every iteration does besides its batch: pick up a new
// table generation, read the clock (returned), poll the kernel's drop
// counters once a second, apply control messages and send injected frames.
func (w *Worker) housekeeping(st *loopState) (now uint32) {
	if t := w.tables.Load(); t != w.engine.tables {
		w.engine.SetTables(t)
	}
	// The iteration's one clock reading: the association clock and the
	// busy/idle accounting (worker_ops.go) both come from it.
	el := assoc.Elapsed()
	w.account(st, el)
	w.ovl.tick()
	now = assoc.Seconds(el)
	if now != st.lastKernelPoll {
		// Once a second, not per packet: the kernel's drops before the
		// RX ring (frame larger than a UMEM frame, ring full), and the
		// rings' overflow counts.
		st.lastKernelPoll = now
		w.pollKernelDrops()
		w.ringOverflows()
		w.pollUMEM() // worker_ops.go
	}
	w.applyControl()
	w.transmitInjected(now)
	w.transmitHandedOff() // handoff.go
	return now
}

// ringOverflows copies the inject and control rings' overflow counts (kept
// by their producers) into the worker's counters: three atomic loads of
// cache lines the producers write, so not on every busy iteration.
func (w *Worker) ringOverflows() {
	w.engine.setRingOverflows(w.rings.inject.Overflows()+w.rings.inject.Oversize(), w.rings.control.Overflows())
}

// publishIdleEvery is how many empty polls in a row a spinning worker lets
// pass between counter publications after the first: publishing copies
// every counter (most of an empty poll's cost), and nothing changes while
// nothing arrives but what the slow path hands over, which then shows within
// microseconds.
const publishIdleEvery = 64

// publishIdle publishes the counters on the first empty poll after work and
// then on every publishIdleEvery-th.
func (w *Worker) publishIdle(st *loopState) {
	if st.idle == 1 || st.idle%publishIdleEvery == 0 {
		w.engine.Publish()
	}
}

// sweepIdle is the sweep of an idle iteration: one chunk of
// sweepIdleBudget slots while this second's allowance of
// sweepIdlePerSecond lasts (see the constants).
func (w *Worker) sweepIdle(st *loopState, now uint32) {
	if now != st.sweepSecond {
		st.sweepSecond, st.sweepCredit = now, sweepIdlePerSecond
	}
	if st.sweepCredit <= 0 {
		return
	}
	st.sweepCredit -= sweepIdleBudget
	w.engine.Sweep(sweepIdleBudget, now)
}

// applyControl applies up to controlBudget messages from the control ring,
// oldest first.
func (w *Worker) applyControl() {
	n := w.rings.control.PopBatch(w.ctl)
	for i := range w.ctl[:n] {
		w.engine.ApplyControl(&w.ctl[i])
	}
}

// transmitInjected sends up to injectBudget frames from the inject ring: each
// is copied into a frame of the port, run through the engine (the flow's
// association and forwarding, no punting) and transmitted.
func (w *Worker) transmitInjected(now uint32) {
	var dropped uint64
	tx := w.itx[:0]
	for len(tx) < cap(tx) {
		frame, _, ok := w.rings.inject.Peek()
		if !ok {
			break
		}
		if w.port.AllocTx(w.alloc) == 0 {
			// No free frame now; the next iterations get frames back from
			// RX and TX completion. Dropping keeps the ring moving if the
			// port never has any to spare.
			w.rings.inject.Release()
			dropped++
			break
		}
		d := w.alloc[0]
		if len(frame) > int(d.Len) {
			w.port.Release(d.Addr)
			w.rings.inject.Release()
			dropped++
			continue
		}
		d.Len = uint32(len(frame))
		buf := w.port.Frame(d)
		copy(buf, frame)
		w.rings.inject.Release()
		if w.engine.ProcessInjected(buf, now) != Transmit {
			w.port.Release(d.Addr)
			dropped++
			continue
		}
		if w.handOff(0, buf) { // leaves by another interface (handoff.go)
			w.port.Release(d.Addr)
			continue
		}
		tx = append(tx, d)
	}
	w.flushHandoff()
	if len(tx) == 0 {
		w.engine.countInjected(0, dropped)
		return
	}
	sent := w.transmit(tx)
	w.engine.countInjected(uint64(sent), dropped+uint64(len(tx)-sent))
}

// forward runs one received batch through the engine and hands the frames to
// transmit to the TX ring and those to punt to the punt ring, returning every
// other frame to the port.
func (w *Worker) forward(n int, now uint32) {
	for i := 0; i < n; i++ {
		w.frames[i] = w.port.Frame(w.descs[i])
	}
	w.process(w.frames[:n], w.acts[:n], now)
	tx := w.tx[:0]
	var punted uint64
	for i := 0; i < n; i++ {
		switch w.acts[i] {
		case Transmit:
			if !w.handOff(i, w.frames[i]) { // else a copy went to another interface's worker (handoff.go)
				w.descs[i].Len = uint32(len(w.frames[i])) // IPIP/GUE grew it (forward_encap.go)
				tx = append(tx, w.descs[i])
				continue
			}
		case Punt:
			// A copy goes to the slow path; the UMEM frame is freed now,
			// so a slow consumer never holds the port's frames.
			if w.rings.punt.Put(w.frames[i], w.engine.puntMeta(i, w.Queue)) {
				punted++
			} else {
				w.engine.drop(DropPuntRingFull)
			}
		}
		w.port.Release(w.descs[i].Addr)
	}
	if punted > 0 {
		w.rings.punt.Flush() // one commit and at most one wake-up per batch
		w.engine.countPunted(punted)
	}
	w.flushHandoff()
	if len(tx) > 0 {
		// Kicks the kernel at once: a partial batch never waits for more.
		w.transmit(tx)
	}
	w.port.Recycle()
}

// transmit hands tx to the port, releases what the TX ring refused and
// counts both; it returns how many were sent.
func (w *Worker) transmit(tx []xsk.Desc) int {
	sent := w.port.Transmit(tx)
	var bytes uint64
	for _, d := range tx[:sent] {
		bytes += uint64(d.Len)
	}
	for _, d := range tx[sent:] {
		w.port.Release(d.Addr)
	}
	w.engine.countTx(uint64(sent), bytes, uint64(len(tx)-sent))
	return sent
}

func (w *Worker) pollKernelDrops() {
	st, err := w.port.Stats()
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

// PushControl queues m for the worker, which applies it to its shard at the
// top of a loop iteration (at most controlBudget per iteration), after every
// message queued before it. It never waits for the worker: a full ring
// returns false, which the caller must treat as "not applied" (it is also
// counted, ControlOverflow). Safe from any goroutine; producers are
// serialised among themselves, never with the worker.
//
// A worker sleeping in poll(2) (busy_poll = false) is woken, by the first
// push after it fell asleep only.
func (w *Worker) PushControl(m ControlMsg) bool {
	if !w.rings.control.TryPush(m) {
		return false
	}
	w.wakeIfSleeping()
	return true
}

// Inject queues a copy of frame (at most the port's frame size) for the
// worker to transmit: in its next loop iteration the worker copies it into a
// frame of its port, runs it through its engine (the flow's association and
// its set's forwarding; never punted again) and transmits it. A full ring
// or a frame too long returns false (counted, InjectOverflow); frames
// accepted but not sent count as InjectDropped. Safe from any goroutine; it
// wakes a sleeping worker as PushControl does.
func (w *Worker) Inject(frame []byte) bool {
	if !w.rings.inject.TryPush(frame, ring.Meta{Set: ring.NoSet}) {
		return false
	}
	w.wakeIfSleeping()
	return true
}

// Punted returns the reading end of the worker's punt ring. Exactly one
// goroutine may read it.
func (w *Worker) Punted() *PuntReader { return &PuntReader{r: w.rings.punt} }

// PuntReader is the slow path's end of a worker's punt ring: copies of the
// frames the worker's engine punted, oldest first, with their ingress
// interface and queue and, for frames that reached a target set, the set id
// and association key hash (ring.Meta). One goroutine reads it.
type PuntReader struct{ r *ring.Frames }

// Peek returns the oldest punted frame without removing it, or false if there
// is none. The bytes are the ring's and stay valid, and the reader's to
// rewrite (before passing them to Inject, say), until Release.
func (p *PuntReader) Peek() (frame []byte, m ring.Meta, ok bool) { return p.r.Peek() }

// Release removes the oldest punted frame, giving its slot back to the worker.
func (p *PuntReader) Release() { p.r.Release() }

// Wait blocks, without spinning, until a punted frame is there (true) or done
// is closed (false, unless a frame arrived meanwhile). The worker wakes it at
// most once per batch.
func (p *PuntReader) Wait(done <-chan struct{}) bool { return p.r.Wait(done) }

// Len returns the number of punted frames waiting.
func (p *PuntReader) Len() int { return p.r.Len() }
