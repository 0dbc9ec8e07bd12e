package fastpath

import (
	"github.com/ipfront/ipfront/fastpath/ring"
	"github.com/ipfront/ipfront/fastpath/xsk"
)

// Frames that leave by another interface (NAT, two-armed).
//
// An AF_XDP socket can only transmit frames of its own UMEM, its TX ring
// has one producer (the worker that owns it), and XDP_REDIRECT is not
// available to a frame already delivered to user space. So a worker whose
// frame must leave by interface B hands it to a worker of B through a ring
// of its own (one single-producer, single-consumer ring.Frames per ordered
// pair of workers, frames copied in), and that worker copies it into a
// frame of its port and transmits it at the top of its next loop iteration,
// like an injected frame but without running it through its engine again.
// The handing worker commits once per batch and wakes the receiver if it
// sleeps (at most one wake-up per sleep, through the port), so busy_poll =
// false costs no added latency.
//
// The alternatives: one worker owning both interfaces' queues would
// transmit on both sockets itself (one copy, no ring) but changes what a
// worker is (one port, one engine interface) for every mode; a socket of
// each worker on every interface cannot be bound, as a queue takes one
// socket unless the UMEM is shared, and sharing it makes completions
// arrive at the other worker. The ring costs a second copy per frame, which
// BenchmarkHandoff measures (fastpath/handoff_test.go: about 40 ns at 64
// bytes, 120 ns at 1500 on the 2-vCPU development VM), and lets two-armed
// NAT run on the unchanged worker.
//
// Each worker of interface A hands to one worker of interface B: the one
// with the same queue number, else the one of index queue mod B's worker
// count.

// minHandoffSlots is the least capacity of one worker-to-worker ring. A
// ring holds as many frames as the sender's RX ring (ring_size), so a burst
// the sender's RX ring absorbed while the receiver was off its core (two
// workers and the kernel sharing cores) is absorbed by the hand-off too,
// instead of being dropped there: with 512 slots, TestFTPNAT's bulk TCP
// through two arms lost 3.5 % of its frames as handoff_ring_full.
const minHandoffSlots = 512

// handoffBudget bounds the frames a worker transmits per loop iteration
// from each ring handed to it: four RX batches, so a receiver drains a ring
// faster than one sender fills it, and a flood from another worker delays
// its own RX batch by a bounded amount.
const handoffBudget = 256

// handoff is a worker's rings with the workers of other interfaces.
type handoff struct {
	out     [MaxInterfaces]*handoffLink // by egress interface; nil: none (the worker's own, or no worker)
	in      []*ring.Frames              // rings others hand frames in through; this worker consumes
	pending uint32                      // interfaces whose out ring got frames since the last flush
	tx      []xsk.Desc                  // frames taken from in, to transmit
}

// handoffLink is one worker's ring to a worker of another interface.
type handoffLink struct {
	r  *ring.Frames
	to *Worker
}

// wireWorkers connects the workers for NAT: each engine reads every other
// worker's shard (replies, expectations) and learned clients (learn.go) and
// knows every interface's MAC;
// with more than one interface, each worker gets a ring to a worker of
// every other interface. Call before the workers start.
func wireWorkers(ifaces []Interface, workers []*Worker, ringSize int) {
	engines := make([]*Engine, len(workers))
	for i, w := range workers {
		engines[i] = w.engine
	}
	macs := make([][6]byte, len(ifaces))
	for i := range ifaces {
		macs[i] = ifaces[i].MAC
	}
	byIface := make([][]*Worker, len(ifaces))
	for _, w := range workers {
		w.engine.setNATPeers(engines)
		w.engine.SetInterfaces(macs)
		byIface[w.engine.iface] = append(byIface[w.engine.iface], w)
	}
	if len(ifaces) < 2 {
		return
	}
	for _, w := range workers {
		w.handoff = &handoff{tx: make([]xsk.Desc, 0, handoffBudget)}
	}
	for _, w := range workers {
		for b, targets := range byIface {
			if b == w.engine.iface || len(targets) == 0 {
				continue
			}
			to := targets[w.Queue%len(targets)]
			for _, t := range targets {
				if t.Queue == w.Queue {
					to = t
				}
			}
			r := ring.NewFrames(max(minHandoffSlots, ringSize), w.rings.punt.SlotSize())
			w.handoff.out[b] = &handoffLink{r: r, to: to}
			to.handoff.in = append(to.handoff.in, r)
		}
	}
}

// handOff passes frame (number i of the batch last processed) to the
// worker of its egress interface if that is not this worker's, and reports
// whether it did; the caller then releases the frame (a copy went). A frame
// that cannot be handed off is dropped (handoff_ring_full).
func (w *Worker) handOff(i int, frame []byte) bool {
	if !w.engine.nat.cross[i] { // inlined: one load per frame on the common path
		return false
	}
	return w.handOffCross(i, frame)
}

// handOffCross is handOff of a frame that leaves by another interface.
func (w *Worker) handOffCross(i int, frame []byte) bool {
	eg, _ := w.engine.takeEgress(i)
	var l *handoffLink
	if w.handoff != nil {
		l = w.handoff.out[eg]
	}
	if l == nil || !l.r.Put(frame, ring.Meta{Iface: uint16(eg), Set: ring.NoSet}) {
		w.engine.drop(DropHandoffFull)
		return true
	}
	w.handoff.pending |= 1 << eg
	return true
}

// flushHandoff commits the frames handed off since the last flush, one
// commit per ring, and wakes their receivers if they sleep.
func (w *Worker) flushHandoff() {
	h := w.handoff
	if h == nil || h.pending == 0 {
		return
	}
	for b := range h.out {
		if h.pending&(1<<b) != 0 {
			l := h.out[b]
			l.r.Flush()
			l.to.wakeIfSleeping()
		}
	}
	h.pending = 0
}

// transmitHandedOff transmits up to handoffBudget frames from each ring
// other workers handed frames in through: each is copied into a frame of
// the port, already translated and addressed.
func (w *Worker) transmitHandedOff() {
	h := w.handoff
	if h == nil {
		return
	}
	for _, r := range h.in {
		tx := h.tx[:0]
		for len(tx) < cap(tx) {
			frame, _, ok := r.Peek()
			if !ok {
				break
			}
			if w.port.AllocTx(w.alloc) == 0 {
				// No free frame now: leave the rest for the next
				// iteration, which gets frames back from completions.
				break
			}
			d := w.alloc[0]
			if len(frame) > int(d.Len) {
				w.port.Release(d.Addr)
				r.Release()
				w.engine.drop(DropHandoffFull)
				continue
			}
			d.Len = uint32(copy(w.port.Frame(d), frame))
			r.Release()
			tx = append(tx, d)
		}
		if len(tx) > 0 {
			w.transmit(tx)
		}
	}
}

// handoffIdle reports whether no frame waits in the rings handed to the
// worker; it must not sleep otherwise.
func (w *Worker) handoffIdle() bool {
	if w.handoff == nil {
		return true
	}
	for _, r := range w.handoff.in {
		if r.Len() != 0 {
			return false
		}
	}
	return true
}
