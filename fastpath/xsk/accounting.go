//go:build linux

package xsk

import (
	"fmt"
	"sync/atomic"
)

// Accounting says where the socket's frames are. Free+Fill+Caller+Tx always
// equals Total unless a frame was released twice or leaked.
type Accounting struct {
	Total int64
	// Free frames are on the socket's free stack.
	Free int64
	// Fill frames are on the fill ring, being received into by the kernel,
	// or on the RX ring waiting for Receive.
	Fill int64
	// Caller frames were handed out by Receive or AllocTx and not yet
	// given to Transmit or Release.
	Caller int64
	// Tx frames are on the TX ring, being sent by the kernel, or on the
	// completion ring waiting for Recycle.
	Tx int64
}

// String summarises where the frames are, for test failures and logs.
func (a Accounting) String() string {
	return fmt.Sprintf("total %d = free %d + fill/rx %d + caller %d + tx/completion %d",
		a.Total, a.Free, a.Fill, a.Caller, a.Tx)
}

// Accounting returns where the frames are. Owner goroutine only.
func (s *Socket) Accounting() Accounting {
	return Accounting{
		Total:  int64(s.cfg.NumFrames),
		Free:   int64(len(s.free)),
		Fill:   s.onFill,
		Caller: s.held,
		Tx:     s.inTx,
	}
}

// Outstanding returns how many frames the caller holds (received or
// allocated, not yet transmitted or released). A worker that has processed
// every packet it received should see 0.
func (s *Socket) Outstanding() int { return int(s.held) }

// CheckFrames verifies the frame accounting: no count is negative, the counts
// add up to NumFrames, and no frame address appears twice among the places
// this socket can see (free stack, fill ring, RX ring, TX ring, completion
// ring). Frames the caller holds are invisible to it. It is meant for tests
// and debugging: it allocates and takes time proportional to NumFrames.
// Owner goroutine only.
func (s *Socket) CheckFrames() error {
	a := s.Accounting()
	if a.Free < 0 || a.Fill < 0 || a.Caller < 0 || a.Tx < 0 || a.Free+a.Fill+a.Caller+a.Tx != a.Total {
		return fmt.Errorf("xsk: frame accounting broken: %v", a)
	}
	seen := make([]string, s.cfg.NumFrames)
	mark := func(where string, addr uint64) error {
		if addr >= uint64(len(s.umem)) {
			return fmt.Errorf("xsk: %s holds address %#x outside the UMEM", where, addr)
		}
		i := addr / uint64(s.cfg.FrameSize)
		if seen[i] != "" {
			return fmt.Errorf("xsk: frame %#x is both in %s and in %s", addr&s.frameMask, seen[i], where)
		}
		seen[i] = where
		return nil
	}
	for _, addr := range s.free {
		if err := mark("free stack", addr); err != nil {
			return err
		}
	}
	// Entries the kernel has not consumed from the rings we produce, and
	// entries we have not consumed from the rings the kernel produces.
	for i, end := atomic.LoadUint32(s.fill.consumer), s.fill.cachedProd; i != end; i++ {
		if err := mark("fill ring", s.fill.slots[i&s.fill.mask]); err != nil {
			return err
		}
	}
	for i, end := s.rx.cachedCons, atomic.LoadUint32(s.rx.producer); i != end; i++ {
		if err := mark("rx ring", s.rx.slots[i&s.rx.mask].Addr); err != nil {
			return err
		}
	}
	for i, end := atomic.LoadUint32(s.tx.consumer), s.tx.cachedProd; i != end; i++ {
		if err := mark("tx ring", s.tx.slots[i&s.tx.mask].Addr); err != nil {
			return err
		}
	}
	for i, end := s.comp.cachedCons, atomic.LoadUint32(s.comp.producer); i != end; i++ {
		if err := mark("completion ring", s.comp.slots[i&s.comp.mask]); err != nil {
			return err
		}
	}
	return nil
}
