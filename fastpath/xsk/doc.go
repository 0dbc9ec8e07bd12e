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
// asavie/xdp (archived) is used here only in tests: as an independent
// reference implementation on the other end of a veth pair
// (TestAsavieConformance, both directions) and as the baseline of the receive
// benchmarks; TestAsavieOnlyInTests keeps it out of production code. We do
// not build on it because its shared ring indices are plain loads and stores
// (no ordering against the kernel, nothing stops the compiler from caching
// them), it re-reads both indices on every call, its GetDescs finds free
// frames by scanning a bool per UMEM frame (O(frames) per refill), one free
// list serves RX and TX and a frame counts as free the moment Receive returns
// it (so a forwarder cannot tell held frames from free ones), Transmit always
// calls sendto and panics on unexpected errors, Receive returns a slice
// aliasing an internal buffer, and it has no need_wakeup or mode selection.
// Its v0.3.3 Receive path does not allocate, though: on the lab VM both
// measure 0 allocs/op, and the receiver's own cost per frame is about 10 ns
// here against 16-17 ns there (BenchmarkReceiveDrain); under live load the
// veth/XDP path and the generator, not the receiver, set the rate
// (BenchmarkReceiveLive: 0.45-0.5 Mpps, noisy on 2 vCPUs).
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
//     entry for this socket's queue (see package steer). On veth, a frame
//     sent on the peer's TX queue q arrives on RX queue q.
//   - The fill ring's need_wakeup flag is never set in copy mode (only
//     zero-copy drivers set it), so Receive makes no syscalls there.
//   - Closing a socket releases its queue asynchronously: binding a new
//     socket to the same queue fails with EBUSY for some tens of
//     milliseconds. Open retries EBUSY for up to a second.
//   - The kernel checks the fill ring before the RX ring: when the worker
//     stalls for RingSize frames, drops show up as rx_fill_ring_empty_descs
//     and rx_dropped rather than rx_ring_full.
//   - Frames a veth peer's kernel sends arrive as that kernel left them:
//     with TX checksum offload on (the veth default) the L4 checksum field
//     holds only the pseudo-header sum, and with TSO/GSO on they can be
//     64 KB super-frames. A reply or NATed frame built from such input fails
//     the receiver's checksum check. Lab peers must turn the offloads off
//     (ethtool -K DEV tx off tso off gso off, or
//     internal/netnstest.DisableOffloads); a real wire carries complete
//     checksums.
package xsk
