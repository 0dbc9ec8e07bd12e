package fastpath

import (
	"testing"

	"github.com/ipfront/ipfront/fastpath/steer"
)

// fakeCell records what a worker publishes.
type fakeCell struct{ state, writes uint32 }

func (c *fakeCell) SetState(s uint32) { c.state = s; c.writes++ }

// fakeBacklog is a port's RX backlog.
type fakeBacklog struct{ n uint32 }

func (b *fakeBacklog) RxBacklog() uint32 { return b.n }

// TestOverloadStates: three quarters of a ring of backlog starts shedding, a
// quarter stops it, nothing in between changes the state, the cell is
// written only on a change, and a stopped worker leaves it normal.
func TestOverloadStates(t *testing.T) {
	cell, port := &fakeCell{}, &fakeBacklog{}
	o := overload{cell: cell, port: port, on: 1536, off: 512}
	step := func(backlog, want uint32) {
		t.Helper()
		port.n = backlog
		o.tick()
		if cell.state != want {
			t.Fatalf("backlog %d: state %d, want %d", backlog, cell.state, want)
		}
	}
	step(100, steer.OverloadNormal)
	step(1535, steer.OverloadNormal)
	if cell.writes != 0 {
		t.Errorf("normal throughout: %d state writes, want none", cell.writes)
	}
	step(1536, steer.OverloadShedding)
	step(2048, steer.OverloadShedding)
	step(513, steer.OverloadShedding) // between the marks: stays
	step(512, steer.OverloadNormal)
	step(1000, steer.OverloadNormal) // between the marks: stays
	if cell.writes != 2 {
		t.Errorf("%d state writes for two changes", cell.writes)
	}
	step(2000, steer.OverloadShedding)
	o.stopped()
	if cell.state != steer.OverloadNormal {
		t.Errorf("stopped: state %d, want normal", cell.state)
	}

	// A worker without a cell (tests, ports that cannot tell their
	// backlog) does nothing.
	var none overload
	none.tick()
	none.stopped()
}
