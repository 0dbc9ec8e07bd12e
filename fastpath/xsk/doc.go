// Package xsk is ipfront's AF_XDP socket adapter: one socket bound to one
// (interface, queue), its UMEM and its four rings, driven by a busy-polling
// worker.
//
// # Rings
//
// The kernel shares four single-producer/single-consumer rings with us:
//
//   - fill: we produce empty frame addresses, the kernel consumes them to
//     receive into;
//   - RX: the kernel produces descriptors of received frames, we consume them;
//   - TX: we produce descriptors of frames to send, the kernel consumes them;
//   - completion: the kernel produces addresses of frames it has sent, we
//     consume them.
//
// Each ring keeps a cached copy of the kernel-owned index and publishes its own
// index once per batch (the model is gVisor's pkg/xdp): the shared producer
// and consumer words are touched only with sync/atomic, an atomic load
// (acquire) when the cached view runs dry and an atomic store (release) when
// a batch is committed; the slots are indexed with index&mask.
//
// # Frame accounting
//
// This package owns the frames. At any time each UMEM frame is in exactly one
// place: on the fill ring or being received into by the kernel, held by the
// caller (after Receive or AllocTx), on the TX ring or being sent by the
// kernel, on the completion ring, or on the socket's free stack. Frames reach
// the free stack through Release (the caller dropped a received frame or an
// unsent one) and through Recycle (reaped from the completion ring); Recycle
// moves them on to the fill ring. Accounting reports the split so tests can
// assert that nothing leaks.
//
// # Why not github.com/asavie/xdp
//
// asavie/xdp (archived) is used here only in tests, as an independent
// reference implementation on the other end of a veth pair and as the
// baseline of a benchmark. We do not build on it because its ring indices are
// plain loads and stores (no ordering against the kernel, and nothing stops
// the compiler from caching them), it re-reads both shared indices on every
// call, its GetDescs scans a bool per UMEM frame to find free ones (O(frames)
// per fill), one free list serves RX and TX so a forwarder cannot keep
// received frames apart from generated ones, Transmit always issues sendto and
// panics on unexpected errors, Receive returns a slice aliasing an internal
// buffer, and it has no need_wakeup or zero-copy mode selection. Here the fill
// path is O(batch) from a stack, the hot calls do not allocate
// (TestZeroAllocs, BenchmarkReceive), and syscalls are issued only when the
// kernel asks for them (need_wakeup) or copy-mode TX requires a kick.
//
// # Concurrency
//
// A Socket belongs to one goroutine (a fast-path worker): every method except
// Stats and FD must be called from it. Stats may be called from any goroutine
// while the socket is open.
//
// # Kernel quirks (measured on 6.18, veth)
//
//   - veth has no zero-copy support: ModeAuto falls back to copy mode,
//     ModeZeroCopy fails at bind.
//   - In copy mode the kernel transmits only inside sendto/poll, and at most
//     max_tx_budget (default 32) descriptors per call; Open raises the budget
//     to the TX ring size where the kernel allows it (XDP_MAX_TX_SKB_BUDGET,
//     6.17+), and Transmit/Recycle kick again while the TX ring holds
//     descriptors the kernel has not consumed. The TX ring's need_wakeup flag
//     stays set forever in copy mode.
//   - In copy mode received descriptors point XDP_PACKET_HEADROOM (256)
//     bytes into their frame, so a frame receives at most FrameSize-256
//     bytes; larger frames are dropped (rx_dropped).
//   - Frames only arrive when an XDP program redirects them into an XSKMAP
//     entry for this socket's queue (see package steer).
package xsk
