package fastpath

import (
	"time"

	"github.com/ipfront/ipfront/fastpath/xsk"
)

// busyPollOptions is what Start asks each socket for: preferred busy polling
// only for workers that sleep when idle (BusyPoll false) and only with
// PreferBusyPoll. Such a worker's empty polls while it spins then run the
// NIC queue's NAPI on its own core (and, with the device's NAPI defer
// settings, keep the queue's interrupt off under load). A busy-polling
// worker (BusyPoll true) makes no system call on an empty ring and leaves
// NAPI to interrupts, as before.
//
// SO_BUSY_POLL takes microseconds; every call the worker makes is
// non-blocking, so the kernel polls once per call whatever the value: the
// idle spin (at least 1 µs) is what it is set to, so that `ss -e` and the
// like show a meaningful figure. The budget is the batch size: one poll
// brings at most one batch.
func (c *Config) busyPollOptions() xsk.BusyPoll {
	if c.BusyPoll || !c.PreferBusyPoll {
		return xsk.BusyPoll{}
	}
	return xsk.BusyPoll{Usec: max(1, int(c.IdleSpin/time.Microsecond)), Budget: c.BatchSize}
}

// SocketReport is what the kernel gave one worker's AF_XDP socket, for the
// start-up log: copy or zero-copy, the UMEM's pages, and preferred busy
// polling if it was asked for.
type SocketReport struct {
	Interface string
	Queue     int
	ZeroCopy  bool
	UMEM      xsk.UMEMInfo
	// BusyPollAsked says whether the socket asked for preferred busy
	// polling (BusyPoll false and PreferBusyPoll); BusyPoll is the answer.
	BusyPollAsked bool
	BusyPoll      xsk.BusyPollStatus
}

// SocketReports describes every worker's socket, in worker order.
func (d *Dataplane) SocketReports() []SocketReport {
	out := make([]SocketReport, 0, len(d.sockets))
	for i, s := range d.sockets {
		w := d.workers[i]
		out = append(out, SocketReport{
			Interface: w.Interface, Queue: w.Queue, ZeroCopy: s.ZeroCopy(), UMEM: s.UMEM(),
			BusyPollAsked: s.Config().BusyPoll.Usec > 0, BusyPoll: s.BusyPoll(),
		})
	}
	return out
}
