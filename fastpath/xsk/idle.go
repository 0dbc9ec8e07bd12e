//go:build linux

package xsk

import (
	"errors"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// BusyPoll asks the kernel for preferred busy polling on a socket
// (SO_BUSY_POLL, SO_PREFER_BUSY_POLL, SO_BUSY_POLL_BUDGET): the socket's own
// recvfrom/sendto/poll calls then run the NIC queue's NAPI poll on the
// calling core, instead of waiting for an interrupt and the softirq that
// follows it. With the device's napi_defer_hard_irqs and gro_flush_timeout
// set, the kernel also keeps the queue's interrupt masked while the
// application keeps polling, and falls back to the timer, then interrupts,
// once it stops (sleeps). That is the low-cost mode of a worker that spins
// for a while before sleeping: under load no interrupts and no wake-ups;
// idle, asleep in poll(2).
type BusyPoll struct {
	// Usec is SO_BUSY_POLL: zero leaves busy polling off and the other
	// fields unused. A non-blocking call (all of ours) polls NAPI once
	// whatever the value; it matters to the kernel as "enabled".
	Usec int
	// Budget is SO_BUSY_POLL_BUDGET, the packets one busy poll may process
	// (kernel default 8): the worker's batch size is a good value.
	Budget int
}

// BusyPollStatus says whether a socket got preferred busy polling.
type BusyPollStatus struct {
	// Enabled is true when every option was accepted: Receive then pokes
	// the kernel (recvfrom) whenever the RX ring is empty, which runs the
	// queue's NAPI on the caller's core.
	Enabled bool
	// Err says why not, when busy polling was asked for: the kernel lacks
	// CONFIG_NET_RX_BUSY_POLL or SO_PREFER_BUSY_POLL (before 5.11), or the
	// process lacks CAP_NET_ADMIN. The socket then works as without
	// busy polling: interrupts drive the NIC queue.
	Err error
}

// setBusyPoll applies b to the bound socket. On any refusal it turns busy
// polling back off, so the socket is in a known, plain state, and records
// why.
func (s *Socket) setBusyPoll(b BusyPoll) {
	if b.Usec <= 0 {
		return
	}
	opts := []struct {
		opt  int
		name string
		val  int
	}{
		{unix.SO_BUSY_POLL, "SO_BUSY_POLL", b.Usec},
		{unix.SO_PREFER_BUSY_POLL, "SO_PREFER_BUSY_POLL", 1},
	}
	if b.Budget > 0 {
		opts = append(opts, struct {
			opt  int
			name string
			val  int
		}{unix.SO_BUSY_POLL_BUDGET, "SO_BUSY_POLL_BUDGET", b.Budget})
	}
	for _, o := range opts {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, o.opt, o.val); err != nil {
			s.busyPoll.Err = fmt.Errorf("setsockopt %s=%d: %w", o.name, o.val, err)
			// Back to the default: neither option half set.
			_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_PREFER_BUSY_POLL, 0)
			_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, 0)
			s.ctr.busyPollRefused.Add(1)
			return
		}
	}
	s.busyPoll.Enabled = true
}

// BusyPoll reports whether the socket got the preferred busy polling its
// Config asked for, and why not. Call it after Open, from any goroutine.
func (s *Socket) BusyPoll() BusyPollStatus { return s.busyPoll }

// UMEM describes the memory backing the socket's UMEM: which pages, how much
// of it is on huge pages, and why not better.
func (s *Socket) UMEM() UMEMInfo { return s.umemInfo }

// waker is the eventfd in a socket's poll set that lets another goroutine end
// the owner's Wait early (Socket.Wake).
type waker struct {
	mu sync.Mutex // Wake against Close: never write to a closed (reused) fd
	fd int
	// buf is the owner's read buffer for draining (a field: no allocation).
	buf [8]byte
}

// one is the eventfd increment Wake writes.
var one = [8]byte{1}

func (w *waker) open() error {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		w.fd = -1
		return fmt.Errorf("xsk: eventfd: %w", err)
	}
	w.fd = fd
	return nil
}

// drain resets the eventfd after poll said it is readable. Owner only.
func (w *waker) drain() {
	_, _ = unix.Read(w.fd, w.buf[:])
}

func (w *waker) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fd < 0 {
		return nil
	}
	err := unix.Close(w.fd)
	w.fd = -1
	if err != nil {
		return fmt.Errorf("xsk: close eventfd: %w", err)
	}
	return nil
}

// Wake makes the owner's current Wait return now, or its next one return at
// once. It is for the goroutines that hand the owner work it cannot see on
// the socket's rings (control messages, frames to inject); it costs a
// write(2), so callers wake an owner only when it sleeps. Safe from any
// goroutine, also after Close (then it does nothing).
func (s *Socket) Wake() {
	s.wake.mu.Lock()
	defer s.wake.mu.Unlock()
	if s.wake.fd < 0 {
		return
	}
	if _, err := unix.Write(s.wake.fd, one[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
		s.ctr.kickErrors.Add(1)
	}
}
