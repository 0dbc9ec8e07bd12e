package fastpath

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/fastpath/porttest"
	"github.com/ipfront/ipfront/fastpath/ring"
)

var _ Port = (*porttest.Port)(nil)

// These tests run the real worker loop (Worker.start, loop, iterate) on its
// own goroutine against porttest's fake port, and synchronise only on events:
// the port's (frames received, sent, waits) and the worker's published
// counters. The worker sleeps in the port's Wait until the test wakes it
// (idleWaitMs -1), so it never spins a core and the test decides when it
// moves.

// patience bounds every wait so a broken worker fails the test instead of
// hanging it. It is not a measurement: nothing here depends on timing.
const patience = 20 * time.Second

const (
	wSet      = 4
	ftpPort   = 21 // frames to this port are punted by puntFTP
	wQueue    = 3
	noSetPort = 9999
)

// harness is a started worker on a fake port.
type harness struct {
	t       *testing.T
	port    *porttest.Port
	tables  atomic.Pointer[Tables]
	w       *Worker
	stopped bool
}

// workerOpts configures startWorker.
type workerOpts struct {
	port porttest.Config
	cfg  workerConfig // ring sizes; iface, queue, cpu, batch and slot size are set by startWorker
	// punt, if set, turns the verdict of every received frame it selects
	// into Punt: the engine has no helper sets yet, so this stands in for
	// one. It wraps the engine's Process; the loop around it is the real
	// one.
	punt func(frame []byte) bool
}

// startWorker starts a worker on a fake port with tab published.
func startWorker(t *testing.T, tab *Tables, o workerOpts) *harness {
	t.Helper()
	h := &harness{t: t, port: porttest.New(o.port)}
	h.tables.Store(tab)
	cfg := o.cfg
	cfg.iface, cfg.queue, cfg.cpu, cfg.batch = "fake0", wQueue, -1, 16
	cfg.slotSize = h.port.Config().FrameSize
	if cfg.idleWaitMs == 0 {
		cfg.idleWaitMs = -1
	}
	h.w = newWorker(h.port, newEngine(t, 1024, tab), &h.tables, cfg)
	if o.punt != nil {
		process := h.w.process
		h.w.process = func(frames [][]byte, acts []Action, now uint32) {
			process(frames, acts, now)
			for i, f := range frames {
				if o.punt(f) {
					acts[i] = Punt
				}
			}
		}
	}
	if err := h.w.start(); err != nil {
		t.Fatalf("start() = %v", err)
	}
	t.Cleanup(h.stop)
	return h
}

// stop stops the worker and checks that it left no frame behind: every frame
// it received or allocated was transmitted or released, exactly once.
func (h *harness) stop() {
	if h.stopped {
		return
	}
	h.stopped = true
	h.w.stop.Store(true)
	h.port.Wake()
	<-h.w.done
	if a := h.port.Accounting(); a.Held != 0 {
		h.t.Errorf("after stop: %v; want no frame held by the worker", a)
	}
	if err := h.port.Check(); err != nil {
		h.t.Errorf("after stop: port.Check() = %v", err)
	}
}

// counters returns the worker's published counters.
func (h *harness) counters() *Counters {
	c := new(Counters)
	h.w.engine.Snapshot(c)
	return c
}

// await waits for a port event.
func (h *harness) await(what string, cond func(porttest.Events) bool) {
	h.t.Helper()
	if err := h.port.WaitUntil(patience, cond); err != nil {
		h.t.Fatalf("waiting for %s: %v (events %+v)", what, err, h.port.Events())
	}
}

// iterations returns once the worker has started at least n loop iterations
// after the call, waking it for each: what was queued or published before
// the call has been seen by then. (The first iteration to enter Wait after
// the call may have begun before it; the next began after.)
func (h *harness) iterations(n int) {
	h.t.Helper()
	w0 := h.port.Events().Waits
	for k := uint64(1); k <= uint64(n)+1; k++ {
		h.port.Wake()
		h.await("a loop iteration", func(ev porttest.Events) bool { return ev.Waits >= w0+k })
	}
}

// until waits until the published counters satisfy cond, waking the worker
// so it publishes, and returns them.
func (h *harness) until(what string, cond func(*Counters) bool) *Counters {
	h.t.Helper()
	deadline := time.Now().Add(patience)
	for {
		if c := h.counters(); cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waiting for counters: %s; have %+v", what, h.counters())
		}
		h.iterations(1)
	}
}

// deliver hands frames to the port for the worker to receive.
func (h *harness) deliver(frames ...[]byte) {
	h.t.Helper()
	for i, f := range frames {
		if !h.port.Deliver(f) {
			h.t.Fatalf("Deliver(frame %d) = false: the fake port has no free frame", i)
		}
	}
}

// sent waits until the port has sent n frames in all and returns them.
func (h *harness) sent(n int) [][]byte {
	h.t.Helper()
	h.await("sent frames", func(ev porttest.Events) bool { return ev.Sent >= uint64(n) })
	return h.port.Sent()
}

// wTables is a generation with one set wSet on vip4, ports 80 and 21, three
// servers of generation gen.
func wTables(t *testing.T, gen uint32) *Tables {
	t.Helper()
	servers := []srv{{weight: 1, gen: gen}, {weight: 1, gen: gen}, {weight: 1, gen: gen}}
	return buildTables(t, uint64(gen), setSpec{id: wSet, vip: vip4, ports: []PortRange{{vipPort, vipPort}, {ftpPort, ftpPort}}, servers: servers})
}

// checkForwarded checks that out is in rewritten to server slot of wSet,
// generation gen: destination MAC the server's, source MAC ours, every other
// byte unchanged.
func checkForwarded(t *testing.T, what string, in, out []byte, slot int, gen uint32) {
	t.Helper()
	eth := packet.Ethernet(out)
	if want := serverMAC(wSet, slot, gen, testIface); eth.Dst() != want {
		t.Errorf("%s: destination MAC %x, want %x (slot %d, generation %d)", what, eth.Dst(), want, slot, gen)
	}
	if eth.Src() != lbMAC {
		t.Errorf("%s: source MAC %x, want ours %x", what, eth.Src(), lbMAC)
	}
	if !bytes.Equal(in[12:], out[12:]) {
		t.Errorf("%s: bytes after the MACs changed", what)
	}
}

// puntFTP selects TCP frames to port 21.
func puntFTP(frame []byte) bool {
	var f packet.Flow
	return packet.Parse(frame, &f) == packet.OK && f.Proto == packet.ProtoTCP && f.DstPort == ftpPort
}

func TestWorkerForwards(t *testing.T) {
	tab := wTables(t, 1)
	h := startWorker(t, tab, workerOpts{})
	const n = 40 // more than a batch
	in := make([][]byte, n)
	for i := range in {
		in[i] = tcp(t, client(false, i), uint16(30000+i), packet.TCPFlagSYN)
	}
	h.deliver(in...)
	out := h.sent(n)
	for i := range in {
		c := client(false, i)
		checkForwarded(t, fmt.Sprintf("frame %d", i), in[i], out[i], maglevSlot(tab.Set(wSet), c, uint16(30000+i), packet.ProtoTCP), 1)
	}
	c := h.until("40 received and sent", func(c *Counters) bool { return c.TxPackets == n })
	if c.RxPackets != n || c.NewAssociations != n || c.Dropped() != 0 {
		t.Errorf("RxPackets, NewAssociations, Dropped = %d, %d, %d, want %d, %d, 0", c.RxPackets, c.NewAssociations, c.Dropped(), n, n)
	}
}

// TestWorkerPicksUpNewTables publishes a generation that gives every slot a
// new server while the worker runs: the next frames of an established flow
// and of a new one go to the new servers.
func TestWorkerPicksUpNewTables(t *testing.T) {
	tab1, tab2 := wTables(t, 1), wTables(t, 2)
	h := startWorker(t, tab1, workerOpts{})
	c := client(false, 1)
	syn := tcp(t, c, 40000, packet.TCPFlagSYN)
	h.deliver(syn)
	checkForwarded(t, "first SYN", syn, h.sent(1)[0], maglevSlot(tab1.Set(wSet), c, 40000, packet.ProtoTCP), 1)

	h.tables.Store(tab2)
	h.iterations(1)
	ack := tcp(t, c, 40000, packet.TCPFlagACK)
	syn2 := tcp(t, c, 40001, packet.TCPFlagSYN)
	h.deliver(ack, syn2)
	out := h.sent(3)
	checkForwarded(t, "established flow after the swap", ack, out[1], maglevSlot(tab2.Set(wSet), c, 40000, packet.ProtoTCP), 2)
	checkForwarded(t, "new flow after the swap", syn2, out[2], maglevSlot(tab2.Set(wSet), c, 40001, packet.ProtoTCP), 2)
	if got := h.w.engine.Tables(); got != tab2 {
		t.Errorf("engine tables generation %d, want %d", got.Generation, tab2.Generation)
	}
}

// TestWorkerAppliesControlInOrder queues four changes to one flow's record;
// only their order leads to the last server, which Maglev would not pick:
// the next frame of the flow goes there. A delete of a missing key is
// counted as rejected and the association gauge follows the record.
func TestWorkerAppliesControlInOrder(t *testing.T) {
	tab := wTables(t, 1)
	h := startWorker(t, tab, workerOpts{})
	c := client(false, 9)
	const port = 41000
	m := maglevSlot(tab.Set(wSet), c, port, packet.ProtoTCP)
	a, b, last := uint8((m+2)%3), uint8(m), uint8((m+1)%3)
	k := key(c, port, packet.ProtoTCP, wSet)
	val := func(slot uint8) assoc.Value { return assoc.Value{Server: slot, Gen: 1, LastSeen: assoc.Now()} }
	other := key(c, port+1, packet.ProtoTCP, wSet)
	for i, msg := range []ControlMsg{
		{Op: ControlInsert, Key: k, Value: val(a)}, // reordered after the delete: insert b fails
		{Op: ControlDelete, Key: k},
		{Op: ControlInsert, Key: k, Value: val(b)},
		{Op: ControlUpdate, Key: k, Value: val(last)}, // reordered before the insert: it fails
		{Op: ControlDelete, Key: other},               // rejected: no such record
	} {
		if !h.w.PushControl(msg) {
			t.Fatalf("PushControl(message %d) = false on an empty ring", i)
		}
	}
	h.iterations(1)
	ack := tcp(t, c, port, packet.TCPFlagACK)
	h.deliver(ack)
	checkForwarded(t, "flow after the control messages", ack, h.sent(1)[0], int(last), 1)
	got := h.until("control messages counted", func(c *Counters) bool { return c.ControlApplied+c.ControlRejected == 5 })
	if got.ControlApplied != 4 || got.ControlRejected != 1 {
		t.Errorf("ControlApplied, ControlRejected = %d, %d, want 4, 1", got.ControlApplied, got.ControlRejected)
	}
	for slot := range uint8(3) {
		want := int64(0)
		if slot == last {
			want = 1
		}
		if g := got.ServerAssociations[wSet*MaxServers+int(slot)]; g != want {
			t.Errorf("ServerAssociations[slot %d] = %d, want %d", slot, g, want)
		}
	}
}

// TestWorkerControlBudget queues more control messages than one iteration
// applies: each iteration applies exactly controlBudget of them, the rest
// wait for the next, and all of them land. The test runs the loop's
// iterations itself (a started worker, woken by the first push, would not
// sleep until the ring is empty).
func TestWorkerControlBudget(t *testing.T) {
	tab := wTables(t, 1)
	port := porttest.New(porttest.Config{})
	var tables atomic.Pointer[Tables]
	tables.Store(tab)
	w := newWorker(port, newEngine(t, 1024, tab), &tables, workerConfig{iface: "fake0", cpu: -1, batch: 16, slotSize: 2048, busyPoll: true})
	const n = 2*controlBudget + 5
	for i := range n {
		k := key(client(false, 1000+i), 50000, packet.ProtoTCP, wSet)
		if !w.PushControl(ControlMsg{Op: ControlInsert, Key: k, Value: assoc.Value{Server: 1, Gen: 1, LastSeen: assoc.Now()}}) {
			t.Fatalf("PushControl(%d) = false", i)
		}
	}
	var st loopState
	for step, want := range []uint64{controlBudget, 2 * controlBudget, n} {
		w.iterate(&st) // busyPoll: never waits
		if got := published(w.engine).ControlApplied; got != want {
			t.Fatalf("after iteration %d: ControlApplied = %d, want %d", step+1, got, want)
		}
	}
	if live := w.engine.Shard().Live(); live != n {
		t.Errorf("shard holds %d records, want %d", live, n)
	}
}

// TestWorkerPuntRingFull punts more frames than the punt ring holds: the
// ring keeps the first ones in order with their metadata, the rest are
// dropped and counted, and the worker keeps forwarding meanwhile. A reader
// sleeping in Wait is woken by the next punt.
func TestWorkerPuntRingFull(t *testing.T) {
	const slots, extra = 4, 6
	tab := wTables(t, 1)
	h := startWorker(t, tab, workerOpts{cfg: workerConfig{puntSlots: slots}, punt: puntFTP})
	c := client(false, 3)
	var punts [][]byte
	for i := range slots + extra {
		punts = append(punts, tcpTo(t, c, uint16(20000+i), vip4, ftpPort, packet.TCPFlagACK|packet.TCPFlagPSH))
	}
	h.deliver(punts...)
	got := h.until("every punt counted", func(c *Counters) bool { return c.Punted+c.Drops[DropPuntRingFull] == slots+extra })
	if got.Punted != slots || got.Drops[DropPuntRingFull] != extra {
		t.Fatalf("Punted, punt_ring_full = %d, %d, want %d, %d", got.Punted, got.Drops[DropPuntRingFull], slots, extra)
	}

	web := tcp(t, c, 30000, packet.TCPFlagSYN)
	h.deliver(web)
	checkForwarded(t, "frame behind a full punt ring", web, h.sent(1)[0], maglevSlot(tab.Set(wSet), c, 30000, packet.ProtoTCP), 1)

	pr := h.w.Punted()
	for i := range slots {
		f, m, ok := pr.Peek()
		if !ok {
			t.Fatalf("punt ring: frame %d missing", i)
		}
		k := key(c, uint16(20000+i), packet.ProtoTCP, wSet)
		want := ring.Meta{Iface: testIface, Queue: wQueue, Set: wSet, Hash: k.Hash()}
		if !bytes.Equal(f[12:], punts[i][12:]) || m != want {
			t.Fatalf("punt ring frame %d: meta %+v, want %+v; same bytes: %v", i, m, want, bytes.Equal(f[12:], punts[i][12:]))
		}
		pr.Release()
	}
	if _, _, ok := pr.Peek(); ok {
		t.Fatalf("punt ring holds more than %d frames", slots)
	}

	woke := make(chan bool)
	go func() { woke <- pr.Wait(nil) }()
	h.deliver(punts[0])
	if !<-woke {
		t.Fatalf("PuntReader.Wait = false, want true after a punt")
	}
	if h.until("the new punt counted", func(c *Counters) bool { return c.Punted == slots+1 }).Drops[DropPuntRingFull] != extra {
		t.Errorf("a punt into a drained ring was dropped")
	}
}

// TestWorkerTxRingFull: frames the TX ring refuses are released and counted,
// and the worker forwards again once the ring drains.
func TestWorkerTxRingFull(t *testing.T) {
	const ringSize, n = 4, 10
	tab := wTables(t, 1)
	h := startWorker(t, tab, workerOpts{port: porttest.Config{TxRing: ringSize, ManualCompletion: true}})
	var in [][]byte
	for i := range n {
		in = append(in, tcp(t, client(false, i), 30000, packet.TCPFlagSYN))
	}
	h.deliver(in...)
	got := h.until("every frame sent or refused", func(c *Counters) bool { return c.TxPackets+c.Drops[DropTxRingFull] == n })
	if got.TxPackets != ringSize || got.Drops[DropTxRingFull] != n-ringSize {
		t.Fatalf("TxPackets, tx_ring_full = %d, %d, want %d, %d", got.TxPackets, got.Drops[DropTxRingFull], ringSize, n-ringSize)
	}
	h.port.Complete(ringSize)
	h.deliver(in[0])
	h.sent(ringSize + 1)
}

// TestWorkerTransmitsInjected: an injected frame goes out through the flow's
// association and its set's forwarding (DSR: server MAC, our MAC), without
// counting as received; one that reaches no set is dropped and counted; one
// too long is refused to the sender.
func TestWorkerTransmitsInjected(t *testing.T) {
	tab := wTables(t, 1)
	h := startWorker(t, tab, workerOpts{punt: puntFTP})
	c := client(false, 5)
	const port = 42000
	m := maglevSlot(tab.Set(wSet), c, port, packet.ProtoTCP)
	slot := uint8((m + 1) % 3) // not where Maglev would send a new flow
	k := key(c, port, packet.ProtoTCP, wSet)
	if !h.w.PushControl(ControlMsg{Op: ControlInsert, Key: k, Value: assoc.Value{Server: slot, Gen: 1, LastSeen: assoc.Now()}}) {
		t.Fatalf("PushControl = false")
	}
	h.iterations(1)

	// A command an FTP helper rewrote: to port 21, of the flow whose
	// record the control message made. (The punt stand-in wraps only the
	// worker's batches, so this does not test noPunt; the engine honours
	// it.)
	frame := tcpTo(t, c, port, vip4, ftpPort, packet.TCPFlagACK|packet.TCPFlagPSH)
	if !h.w.Inject(frame) {
		t.Fatalf("Inject = false on an empty ring")
	}
	h.port.Wake()
	checkForwarded(t, "injected frame", frame, h.sent(1)[0], int(slot), 1)

	stray := tcpTo(t, c, port, vip4, noSetPort, packet.TCPFlagACK)
	if !h.w.Inject(stray) {
		t.Fatalf("Inject(stray) = false on an empty ring")
	}
	if h.w.Inject(make([]byte, h.port.Config().FrameSize+1)) {
		t.Fatalf("Inject(frame longer than a UMEM frame) = true, want false")
	}
	got := h.until("injected frames counted", func(c *Counters) bool {
		return c.Injected+c.InjectDropped == 2 && c.InjectOverflow == 1
	})
	if got.Injected != 1 || got.InjectDropped != 1 || got.Drops[DropNoTargetSet] != 1 {
		t.Errorf("Injected, InjectDropped, no_target_set = %d, %d, %d, want 1, 1, 1", got.Injected, got.InjectDropped, got.Drops[DropNoTargetSet])
	}
	if got.RxPackets != 0 || got.TxPackets != 1 || got.Punted != 0 {
		t.Errorf("RxPackets, TxPackets, Punted = %d, %d, %d, want 0, 1, 0 (injected frames are not received, nor punted)", got.RxPackets, got.TxPackets, got.Punted)
	}
	if ev := h.port.Events(); ev.Allocated != 2 {
		t.Errorf("port frames allocated = %d, want 2 (one per injected frame taken)", ev.Allocated)
	}
}

// TestWorkerStopsCleanly: a worker sleeping in its port's Wait with the
// production idle timeout stops when told, its last counters are published,
// and every frame it took is back.
func TestWorkerStopsCleanly(t *testing.T) {
	tab := wTables(t, 1)
	h := startWorker(t, tab, workerOpts{cfg: workerConfig{idleWaitMs: idleWaitMs}})
	in := tcp(t, client(false, 1), 30000, packet.TCPFlagSYN)
	h.deliver(in, in, in)
	h.sent(3)
	h.await("the worker to sleep", func(ev porttest.Events) bool { return ev.Waits >= 1 && ev.RxQueued == 0 })
	h.w.halt() // no Wake: the worker must come out of Wait by itself
	h.stopped = true
	if a := h.port.Accounting(); a.Held != 0 {
		t.Errorf("after halt: %v, want no frame held", a)
	}
	if err := h.port.Check(); err != nil {
		t.Errorf("after halt: port.Check() = %v", err)
	}
	if c := h.counters(); c.RxPackets != 3 || c.TxPackets != 3 {
		t.Errorf("published after halt: RxPackets, TxPackets = %d, %d, want 3, 3", c.RxPackets, c.TxPackets)
	}
	before := h.port.Events().Receives
	h.deliver(in)
	if after := h.port.Events().Receives; after != before {
		t.Errorf("port Receive called %d times after halt returned", after-before)
	}
}

// TestWorkerIterationAllocatesNothing drives loop iterations with received,
// punted, injected frames and control messages: none allocates.
func TestWorkerIterationAllocatesNothing(t *testing.T) {
	tab := wTables(t, 1)
	port := porttest.New(porttest.Config{Discard: true})
	var tables atomic.Pointer[Tables]
	tables.Store(tab)
	w := newWorker(port, newEngine(t, 1024, tab), &tables, workerConfig{iface: "fake0", cpu: -1, batch: 16, slotSize: 2048, busyPoll: true})
	c := client(false, 1)
	var frames [][]byte
	for i := range 8 {
		frames = append(frames, tcp(t, c, uint16(30000+i), packet.TCPFlagACK))
	}
	punt := tcpTo(t, c, 20000, vip4, ftpPort, packet.TCPFlagACK)
	frames = append(frames, punt)
	process := w.process
	w.process = func(fs [][]byte, acts []Action, now uint32) {
		process(fs, acts, now)
		for i, f := range fs {
			if puntFTP(f) {
				acts[i] = Punt
			}
		}
	}
	pr := w.Punted()
	msg := ControlMsg{Op: ControlInsert, Key: key(c, 1, packet.ProtoTCP, wSet), Value: assoc.Value{Server: 1, Gen: 1, LastSeen: assoc.Now()}}
	var st loopState
	allocs := testing.AllocsPerRun(200, func() {
		for _, f := range frames {
			port.Deliver(f)
		}
		w.Inject(frames[0])
		w.PushControl(msg) // inserted once, then rejected as existing
		w.iterate(&st)
		w.iterate(&st) // idle: sweep and publish
		if _, _, ok := pr.Peek(); ok {
			pr.Release()
		}
	})
	if allocs != 0 {
		t.Errorf("loop iterations: %v allocs per run, want 0", allocs)
	}
	if c := published(w.engine); c.Punted == 0 || c.Injected == 0 || c.TxPackets == 0 || c.ControlApplied != 1 {
		t.Errorf("Punted, Injected, TxPackets, ControlApplied = %d, %d, %d, %d: the runs did not exercise every path",
			c.Punted, c.Injected, c.TxPackets, c.ControlApplied)
	}
	if a := port.Accounting(); a.Held != 0 {
		t.Errorf("%v, want no frame held", a)
	}
}

// TestDataplaneOwner: a record's owner is the worker whose shard holds it;
// a key nobody holds goes by its hash.
func TestDataplaneOwner(t *testing.T) {
	tab := wTables(t, 1)
	d := &Dataplane{}
	var tables atomic.Pointer[Tables]
	for range 3 {
		d.workers = append(d.workers, newWorker(porttest.New(porttest.Config{Frames: 4}), newEngine(t, 64, tab), &tables,
			workerConfig{cpu: -1, batch: 1, slotSize: 2048, puntSlots: 1, injectSlots: 1, controlSlots: 1}))
	}
	k := key(netip.MustParseAddr("203.0.113.9"), 1234, packet.ProtoUDP, wSet)
	byHash := int(k.Hash() % 3)
	if got := d.Owner(&k); got != byHash {
		t.Fatalf("Owner(key held nowhere) = %d, want %d (hash mod 3)", got, byHash)
	}
	holder := (byHash + 1) % 3
	e := d.workers[holder].engine
	if r := e.ApplyControl(&ControlMsg{Op: ControlInsert, Key: k, Value: assoc.Value{Gen: 1, LastSeen: assoc.Now()}}); r != ControlApplied {
		t.Fatalf("ApplyControl(insert) = %d, want ControlApplied", r)
	}
	if got := d.Owner(&k); got != holder {
		t.Fatalf("Owner(key held by worker %d) = %d", holder, got)
	}
	if d.PushControl(3, ControlMsg{}) || d.Inject(-1, nil) || d.Punted(3) != nil {
		t.Errorf("ring methods accepted a worker index out of range")
	}
}

// TestApplyControlRejects: operations that cannot apply are refused and
// counted, and leave the shard and gauges as they were.
func TestApplyControlRejects(t *testing.T) {
	tab := wTables(t, 1)
	e := newEngine(t, 1, tab)
	k := key(client(false, 1), 1, packet.ProtoTCP, wSet)
	v := assoc.Value{Server: 2, Gen: 1, LastSeen: assoc.Now()}
	bigSet := k
	bigSet.Set = assoc.MaxSetID + 1
	for _, tc := range []struct {
		msg  ControlMsg
		want ControlResult
	}{
		{ControlMsg{Op: ControlUpdate, Key: k, Value: v}, ControlMissing},
		{ControlMsg{Op: ControlDelete, Key: k}, ControlMissing},
		{ControlMsg{Op: ControlInsert, Key: k, Value: v}, ControlApplied},
		{ControlMsg{Op: ControlInsert, Key: k, Value: v}, ControlExists},
		{ControlMsg{Op: ControlInsert, Key: key(client(false, 2), 1, packet.ProtoTCP, wSet), Value: v}, ControlFull},
		{ControlMsg{Op: ControlInsert, Key: bigSet, Value: v}, ControlInvalid},
		{ControlMsg{Op: ControlInsert, Key: k, Value: assoc.Value{Server: MaxServers}}, ControlInvalid},
		{ControlMsg{Op: 0, Key: k}, ControlInvalid},
	} {
		if got := e.ApplyControl(&tc.msg); got != tc.want {
			t.Errorf("ApplyControl(%+v) = %d, want %d", tc.msg, got, tc.want)
		}
	}
	c := published(e)
	if c.ControlApplied != 1 || c.ControlRejected != 7 || c.ServerAssociations[wSet*MaxServers+2] != 1 {
		t.Errorf("ControlApplied, ControlRejected, gauge = %d, %d, %d, want 1, 7, 1", c.ControlApplied, c.ControlRejected, c.ServerAssociations[wSet*MaxServers+2])
	}
}
