package fastpath

import "github.com/ipfront/ipfront/fastpath/xsk"

// Port is what a worker reads frames from and writes frames to: one NIC queue.
// *xsk.Socket implements it (an AF_XDP socket and its UMEM); porttest.Port is
// an in-memory fake that drives the real worker loop in tests without root.
//
// Frames live in the port's memory and are named by descriptors. A frame the
// worker got from Receive or AllocTx is the worker's until it hands it to
// Transmit or Release; the port gets frames back from transmission itself
// (Recycle). Every method is called by the worker's goroutine only, except
// Stats and Wake.
//
// Receive, Transmit, Recycle and AllocTx take a whole batch per call; Frame
// and Release are per frame but are plain slice operations in both
// implementations. None of them may block or make a syscall per frame.
type Port interface {
	// Receive fills out with up to len(out) received frames and returns how
	// many.
	Receive(out []xsk.Desc) int
	// Frame returns the bytes of d, in place: no copy. Its capacity ends at
	// the end of d's frame.
	Frame(d xsk.Desc) []byte
	// Transmit queues as many of in as fit for sending and returns how
	// many; the worker still owns in[n:].
	Transmit(in []xsk.Desc) int
	// Release returns a frame the worker owns; addr may point anywhere
	// inside the frame.
	Release(addr uint64)
	// Recycle takes back the frames whose transmission completed and makes
	// them available for receiving again. Once per loop iteration.
	Recycle()
	// AllocTx takes up to len(out) free frames for frames the worker
	// originates (injected by the slow path), with Len set to the frame
	// size, and returns how many.
	AllocTx(out []xsk.Desc) int
	// Wait blocks until frames arrive, Wake is called or timeoutMs passes:
	// the idle mode of a worker that does not busy-poll.
	Wait(timeoutMs int) error
	// Wake makes the current Wait return, or the next one at once. Unlike
	// the other methods it is called by other goroutines (the slow path,
	// after queueing work for a sleeping worker); it may cost a syscall.
	Wake()
	// Stats returns the port's counters, including the kernel's drops
	// before the RX ring. It may cost a syscall: once a second at most.
	Stats() (xsk.Stats, error)
}

var _ Port = (*xsk.Socket)(nil)
