package fastpath

import (
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/fastpath/porttest"
)

// These tests run the real loop on the fake port with busy_poll = false. Most
// of them sleep without a timeout (idleWaitMs -1): a worker that is not woken
// when it should be hangs, and the harness's patience turns that into a
// failure. Nothing waits on a timer.

// insertMsg is a control message inserting a record for client i.
func insertMsg(i int) ControlMsg {
	k := key(client(false, 2000+i), 40000, packet.ProtoTCP, wSet)
	return ControlMsg{Op: ControlInsert, Key: k, Value: assoc.Value{Server: 1, Gen: 1, LastSeen: assoc.Now()}}
}

// asleep waits until the worker is blocked in the port's Wait with nothing
// queued, and returns the events at that moment. With idleWaitMs -1 and
// nobody waking it, it stays there.
func (h *harness) asleep() porttest.Events {
	h.t.Helper()
	h.await("the worker to sleep", func(ev porttest.Events) bool { return ev.Waiting && ev.RxQueued == 0 })
	if !h.w.sleeping.Load() {
		h.t.Fatalf("worker blocked in Wait without its sleeping flag set")
	}
	return h.port.Events()
}

// TestWorkerWakesForControl: a control message pushed to a sleeping worker is
// applied without anyone else waking it, with exactly one wake-up.
func TestWorkerWakesForControl(t *testing.T) {
	h := startWorker(t, wTables(t, 1), workerOpts{})
	ev0 := h.asleep()
	if !h.w.PushControl(insertMsg(0)) {
		t.Fatal("PushControl = false")
	}
	// It applies the message, publishes, finds nothing to receive and
	// sleeps again: one more Wait.
	h.await("the worker to apply the message and sleep again", func(ev porttest.Events) bool { return ev.Waits > ev0.Waits })
	if got := h.counters().ControlApplied; got != 1 {
		t.Errorf("ControlApplied = %d, want 1", got)
	}
	if got := h.port.Events().Wakes - ev0.Wakes; got != 1 {
		t.Errorf("port woken %d times for one message, want 1", got)
	}
}

// TestWorkerWakesForInject: a frame injected into a sleeping worker's ring is
// sent without anyone else waking it.
func TestWorkerWakesForInject(t *testing.T) {
	tab := wTables(t, 1)
	h := startWorker(t, tab, workerOpts{})
	h.asleep()
	frame := tcp(t, client(false, 7), 41000, packet.TCPFlagSYN)
	if !h.w.Inject(frame) {
		t.Fatal("Inject = false on an empty ring")
	}
	out := h.sent(1)[0]
	slot := maglevSlot(tab.Set(wSet), client(false, 7), 41000, packet.ProtoTCP)
	checkForwarded(t, "injected frame", frame, out, slot, 1)
}

// TestWakeOncePerSleep: producers wake a sleeping worker once however much
// they push, and never wake one that is awake. The worker is not started:
// the test plays its part in the hand-off (the sleeping flag).
func TestWakeOncePerSleep(t *testing.T) {
	tab := wTables(t, 1)
	port := porttest.New(porttest.Config{})
	var tables atomic.Pointer[Tables]
	tables.Store(tab)
	w := newWorker(port, newEngine(t, 1024, tab), &tables, workerConfig{iface: "fake0", cpu: -1, batch: 16, slotSize: 2048})
	frame := tcp(t, client(false, 1), 41000, packet.TCPFlagACK)

	for i := range 3 {
		w.PushControl(insertMsg(i))
		w.Inject(frame)
	}
	if got := port.Events().Wakes; got != 0 {
		t.Fatalf("pushes to an awake worker woke its port %d times, want 0", got)
	}

	w.sleeping.Store(true) // the worker went to sleep
	for i := range 10 {
		if !w.PushControl(insertMsg(10 + i)) {
			t.Fatalf("PushControl(%d) = false", i)
		}
		if i%2 == 0 && !w.Inject(frame) {
			t.Fatalf("Inject(%d) = false", i)
		}
	}
	if got := port.Events().Wakes; got != 1 {
		t.Errorf("15 pushes to a sleeping worker woke its port %d times, want 1", got)
	}
	if w.sleeping.Load() {
		t.Errorf("sleeping still set after a producer woke the worker")
	}

	// A refused push wakes nobody: there is nothing new to see.
	full := newWorker(porttest.New(porttest.Config{}), newEngine(t, 64, tab), &tables,
		workerConfig{cpu: -1, batch: 1, slotSize: 2048, controlSlots: 1})
	full.PushControl(insertMsg(0))
	full.sleeping.Store(true)
	if full.PushControl(insertMsg(1)) {
		t.Fatal("PushControl on a full ring = true")
	}
	if got := full.port.(*porttest.Port).Events().Wakes; got != 0 {
		t.Errorf("a refused push woke the port %d times, want 0", got)
	}
}

// TestWorkerNoLostWakeup pushes one message at a time to a worker that goes
// back to sleep after each, many times over: a push racing with the worker
// falling asleep must still wake it (run with -race too). A lost wake-up
// leaves the worker asleep forever and the test fails after its patience.
func TestWorkerNoLostWakeup(t *testing.T) {
	h := startWorker(t, wTables(t, 1), workerOpts{})
	const rounds = 300
	for i := range rounds {
		if i%2 == 0 {
			if !h.w.PushControl(insertMsg(i)) {
				t.Fatalf("PushControl(%d) = false", i)
			}
		} else if !h.w.Inject(tcp(t, client(false, 3000+i), 42000, packet.TCPFlagSYN)) {
			t.Fatalf("Inject(%d) = false", i)
		}
		want := uint64(i + 1)
		if err := h.port.WaitUntil(patience, func(porttest.Events) bool {
			c := h.counters()
			return c.ControlApplied+c.Injected == want
		}); err != nil {
			t.Fatalf("round %d: message not handled: %v (counters %+v, events %+v)", i, err, h.counters(), h.port.Events())
		}
	}
	if ev := h.port.Events(); ev.Wakes > rounds {
		t.Errorf("%d wake-ups for %d pushes, want at most one each", ev.Wakes, rounds)
	}
}

// TestWorkerSpinsBeforeSleeping: with idle_spin the worker keeps polling
// after its last packet instead of sleeping; with 0 it sleeps at the first
// empty poll.
func TestWorkerSpinsBeforeSleeping(t *testing.T) {
	frame := tcp(t, client(false, 1), 30000, packet.TCPFlagSYN)

	t.Run("spin", func(t *testing.T) {
		h := startWorker(t, wTables(t, 1), workerOpts{cfg: workerConfig{idleSpin: time.Hour}})
		// Started with no packet yet: it spins from its first poll.
		h.deliver(frame)
		h.sent(1)
		ev0 := h.port.Events()
		h.await("a thousand empty polls", func(ev porttest.Events) bool { return ev.EmptyPolls >= ev0.EmptyPolls+1000 })
		if ev := h.port.Events(); ev.Waits != 0 {
			t.Errorf("worker slept %d times within an idle_spin of an hour, want 0", ev.Waits)
		}
	})
	t.Run("short spin", func(t *testing.T) {
		h := startWorker(t, wTables(t, 1), workerOpts{cfg: workerConfig{idleSpin: time.Millisecond}})
		h.deliver(frame)
		h.sent(1)
		ev := h.asleep()
		// The first empty poll starts the clock, a later one ends the spin.
		if ev.EmptyPolls < 2 {
			t.Errorf("worker slept after %d empty polls, want at least 2 with an idle_spin", ev.EmptyPolls)
		}
	})
	t.Run("no spin", func(t *testing.T) {
		h := startWorker(t, wTables(t, 1), workerOpts{})
		h.deliver(frame)
		h.sent(1)
		// Asleep now: every empty poll was followed by a Wait.
		if ev := h.asleep(); ev.EmptyPolls != ev.Waits {
			t.Errorf("empty polls %d, waits %d: want a sleep after every empty poll with idle_spin 0", ev.EmptyPolls, ev.Waits)
		}
	})
}

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime(t *testing.T) time.Duration {
	t.Helper()
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestIdleWorkerSleeps: a worker with the production idle settings
// (busy_poll = false, the default idle_spin, the 100 ms poll timeout) that
// has forwarded traffic and then sees none uses next to no CPU: it spins
// briefly after the last packet, then sleeps. Measured as this process's CPU
// time over a one-second window while the test goroutine sleeps; the bound
// is loose (a tenth of a core) against the whole core a spinning worker
// takes. The second half shows the measure can tell: the same worker
// with an endless spin uses far more.
func TestIdleWorkerSleeps(t *testing.T) {
	if testing.Short() {
		t.Skip("measures CPU over a window")
	}
	const window = time.Second
	measure := func(spin time.Duration) time.Duration {
		h := startWorker(t, wTables(t, 1), workerOpts{cfg: workerConfig{idleSpin: spin, idleWaitMs: idleWaitMs}})
		for i := range 20 {
			h.deliver(tcp(t, client(false, 1), uint16(30000+i), packet.TCPFlagSYN))
		}
		h.sent(20)
		c0 := cpuTime(t)
		time.Sleep(window) // the measurement window, not a synchronisation
		used := cpuTime(t) - c0
		h.stop()
		return used
	}
	idle := measure(DefaultIdleSpin)
	if idle > window/10 {
		t.Errorf("idle worker used %v of CPU in %v, want under %v: it does not sleep", idle, window, window/10)
	}
	spinning := measure(time.Hour)
	t.Logf("CPU over %v: idle worker %v, spinning worker %v", window, idle, spinning)
	if spinning < 3*idle || spinning < window/20 {
		t.Errorf("a worker that never sleeps used %v against the idle worker's %v: the measurement cannot tell them apart", spinning, idle)
	}
}

// racingPort is a fake port whose next Recycle runs push first, as a producer
// that pushes just after the worker drained its rings (housekeeping) and
// before it announced that it sleeps (the idle path recycles first): the
// producer sees the worker awake and wakes nobody.
type racingPort struct {
	*porttest.Port
	push func()
}

func (p *racingPort) Recycle() {
	if p.push != nil {
		p.push()
		p.push = nil
	}
	p.Port.Recycle()
}

// TestSleepRechecksRings: a message pushed after the worker drained its rings
// but before it set its sleeping flag woke nobody, so the worker must see it
// after setting the flag and not sleep. The loop iteration runs on the
// test's goroutine; a worker that sleeps here would sleep forever.
func TestSleepRechecksRings(t *testing.T) {
	tab := wTables(t, 1)
	for _, kind := range []string{"control", "inject"} {
		t.Run(kind, func(t *testing.T) {
			fake := porttest.New(porttest.Config{})
			port := &racingPort{Port: fake}
			var tables atomic.Pointer[Tables]
			tables.Store(tab)
			w := newWorker(port, newEngine(t, 1024, tab), &tables, workerConfig{iface: "fake0", cpu: -1, batch: 16, slotSize: 2048, idleWaitMs: -1})
			port.push = func() {
				if kind == "control" {
					w.PushControl(insertMsg(0))
				} else {
					w.Inject(tcp(t, client(false, 1), 41000, packet.TCPFlagSYN))
				}
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				var st loopState
				w.iterate(&st)
			}()
			select {
			case <-done:
			case <-time.After(patience):
				fake.Wake() // let the goroutine finish
				<-done
				t.Fatalf("the iteration slept with the %s message pending", kind)
			}
			if ev := fake.Events(); ev.Waits != 0 || ev.Wakes != 0 {
				t.Errorf("Waits, Wakes = %d, %d, want 0, 0: the pending message should have kept the worker awake", ev.Waits, ev.Wakes)
			}
		})
	}
}
