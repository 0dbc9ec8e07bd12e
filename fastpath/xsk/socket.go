//go:build linux

package xsk

import (
	"errors"
	"fmt"
	"math/bits"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Mode selects how the socket binds to its queue.
type Mode int

const (
	// ModeAuto lets the kernel try zero-copy and fall back to copy mode.
	// Socket.ZeroCopy tells which one it got.
	ModeAuto Mode = iota
	// ModeCopy forces copy mode (XDP_COPY); works on every driver.
	ModeCopy
	// ModeZeroCopy requires zero-copy (XDP_ZEROCOPY); Open fails if the
	// driver cannot do it (veth cannot).
	ModeZeroCopy
)

// String returns the mode's configuration name.
func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeCopy:
		return "copy"
	case ModeZeroCopy:
		return "zerocopy"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Config configures Open. Zero NumFrames, FrameSize and RingSize take the
// defaults DefaultNumFrames, DefaultFrameSize and DefaultRingSize.
type Config struct {
	Ifindex int
	QueueID int
	// NumFrames is the number of UMEM frames owned by this socket, a power
	// of two. Open puts min(NumFrames, RingSize) of them on the fill ring;
	// a socket that also originates packets (AllocTx) or forwards needs
	// more: 2*RingSize or more is a good start.
	NumFrames uint32
	// FrameSize is 2048 or 4096. In copy mode a frame receives at most
	// FrameSize-256 bytes (XDP_PACKET_HEADROOM).
	FrameSize uint32
	// RingSize is the number of entries of each of the fill, completion, RX
	// and TX rings, a power of two.
	RingSize uint32
	// NeedWakeup binds with XDP_USE_NEED_WAKEUP: the kernel tells us when
	// it needs a syscall to make progress instead of us issuing one on
	// every call.
	NeedWakeup bool
	Mode       Mode
	// HugePages chooses the UMEM's pages (HugeAuto: the best available).
	HugePages HugePages
	// BusyPoll, if Usec > 0, asks for preferred busy polling
	// (Socket.BusyPoll says whether the kernel agreed).
	BusyPoll BusyPoll
}

// Defaults for zero Config fields.
const (
	DefaultNumFrames = 4096
	DefaultFrameSize = 2048
	DefaultRingSize  = 1024
)

// Desc describes one frame in the UMEM: Addr is the offset of the packet's
// first byte in the UMEM (it may point past the frame's start: received
// packets start XDP_PACKET_HEADROOM bytes into their frame in copy mode),
// Len its length.
type Desc struct {
	Addr uint64
	Len  uint32
}

// bindBusyWait bounds how long Open retries a bind that fails with EBUSY.
const bindBusyWait = time.Second

// ErrClosed is returned by methods called after Close.
var ErrClosed = errors.New("xsk: socket closed")

// Socket is one AF_XDP socket with its own UMEM.
//
// A Socket is owned by ONE goroutine: Receive, Transmit, Release, Recycle,
// AllocTx, Frame, Wait, Accounting, CheckFrames and Close must all be called
// from it, without locking. Only Stats and FD may be called from other
// goroutines (while the socket is open).
type Socket struct {
	fd        int
	zeroCopy  bool
	cfg       Config
	frameMask uint64 // ^(FrameSize-1): addr&frameMask is the frame's base

	// umem is the packet memory registered with the kernel. The kernel
	// writes the frames it owns (fill ring until received); we write the
	// frames we own.
	umem     []byte
	umemMap  mapping  // what Close unmaps
	umemInfo UMEMInfo // which pages back umem

	// busyPoll is the outcome of Config.BusyPoll; with Enabled, Receive
	// pokes the kernel when the RX ring is empty (it runs NAPI inline).
	busyPoll BusyPollStatus
	// wake is the eventfd that ends Wait early (Wake).
	wake waker

	fill addrRing // we produce, kernel consumes
	comp addrRing // kernel produces, we consume
	rx   descRing // kernel produces, we consume
	tx   descRing // we produce, kernel consumes

	// free is the stack of frame base addresses nobody uses; cap(free) is
	// NumFrames, so a push beyond it means a frame was returned twice.
	free []uint64

	// Frame accounting (owner goroutine only). Together with len(free)
	// they always add up to NumFrames.
	onFill int64 // on the fill ring, in the kernel being received, or on the RX ring
	held   int64 // handed to the caller by Receive or AllocTx
	inTx   int64 // on the TX ring, being sent, or on the completion ring

	pfd [2]unix.PollFd // the socket, then the wake eventfd

	ctr counters
}

// counters are written by the owner goroutine (one atomic add per call, not
// per packet) and read by Stats from anywhere.
type counters struct {
	rxPackets   atomic.Uint64
	rxBytes     atomic.Uint64
	txPackets   atomic.Uint64
	txBytes     atomic.Uint64
	txRingFull  atomic.Uint64
	txCompleted atomic.Uint64
	filled      atomic.Uint64
	fillStarved atomic.Uint64
	rxWakeups   atomic.Uint64
	txKicks     atomic.Uint64
	kickErrors  atomic.Uint64
	busyPolls   atomic.Uint64
	// busyPollRefused is 1 when the kernel refused Config.BusyPoll.
	busyPollRefused atomic.Uint64
}

// Stats are the socket's counters. Packet counters count descriptors.
type Stats struct {
	RxPackets uint64 // handed to the caller by Receive
	RxBytes   uint64
	TxPackets uint64 // accepted by Transmit onto the TX ring
	TxBytes   uint64
	// TxRingFull counts descriptors Transmit did not accept (TX ring full);
	// the caller frees them.
	TxRingFull  uint64
	TxCompleted uint64 // reaped from the completion ring by Recycle
	Filled      uint64 // frames put on the fill ring
	// FillStarved counts Recycle calls that found room on the fill ring but
	// no free frame (the caller holds or transmits all of them).
	FillStarved uint64
	RxWakeups   uint64 // recvfrom pokes because the fill ring needed wakeup
	TxKicks     uint64 // sendto kicks
	KickErrors  uint64 // sendto/recvfrom failures other than EAGAIN/EBUSY/ENOBUFS/EINTR
	// BusyPolls counts recvfrom pokes on an empty RX ring with preferred
	// busy polling on (each runs the queue's NAPI once on the caller's
	// core); BusyPollRefused is 1 when the kernel refused busy polling.
	BusyPolls       uint64
	BusyPollRefused uint64

	Kernel KernelStats
}

// KernelStats is the kernel's XDP_STATISTICS for the socket.
type KernelStats struct {
	RxDropped            uint64 // dropped for other reasons (e.g. frame too big)
	RxInvalidDescs       uint64
	TxInvalidDescs       uint64
	RxRingFull           uint64 // dropped because the RX ring was full
	RxFillRingEmptyDescs uint64 // times the fill ring was empty on receive
	TxRingEmptyDescs     uint64
}

// Open creates the socket, registers a UMEM of cfg.NumFrames frames, sets up
// the four rings, binds to (cfg.Ifindex, cfg.QueueID) and gives all frames it
// can to the fill ring, keeping the rest on the free stack.
//
// The socket belongs to the network namespace of the calling OS thread.
func Open(cfg Config) (*Socket, error) {
	if cfg.NumFrames == 0 {
		cfg.NumFrames = DefaultNumFrames
	}
	if cfg.FrameSize == 0 {
		cfg.FrameSize = DefaultFrameSize
	}
	if cfg.RingSize == 0 {
		cfg.RingSize = DefaultRingSize
	}
	switch {
	case bits.OnesCount32(cfg.NumFrames) != 1:
		return nil, fmt.Errorf("xsk: NumFrames %d is not a power of two", cfg.NumFrames)
	case cfg.FrameSize != 2048 && cfg.FrameSize != 4096:
		return nil, fmt.Errorf("xsk: FrameSize %d is neither 2048 nor 4096", cfg.FrameSize)
	case bits.OnesCount32(cfg.RingSize) != 1:
		return nil, fmt.Errorf("xsk: RingSize %d is not a power of two", cfg.RingSize)
	case cfg.Mode < ModeAuto || cfg.Mode > ModeZeroCopy:
		return nil, fmt.Errorf("xsk: unknown mode %v", cfg.Mode)
	}

	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("xsk: socket(AF_XDP): %w", err)
	}
	s := &Socket{fd: fd, cfg: cfg, frameMask: ^(uint64(cfg.FrameSize) - 1)}
	s.wake.fd = -1
	if err := s.setup(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Socket) setup() error {
	cfg := s.cfg
	var err error
	if err := s.wake.open(); err != nil {
		return err
	}
	s.umem, s.umemMap, s.umemInfo, err = allocUMEM(int(cfg.NumFrames)*int(cfg.FrameSize), cfg.HugePages)
	if err != nil {
		return err
	}
	reg := unix.XDPUmemReg{
		Addr:     uint64(uintptr(unsafe.Pointer(&s.umem[0]))),
		Len:      uint64(len(s.umem)),
		Size:     cfg.FrameSize,
		Headroom: 0,
		Flags:    0,
	}
	if err := setsockopt(s.fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return fmt.Errorf("xsk: XDP_UMEM_REG: %w", err)
	}
	for _, o := range []struct {
		opt  int
		name string
	}{
		{unix.XDP_UMEM_FILL_RING, "XDP_UMEM_FILL_RING"},
		{unix.XDP_UMEM_COMPLETION_RING, "XDP_UMEM_COMPLETION_RING"},
		{unix.XDP_RX_RING, "XDP_RX_RING"},
		{unix.XDP_TX_RING, "XDP_TX_RING"},
	} {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_XDP, o.opt, int(cfg.RingSize)); err != nil {
			return fmt.Errorf("xsk: %s: %w", o.name, err)
		}
	}

	var off unix.XDPMmapOffsets
	optlen := uint32(unsafe.Sizeof(off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&optlen)), 0); e != 0 {
		return fmt.Errorf("xsk: XDP_MMAP_OFFSETS: %w", e)
	}
	if optlen != uint32(unsafe.Sizeof(off)) {
		return fmt.Errorf("xsk: XDP_MMAP_OFFSETS: kernel returned %d bytes, want %d (kernel too old)", optlen, unsafe.Sizeof(off))
	}

	n := cfg.RingSize
	addrSize, descSize := unsafe.Sizeof(uint64(0)), unsafe.Sizeof(unix.XDPDesc{})
	maps := []struct {
		pgoff int64
		off   unix.XDPRingOffset
		slot  uintptr
		name  string
		init  func([]byte)
	}{
		{unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, addrSize, "fill", func(m []byte) { s.fill.init(m, off.Fr, n) }},
		{unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, addrSize, "completion", func(m []byte) { s.comp.init(m, off.Cr, n) }},
		{unix.XDP_PGOFF_RX_RING, off.Rx, descSize, "rx", func(m []byte) { s.rx.init(m, off.Rx, n) }},
		{unix.XDP_PGOFF_TX_RING, off.Tx, descSize, "tx", func(m []byte) { s.tx.init(m, off.Tx, n) }},
	}
	for _, m := range maps {
		mem, err := unix.Mmap(s.fd, m.pgoff, ringBytes(m.off, n, m.slot),
			unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return fmt.Errorf("xsk: mmap %s ring: %w", m.name, err)
		}
		m.init(mem)
	}

	var flags uint16
	switch cfg.Mode {
	case ModeCopy:
		flags |= unix.XDP_COPY
	case ModeZeroCopy:
		flags |= unix.XDP_ZEROCOPY
	}
	if cfg.NeedWakeup {
		flags |= unix.XDP_USE_NEED_WAKEUP
	}
	sa := unix.SockaddrXDP{Flags: flags, Ifindex: uint32(cfg.Ifindex), QueueID: uint32(cfg.QueueID)}
	// A socket closed on this queue a moment ago still holds it until the
	// kernel's deferred release runs (tens of ms on 6.18): bind says EBUSY
	// meanwhile. Retry for a bounded time; a queue held by a live socket
	// still fails.
	for deadline := time.Now().Add(bindBusyWait); ; {
		err = unix.Bind(s.fd, &sa)
		if err != unix.EBUSY || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("xsk: bind ifindex %d queue %d mode %v: %w", cfg.Ifindex, cfg.QueueID, cfg.Mode, err)
	}

	opts, err := unix.GetsockoptInt(s.fd, unix.SOL_XDP, unix.XDP_OPTIONS)
	if err != nil {
		return fmt.Errorf("xsk: XDP_OPTIONS: %w", err)
	}
	s.zeroCopy = opts&unix.XDP_OPTIONS_ZEROCOPY != 0
	s.setBusyPoll(cfg.BusyPoll)

	// Copy mode sends at most max_tx_budget (32) descriptors per kick;
	// let one kick drain the whole TX ring where the kernel allows it
	// (6.17+; older kernels say ENOPROTOOPT and keep 32).
	if !s.zeroCopy && n >= 32 {
		_ = unix.SetsockoptInt(s.fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, int(n))
	}

	s.free = make([]uint64, 0, cfg.NumFrames)
	for i := int(cfg.NumFrames) - 1; i >= 0; i-- {
		s.free = append(s.free, uint64(i)*uint64(cfg.FrameSize))
	}
	s.pfd[0].Fd = int32(s.fd)
	s.pfd[1] = unix.PollFd{Fd: int32(s.wake.fd), Events: unix.POLLIN}
	s.refill()
	return nil
}

func setsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt),
		uintptr(p), size, 0); e != 0 {
		return e
	}
	return nil
}

// FD returns the socket's file descriptor (for XSKMAP registration).
func (s *Socket) FD() int { return s.fd }

// ZeroCopy reports whether the kernel bound the socket in zero-copy mode.
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// Config returns the configuration the socket was opened with, defaults
// filled in.
func (s *Socket) Config() Config { return s.cfg }

// Frame returns the packet bytes of d, a slice of the UMEM (no copy, no
// allocation). Its capacity ends at the end of d's frame.
func (s *Socket) Frame(d Desc) []byte {
	end := d.Addr&s.frameMask + uint64(s.cfg.FrameSize)
	return s.umem[d.Addr : d.Addr+uint64(d.Len) : end]
}

// Receive copies up to len(out) received descriptors into out, hands them
// back to the kernel's RX ring and returns how many there were. The frames
// now belong to the caller: Transmit them or Release them.
//
// It makes no syscall unless the socket uses need_wakeup and the kernel set
// the flag on the fill ring; then it pokes once with recvfrom(MSG_DONTWAIT).
func (s *Socket) Receive(out []Desc) int {
	want := uint32(len(out))
	n := s.rx.consAvail(want)
	if n > want {
		n = want
	}
	if n > 0 {
		idx, mask := s.rx.cachedCons, s.rx.mask
		var bytes uint64
		for i := range out[:n] {
			d := &s.rx.slots[(idx+uint32(i))&mask]
			out[i] = Desc{Addr: d.Addr, Len: d.Len}
			bytes += uint64(d.Len)
		}
		s.rx.consRelease(n)
		s.onFill -= int64(n)
		s.held += int64(n)
		s.ctr.rxPackets.Add(uint64(n))
		s.ctr.rxBytes.Add(bytes)
	}
	if s.cfg.NeedWakeup && s.fill.needWakeup() {
		s.ctr.rxWakeups.Add(1)
		s.syscall(unix.SYS_RECVFROM)
	} else if n == 0 && s.busyPoll.Enabled {
		// Preferred busy polling: nothing arrives unless someone runs the
		// queue's NAPI, and with deferred interrupts that is us.
		s.ctr.busyPolls.Add(1)
		s.syscall(unix.SYS_RECVFROM)
	}
	return int(n)
}

// RxBacklog returns how many received descriptors wait in the RX ring for
// the next Receive: one atomic load of the kernel's producer index.
func (s *Socket) RxBacklog() uint32 {
	s.rx.cachedProd = atomic.LoadUint32(s.rx.producer)
	return s.rx.cachedProd - s.rx.cachedCons
}

// Transmit puts as many of in as fit on the TX ring, submits them and returns
// how many it accepted; the caller still owns in[n:] (Release them or retry).
// Accepted frames come back through the completion ring (Recycle).
//
// When the kernel needs a kick (always in copy mode, or without need_wakeup,
// or when it set need_wakeup on the TX ring) and the TX ring holds
// descriptors, it issues one sendto(MSG_DONTWAIT).
func (s *Socket) Transmit(in []Desc) int {
	want := uint32(len(in))
	n := s.tx.prodFree(want)
	if n > want {
		n = want
	}
	if n > 0 {
		idx, mask := s.tx.cachedProd, s.tx.mask
		var bytes uint64
		for i, d := range in[:n] {
			s.tx.slots[(idx+uint32(i))&mask] = unix.XDPDesc{Addr: d.Addr, Len: d.Len}
			bytes += uint64(d.Len)
		}
		s.tx.cachedProd += n
		s.tx.prodSubmit()
		s.held -= int64(n)
		s.inTx += int64(n)
		s.ctr.txPackets.Add(uint64(n))
		s.ctr.txBytes.Add(bytes)
	}
	if n < want {
		s.ctr.txRingFull.Add(uint64(want - n))
	}
	if n > 0 || (s.inTx > 0 && s.tx.prodPending() > 0) {
		s.kick()
	}
	return int(n)
}

// kick wakes the kernel's TX path if it needs it.
func (s *Socket) kick() {
	if s.cfg.NeedWakeup && !s.tx.needWakeup() {
		return
	}
	s.ctr.txKicks.Add(1)
	s.syscall(unix.SYS_SENDTO)
}

// syscall issues recvfrom or sendto with no buffer and MSG_DONTWAIT: the
// kernel's cue to process the rings.
func (s *Socket) syscall(trap uintptr) {
	_, _, e := unix.Syscall6(trap, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0, unix.EAGAIN, unix.EBUSY, unix.ENOBUFS, unix.EINTR:
	default:
		s.ctr.kickErrors.Add(1)
	}
}

// Release returns a frame the caller owns (from Receive or AllocTx) to the
// free stack. addr may point anywhere inside the frame.
//
// Releasing a frame twice, or one the caller does not own, corrupts the
// accounting; releasing more frames than exist panics.
func (s *Socket) Release(addr uint64) {
	s.push(addr)
	s.held--
}

func (s *Socket) push(addr uint64) {
	if len(s.free) == cap(s.free) || addr >= uint64(len(s.umem)) {
		panic(fmt.Sprintf("xsk: frame %#x returned twice or not ours (free %d of %d)", addr, len(s.free), cap(s.free)))
	}
	s.free = append(s.free, addr&s.frameMask)
}

// Recycle moves the frames the kernel finished sending from the completion
// ring to the free stack, then refills the fill ring from the free stack. It
// also re-kicks TX if the kernel left descriptors on the TX ring (copy mode
// sends a bounded batch per kick). Call it once per loop iteration.
func (s *Socket) Recycle() {
	if s.inTx > 0 {
		n := s.comp.consAvail(s.comp.size)
		if n > 0 {
			idx, mask := s.comp.cachedCons, s.comp.mask
			for i := uint32(0); i < n; i++ {
				s.push(s.comp.slots[(idx+i)&mask])
			}
			s.comp.consRelease(n)
			s.inTx -= int64(n)
			s.ctr.txCompleted.Add(uint64(n))
		}
		if s.inTx > 0 && s.tx.prodPending() > 0 {
			s.kick()
		}
	}
	s.refill()
}

// refill moves as many free frames as fit onto the fill ring.
func (s *Socket) refill() {
	nfree := uint32(len(s.free))
	room := s.fill.prodFree(s.fill.size)
	if room == 0 {
		return
	}
	if nfree == 0 {
		s.ctr.fillStarved.Add(1)
		return
	}
	n := min(room, nfree)
	idx, mask := s.fill.cachedProd, s.fill.mask
	top := nfree - 1
	for i := uint32(0); i < n; i++ {
		s.fill.slots[(idx+i)&mask] = s.free[top-i]
	}
	s.free = s.free[:nfree-n]
	s.fill.cachedProd += n
	s.fill.prodSubmit()
	s.onFill += int64(n)
	s.ctr.filled.Add(uint64(n))
}

// AllocTx takes up to len(out) frames from the free stack for packets the
// caller originates, fills out with their base addresses and Len FrameSize,
// and returns how many it took. Write the packet into Frame(d), set d.Len,
// then Transmit (or Release) it.
func (s *Socket) AllocTx(out []Desc) int {
	nfree := len(s.free)
	n := min(len(out), nfree)
	for i := range out[:n] {
		out[i] = Desc{Addr: s.free[nfree-1-i], Len: s.cfg.FrameSize}
	}
	s.free = s.free[:nfree-n]
	s.held += int64(n)
	return n
}

// Wait blocks in poll(2) until the socket has received frames (POLLIN), or,
// if frames are in flight on TX, the kernel can take more (POLLOUT), or
// Wake is called (before or during the Wait), or timeoutMs passes (-1:
// forever). It is the idle mode of a worker; in copy mode polling for
// POLLOUT also drives transmission. A timeout or signal is not an error.
func (s *Socket) Wait(timeoutMs int) error {
	if s.fd < 0 {
		return ErrClosed
	}
	s.pfd[0].Events = unix.POLLIN
	if s.inTx > 0 {
		s.pfd[0].Events |= unix.POLLOUT
	}
	s.pfd[0].Revents, s.pfd[1].Revents = 0, 0
	_, err := unix.Poll(s.pfd[:], timeoutMs)
	if s.pfd[1].Revents&unix.POLLIN != 0 {
		s.wake.drain()
	}
	if err != nil && err != unix.EINTR {
		return fmt.Errorf("xsk: poll: %w", err)
	}
	return nil
}

// Stats returns the socket's counters and the kernel's XDP_STATISTICS. It may
// be called from any goroutine while the socket is open. It costs a
// getsockopt(2): call it from a metrics tick, not per loop iteration.
func (s *Socket) Stats() (Stats, error) {
	st := Stats{
		RxPackets:   s.ctr.rxPackets.Load(),
		RxBytes:     s.ctr.rxBytes.Load(),
		TxPackets:   s.ctr.txPackets.Load(),
		TxBytes:     s.ctr.txBytes.Load(),
		TxRingFull:  s.ctr.txRingFull.Load(),
		TxCompleted: s.ctr.txCompleted.Load(),
		Filled:      s.ctr.filled.Load(),
		FillStarved: s.ctr.fillStarved.Load(),
		RxWakeups:   s.ctr.rxWakeups.Load(),
		TxKicks:     s.ctr.txKicks.Load(),
		KickErrors:  s.ctr.kickErrors.Load(),

		BusyPolls:       s.ctr.busyPolls.Load(),
		BusyPollRefused: s.ctr.busyPollRefused.Load(),
	}
	var ks unix.XDPStatistics
	optlen := uint32(unsafe.Sizeof(ks))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_XDP, unix.XDP_STATISTICS,
		uintptr(unsafe.Pointer(&ks)), uintptr(unsafe.Pointer(&optlen)), 0); e != 0 {
		return st, fmt.Errorf("xsk: XDP_STATISTICS: %w", e)
	}
	st.Kernel = KernelStats{
		RxDropped:            ks.Rx_dropped,
		RxInvalidDescs:       ks.Rx_invalid_descs,
		TxInvalidDescs:       ks.Tx_invalid_descs,
		RxRingFull:           ks.Rx_ring_full,
		RxFillRingEmptyDescs: ks.Rx_fill_ring_empty_descs,
		TxRingEmptyDescs:     ks.Tx_ring_empty_descs,
	}
	return st, nil
}

// Close closes the socket and unmaps its rings and UMEM. Frames the caller
// still holds become invalid, and no other method may be called afterwards
// (the hot-path methods do not check). Close is idempotent.
func (s *Socket) Close() error {
	if s.fd < 0 {
		return nil
	}
	var errs []error
	if err := unix.Close(s.fd); err != nil {
		errs = append(errs, fmt.Errorf("xsk: close: %w", err))
	}
	s.fd = -1
	for _, r := range []*ringHeader{&s.fill.ringHeader, &s.comp.ringHeader, &s.rx.ringHeader, &s.tx.ringHeader} {
		if r.mem != nil {
			if err := unix.Munmap(r.mem); err != nil {
				errs = append(errs, fmt.Errorf("xsk: munmap ring: %w", err))
			}
		}
		*r = ringHeader{}
	}
	s.fill.slots, s.comp.slots, s.rx.slots, s.tx.slots = nil, nil, nil, nil
	if s.umem != nil {
		if err := s.umemMap.unmap(); err != nil {
			errs = append(errs, fmt.Errorf("xsk: munmap UMEM: %w", err))
		}
		s.umem = nil
	}
	if err := s.wake.close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
