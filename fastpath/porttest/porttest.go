// Package porttest provides an in-memory fastpath.Port: frames in a fake
// UMEM, an RX queue the test feeds, a TX ring of bounded capacity whose
// frames the test captures, and frame accounting that catches a frame
// released twice or leaked. It lets the real worker loop run in unit tests
// without root, sockets or a kernel.
//
// The fake is safe for one worker goroutine calling the Port methods while
// test goroutines call the others: a mutex guards its state (the fake is not
// on a measured path). Tests synchronise on its events with WaitUntil, never
// on sleeps.
package porttest

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfront/ipfront/fastpath/xsk"
)

// Config sizes a fake port. Zero fields take the defaults.
type Config struct {
	Frames    int // UMEM frames; default 256
	FrameSize int // bytes per frame; default 2048
	// Headroom is where a received frame starts in its UMEM frame, as in
	// AF_XDP copy mode; default 256.
	Headroom int
	// TxRing is the TX ring's capacity; default 64. Frames stay on it until
	// they complete, so a small ring and ManualCompletion make "TX ring
	// full" happen on demand.
	TxRing int
	// ManualCompletion keeps transmitted frames on the TX ring until the
	// test calls Complete; by default every Recycle completes all of them,
	// as a kernel that sends instantly would.
	ManualCompletion bool
	// Discard keeps no copies of transmitted frames (Sent returns none),
	// so that a test can count allocations of the code under test.
	Discard bool
}

// frame states, one per UMEM frame.
const (
	stateFree = iota // on the free list
	stateRx          // delivered, waiting on the RX queue
	stateHeld        // the worker's: received or allocated, not yet transmitted or released
	stateTx          // on the TX ring until completed
)

// Port is the fake. Port methods (Receive ... Stats) are the worker's; the
// rest are the test's.
type Port struct {
	cfg  Config
	umem []byte // frames; written by Deliver (free frames) and by the worker (frames it holds)

	mu      sync.Mutex
	state   []uint8    // per frame, see state*
	free    []uint64   // free frame base addresses, a stack
	rx      []xsk.Desc // delivered, FIFO
	tx      []xsk.Desc // on the TX ring, FIFO
	sent    [][]byte   // copies of every frame Transmit accepted, in order
	ev      Events
	stats   xsk.Stats
	errs    []error       // misuse seen: double release, foreign frame
	changed chan struct{} // capacity 1: a token whenever ev changed
	wake    chan struct{} // capacity 1: wakes Wait
}

// Events counts what the worker did, for WaitUntil conditions.
type Events struct {
	Receives   uint64 // Receive calls
	EmptyPolls uint64 // Receive calls that returned nothing
	Received   uint64 // frames handed to the worker by Receive
	Sent       uint64 // frames Transmit accepted (len of Sent())
	TxRefused  uint64 // frames Transmit refused: TX ring full
	Released   uint64 // frames returned by Release
	Allocated  uint64 // frames taken by AllocTx
	Waits      uint64 // Wait calls
	Waiting    bool   // a Wait is blocked now (not returned at once for queued frames)
	Wakes      uint64 // Wake calls (not counting the wake-ups of Deliver)
	Stats      uint64 // Stats calls
	RxQueued   int    // frames delivered and not yet received
}

// New returns a fake port with every frame free.
func New(cfg Config) *Port {
	if cfg.Frames <= 0 {
		cfg.Frames = 256
	}
	if cfg.FrameSize <= 0 {
		cfg.FrameSize = 2048
	}
	if cfg.Headroom <= 0 {
		cfg.Headroom = 256
	}
	if cfg.TxRing <= 0 {
		cfg.TxRing = 64
	}
	p := &Port{
		cfg:     cfg,
		umem:    make([]byte, cfg.Frames*cfg.FrameSize),
		state:   make([]uint8, cfg.Frames),
		changed: make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
	}
	for i := cfg.Frames - 1; i >= 0; i-- {
		p.free = append(p.free, uint64(i*cfg.FrameSize))
	}
	return p
}

// Config returns the port's configuration with defaults filled in.
func (p *Port) Config() Config { return p.cfg }

// notify records an event change; caller holds mu.
func (p *Port) notify() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// Receive implements fastpath.Port.
func (p *Port) Receive(out []xsk.Desc) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := copy(out, p.rx)
	p.rx = p.rx[:copy(p.rx, p.rx[n:])]
	var bytes uint64
	for _, d := range out[:n] {
		p.state[p.index(d.Addr)] = stateHeld
		bytes += uint64(d.Len)
	}
	p.ev.Receives++
	if n == 0 {
		p.ev.EmptyPolls++
	}
	p.ev.Received += uint64(n)
	p.ev.RxQueued = len(p.rx)
	p.stats.RxPackets += uint64(n)
	p.stats.RxBytes += bytes
	p.notify()
	return n
}

// Frame implements fastpath.Port. The UMEM slice never changes, so it needs
// no lock; the bytes belong to whoever holds the frame.
func (p *Port) Frame(d xsk.Desc) []byte {
	fs := uint64(p.cfg.FrameSize)
	end := d.Addr - d.Addr%fs + fs
	return p.umem[d.Addr : d.Addr+uint64(d.Len) : end]
}

// Transmit implements fastpath.Port: it accepts what fits on the TX ring and
// captures a copy of each accepted frame.
func (p *Port) Transmit(in []xsk.Desc) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := min(len(in), p.cfg.TxRing-len(p.tx))
	for _, d := range in[:n] {
		i := p.index(d.Addr)
		if p.state[i] != stateHeld {
			p.errs = append(p.errs, fmt.Errorf("Transmit of frame %#x that the worker does not hold (state %d)", d.Addr, p.state[i]))
		}
		p.state[i] = stateTx
		p.tx = append(p.tx, d)
		if !p.cfg.Discard {
			p.sent = append(p.sent, append([]byte(nil), p.Frame(d)...))
		}
		p.stats.TxPackets++
		p.stats.TxBytes += uint64(d.Len)
	}
	refused := uint64(len(in) - n)
	p.stats.TxRingFull += refused
	p.ev.Sent += uint64(n)
	p.ev.TxRefused += refused
	p.notify()
	return n
}

// Release implements fastpath.Port.
func (p *Port) Release(addr uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := p.index(addr)
	if p.state[i] != stateHeld {
		p.errs = append(p.errs, fmt.Errorf("Release of frame %#x that the worker does not hold (state %d)", addr, p.state[i]))
		return
	}
	p.state[i] = stateFree
	p.free = append(p.free, uint64(i*p.cfg.FrameSize))
	p.ev.Released++
	p.notify()
}

// Recycle implements fastpath.Port: unless ManualCompletion, every frame on
// the TX ring completes.
func (p *Port) Recycle() {
	if p.cfg.ManualCompletion {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.complete(len(p.tx))
}

// Complete completes the n oldest frames on the TX ring (all there are, if
// fewer), as the kernel does when it has sent them. For ManualCompletion.
func (p *Port) Complete(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.complete(n)
}

func (p *Port) complete(n int) {
	n = min(n, len(p.tx))
	for _, d := range p.tx[:n] {
		i := p.index(d.Addr)
		p.state[i] = stateFree
		p.free = append(p.free, uint64(i*p.cfg.FrameSize))
	}
	p.tx = p.tx[:copy(p.tx, p.tx[n:])]
	p.stats.TxCompleted += uint64(n)
}

// AllocTx implements fastpath.Port.
func (p *Port) AllocTx(out []xsk.Desc) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := min(len(out), len(p.free))
	for i := range out[:n] {
		addr := p.free[len(p.free)-1-i]
		p.state[p.index(addr)] = stateHeld
		out[i] = xsk.Desc{Addr: addr, Len: uint32(p.cfg.FrameSize)}
	}
	p.free = p.free[:len(p.free)-n]
	p.ev.Allocated += uint64(n)
	p.notify()
	return n
}

// Wait implements fastpath.Port: it returns at once if frames are queued,
// else when Deliver or Wake is called or timeoutMs passes.
func (p *Port) Wait(timeoutMs int) error {
	p.mu.Lock()
	p.ev.Waits++
	queued := len(p.rx) > 0
	p.ev.Waiting = !queued
	p.notify()
	p.mu.Unlock()
	if queued {
		return nil
	}
	defer func() {
		p.mu.Lock()
		p.ev.Waiting = false
		p.notify()
		p.mu.Unlock()
	}()
	var timeout <-chan time.Time
	if timeoutMs >= 0 {
		t := time.NewTimer(time.Duration(timeoutMs) * time.Millisecond)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-p.wake:
	case <-timeout:
	}
	return nil
}

// Stats implements fastpath.Port.
func (p *Port) Stats() (xsk.Stats, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ev.Stats++
	p.notify()
	return p.stats, nil
}

// index returns the frame number of addr, which must lie in the UMEM.
func (p *Port) index(addr uint64) int {
	i := int(addr / uint64(p.cfg.FrameSize))
	if i >= p.cfg.Frames {
		panic(fmt.Sprintf("porttest: address %#x outside the UMEM", addr))
	}
	return i
}

// Deliver copies frame into a free UMEM frame and queues it for Receive, as
// the kernel does with a packet for the queue; it wakes a waiting worker. It
// returns false, counting a kernel drop, if no frame is free or frame does
// not fit.
func (p *Port) Deliver(frame []byte) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(frame) > p.cfg.FrameSize-p.cfg.Headroom {
		p.stats.Kernel.RxDropped++
		return false
	}
	if len(p.free) == 0 {
		p.stats.Kernel.RxFillRingEmptyDescs++
		return false
	}
	base := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	p.state[p.index(base)] = stateRx
	d := xsk.Desc{Addr: base + uint64(p.cfg.Headroom), Len: uint32(len(frame))}
	copy(p.umem[d.Addr:], frame)
	p.rx = append(p.rx, d)
	p.ev.RxQueued = len(p.rx)
	p.wakeLocked()
	return true
}

// Wake implements fastpath.Port: it makes a waiting (or the next) Wait
// return, as the eventfd in a real port's poll set does. The worker's ring
// producers call it when they give a sleeping worker work; tests call it to
// step a worker that sleeps without a timeout.
func (p *Port) Wake() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ev.Wakes++
	p.notify()
	p.wakeLocked()
}

func (p *Port) wakeLocked() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// SetKernelDrops sets the kernel's drop counters Stats reports.
func (p *Port) SetKernelDrops(rxDropped, rxRingFull uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Kernel.RxDropped, p.stats.Kernel.RxRingFull = rxDropped, rxRingFull
}

// Sent returns copies of every frame Transmit accepted, in order.
func (p *Port) Sent() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.sent...)
}

// Events returns the event counts so far.
func (p *Port) Events() Events {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ev
}

// ErrTimeout is returned by WaitUntil when the condition did not hold in time.
var ErrTimeout = errors.New("porttest: condition not met in time")

// WaitUntil blocks until cond holds for the port's events, re-evaluating it
// whenever they change, and returns nil; or returns ErrTimeout after
// timeout. The timeout only keeps a broken test from hanging: it is not a
// measurement, so make it generous.
func (p *Port) WaitUntil(timeout time.Duration, cond func(Events) bool) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		if cond(p.Events()) {
			return nil
		}
		select {
		case <-p.changed:
		case <-deadline.C:
			if cond(p.Events()) {
				return nil
			}
			return ErrTimeout
		}
	}
}

// Accounting says where the fake's frames are.
type Accounting struct {
	Total, Free, Rx, Held, Tx int
}

// String summarises the accounting for test failures.
func (a Accounting) String() string {
	return fmt.Sprintf("total %d = free %d + rx %d + held by worker %d + tx %d", a.Total, a.Free, a.Rx, a.Held, a.Tx)
}

// Accounting returns where the frames are.
func (p *Port) Accounting() Accounting {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := Accounting{Total: p.cfg.Frames}
	for _, s := range p.state {
		switch s {
		case stateFree:
			a.Free++
		case stateRx:
			a.Rx++
		case stateHeld:
			a.Held++
		case stateTx:
			a.Tx++
		}
	}
	return a
}

// Check reports misuse the fake saw (a frame released or transmitted while
// the worker did not hold it) and any inconsistency between the frame states
// and the free list, RX queue and TX ring.
func (p *Port) Check() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := append([]error(nil), p.errs...)
	count := func(want uint8) int {
		n := 0
		for _, s := range p.state {
			if s == want {
				n++
			}
		}
		return n
	}
	if n := count(stateFree); n != len(p.free) {
		errs = append(errs, fmt.Errorf("%d frames free by state, %d on the free list", n, len(p.free)))
	}
	if n := count(stateRx); n != len(p.rx) {
		errs = append(errs, fmt.Errorf("%d frames delivered by state, %d on the RX queue", n, len(p.rx)))
	}
	if n := count(stateTx); n != len(p.tx) {
		errs = append(errs, fmt.Errorf("%d frames on TX by state, %d on the TX ring", n, len(p.tx)))
	}
	return errors.Join(errs...)
}
