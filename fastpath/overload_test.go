package fastpath

import (
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath/steer"
)

// fakeCell records what a worker publishes.
type fakeCell struct {
	state, writes uint32
	beat          uint64
	beats         int
}

func (c *fakeCell) SetState(s uint32) { c.state = s; c.writes++ }
func (c *fakeCell) Beat(ns uint64)    { c.beat = ns; c.beats++ }

// fakeBacklog is a port's RX backlog.
type fakeBacklog struct{ n uint32 }

func (b *fakeBacklog) RxBacklog() uint32 { return b.n }

// TestOverloadStates: half a ring of backlog starts shedding, an eighth
// stops it (armed), a second without overload returns to normal; the
// heartbeat runs only outside normal, stops (0) when the worker sleeps and
// resumes when it wakes; the state is written only when it changes; a
// stopped worker leaves the cell normal.
func TestOverloadStates(t *testing.T) {
	cell, port := &fakeCell{}, &fakeBacklog{}
	o := overload{cell: cell, port: port, on: 1024, off: 256, monoBase: 1_000_000}
	at := time.Duration(0)
	step := func(backlog uint32, d time.Duration, want uint32) {
		t.Helper()
		port.n, at = backlog, at+d
		o.tick(at)
		if cell.state != want || o.state != want {
			t.Fatalf("backlog %d at %v: cell %d, worker %d; want %d", backlog, at, cell.state, o.state, want)
		}
	}
	step(100, time.Millisecond, steer.OverloadNormal)
	step(1023, time.Millisecond, steer.OverloadNormal)
	if cell.beats != 0 || cell.writes != 0 {
		t.Errorf("normal: %d heartbeats, %d state writes; want none", cell.beats, cell.writes)
	}
	step(1024, time.Millisecond, steer.OverloadShedding)
	if cell.beat != uint64(1_000_000+at) {
		t.Errorf("heartbeat %d, want the monotonic clock %d", cell.beat, 1_000_000+at)
	}
	step(500, time.Millisecond, steer.OverloadShedding) // between the marks: stays
	step(256, time.Millisecond, steer.OverloadArmed)
	beats := cell.beats
	step(0, time.Microsecond, steer.OverloadArmed) // within overloadBeatEvery: no write
	if cell.beats != beats {
		t.Errorf("a heartbeat %v after the last: written", time.Microsecond)
	}
	step(0, overloadBeatEvery, steer.OverloadArmed)
	if cell.beats != beats+1 {
		t.Errorf("a heartbeat %v after the last: not written", overloadBeatEvery)
	}
	o.asleep()
	if cell.beat != 0 {
		t.Errorf("asleep: heartbeat %d, want 0", cell.beat)
	}
	step(0, time.Microsecond, steer.OverloadArmed) // awake again: beats at once
	if cell.beat == 0 {
		t.Error("awake after a sleep: no heartbeat")
	}
	step(2000, time.Millisecond, steer.OverloadShedding) // armed -> shedding again
	step(0, time.Millisecond, steer.OverloadArmed)
	step(0, overloadArmedFor-time.Millisecond, steer.OverloadArmed)
	writes := cell.writes
	step(0, time.Millisecond, steer.OverloadNormal)
	if cell.writes != writes+1 {
		t.Errorf("armed -> normal: %d state writes, want 1", cell.writes-writes)
	}
	step(2048, time.Millisecond, steer.OverloadShedding)
	o.stopped()
	if cell.state != steer.OverloadNormal || cell.beat != 0 {
		t.Errorf("stopped: state %d, heartbeat %d; want normal, 0", cell.state, cell.beat)
	}

	// A worker without a cell (tests, ports that cannot tell their
	// backlog) does nothing.
	var none overload
	none.tick(time.Second)
	none.asleep()
	none.stopped()
}
