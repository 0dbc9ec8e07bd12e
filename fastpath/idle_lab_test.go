//go:build linux

package fastpath

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath/xsk"
	"github.com/ipfront/ipfront/internal/netnstest"
)

// These tests run workers on real AF_XDP sockets (veth, copy mode) in a
// namespace: what the fake port cannot show is that poll(2) on the socket
// and its wake eventfd really sleeps, and really wakes.

// TestIdleDataplaneSleeps starts the data plane as ipfront does with
// busy_poll = false and the defaults (idle_spin 50 µs, preferred busy
// polling, huge pages auto) and measures this process's CPU time over a
// second with no traffic: the worker must be asleep in
// poll(2), not spinning (an eventfd left readable, or a socket option that
// made poll return at once, would cost a core), also after a slow-path
// wake-up. One queue: Start counts an
// interface's queues in sysfs, which shows the root namespace here.
func TestIdleDataplaneSleeps(t *testing.T) {
	if testing.Short() {
		t.Skip("measures CPU over a window")
	}
	ns := netnstest.New(t, "fp-idle")
	peer := netnstest.New(t, "fp-idle-p")
	netnstest.Veth(t, ns, "i0", peer, "i1")
	var d *Dataplane
	if err := ns.Do(func() (err error) {
		d, err = Start(Config{
			Interfaces: []string{"i0"}, BusyPoll: false, BatchSize: 64, MaxAssociations: 4096,
			RingSize: 256, FrameSize: 2048, Frames: 1024, NeedWakeup: true,
			IdleSpin: DefaultIdleSpin, PreferBusyPoll: true, HugePages: xsk.HugeAuto,
		})
		return err
	}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	if n := d.NumWorkers(); n != 1 {
		t.Fatalf("NumWorkers = %d, want 1", n)
	}
	for _, r := range d.SocketReports() {
		if !r.BusyPollAsked || !r.BusyPoll.Enabled {
			t.Errorf("socket %s/%d: preferred busy polling asked %v, enabled %v (%v); want both as root",
				r.Interface, r.Queue, r.BusyPollAsked, r.BusyPoll.Enabled, r.BusyPoll.Err)
		}
	}
	// Wake the worker once (a control message), so the window also shows
	// that a wake-up is consumed and the worker goes back to sleep.
	if !d.PushControl(0, insertMsg(0)) {
		t.Fatal("PushControl = false")
	}
	for deadline := time.Now().Add(patience); workerCounters(d.workers[0].engine).ControlApplied != 1; {
		if time.Now().After(deadline) {
			t.Fatal("control message not applied")
		}
		time.Sleep(time.Millisecond) // polling the published counters
	}
	const window = time.Second
	c0 := cpuTime(t)
	time.Sleep(window) // the measurement window, not a synchronisation
	if used := cpuTime(t) - c0; used > window/10 {
		t.Errorf("an idle worker used %v of CPU in %v, want under %v: it does not sleep", used, window, window/10)
	} else {
		t.Logf("an idle worker used %v of CPU in %v", used, window)
	}
}

// TestRealSocketWakesForControl: a worker asleep in poll(2) on a real socket
// with no timeout at all is woken by a control push (the eventfd) and
// applies it.
func TestRealSocketWakesForControl(t *testing.T) {
	ns := netnstest.New(t, "fp-wake")
	peer := netnstest.New(t, "fp-wake-p")
	netnstest.Veth(t, ns, "w0", peer, "w1")
	var sock *xsk.Socket
	if err := ns.Do(func() (err error) {
		sock, err = xsk.Open(xsk.Config{Ifindex: ns.Link(t, "w0").Index, NumFrames: 256, RingSize: 64, NeedWakeup: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	tab := wTables(t, 1)
	var tables atomic.Pointer[Tables]
	tables.Store(tab)
	w := newWorker(sock, newEngine(t, 1024, tab), &tables, workerConfig{
		iface: "w0", cpu: -1, batch: 16, slotSize: 2048, idleWaitMs: -1, idleSpin: DefaultIdleSpin})
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		w.stop.Store(true)
		sock.Wake()
		<-w.done
		sock.Close()
	})
	for i := range 3 {
		// Asleep, or about to be: either way the push must get through.
		if !w.PushControl(insertMsg(i)) {
			t.Fatalf("PushControl(%d) = false", i)
		}
		deadline := time.Now().Add(patience)
		for workerCounters(w.engine).ControlApplied != uint64(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("control message %d not applied by a worker sleeping in poll(2) without a timeout", i)
			}
			time.Sleep(time.Millisecond) // polling the published counters; nothing else wakes the worker
		}
	}
}

// workerCounters reads the counters a running worker published.
func workerCounters(e *Engine) *Counters {
	c := new(Counters)
	e.Snapshot(c)
	return c
}

// TestIdleIterationAllocatesNothing: loop iterations of an idle worker with
// busy_poll = false on a real socket (spinning, then sleeping with a zero
// timeout so the test does not wait, a slow-path wake-up between) allocate
// nothing.
func TestIdleIterationAllocatesNothing(t *testing.T) {
	ns := netnstest.New(t, "fp-alloc")
	peer := netnstest.New(t, "fp-alloc-p")
	netnstest.Veth(t, ns, "a0", peer, "a1")
	var sock *xsk.Socket
	if err := ns.Do(func() (err error) {
		sock, err = xsk.Open(xsk.Config{Ifindex: ns.Link(t, "a0").Index, NumFrames: 256, RingSize: 64, NeedWakeup: true,
			BusyPoll: xsk.BusyPoll{Usec: 50, Budget: 16}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sock.Close() })
	tab := wTables(t, 1)
	var tables atomic.Pointer[Tables]
	tables.Store(tab)
	w := newWorker(sock, newEngine(t, 1024, tab), &tables, workerConfig{
		iface: "a0", cpu: -1, batch: 16, slotSize: 2048, idleSpin: time.Microsecond})
	w.idleWait = 0 // poll(2) returns at once: the test drives the loop
	var st loopState
	msg := insertMsg(0)
	allocs := testing.AllocsPerRun(200, func() {
		for range 4 {
			w.iterate(&st) // spins, then sleeps (for no time)
		}
		w.sleeping.Store(true) // as if asleep: the push wakes the socket
		w.PushControl(msg)     // inserted once, then rejected as existing
		w.iterate(&st)
	})
	if allocs != 0 {
		t.Errorf("idle iterations: %v allocs per run, want 0", allocs)
	}
	if c := workerCounters(w.engine); c.ControlApplied != 1 {
		t.Errorf("ControlApplied = %d, want 1: the runs did not reach the control path", c.ControlApplied)
	}
}
