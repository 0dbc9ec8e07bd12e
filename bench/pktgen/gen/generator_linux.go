package gen

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/fastpath/xsk"
)

// Generator transmits the frames of a Config through one AF_XDP socket.
//
// New opens the socket in the network namespace of the calling thread; after
// that the Generator may move between goroutines, but belongs to one at a
// time: Run and Close must not be called concurrently.
type Generator struct {
	cfg      Config // defaults applied
	ifindex  int
	sock     *xsk.Socket
	fill     *Filler
	nl       *netlink.Handle // opened in the interface's namespace, for its counters
	size     uint32
	numFrame uint32

	// descs[:pending] are filled frames that Transmit refused (TX ring
	// full); they go first in the next batch, so no flow is skipped.
	descs   []xsk.Desc
	pending int
}

// Result is what a Run did. Packet counts are frames.
type Result struct {
	Dev       string    `json:"dev"`
	Queue     int       `json:"queue"`
	ZeroCopy  bool      `json:"zero_copy"`
	Proto     Proto     `json:"proto"`
	Family    int       `json:"family"`
	Size      int       `json:"size"` // frame bytes, without FCS
	Flows     int       `json:"flows"`
	FlowOrder FlowOrder `json:"flow_order"`
	Batch     int       `json:"batch"`
	Ring      int       `json:"ring"`
	Rate      float64   `json:"rate"` // target pps, 0 for max

	// Sent counts frames the TX ring accepted; Completed those the
	// kernel reported done through the completion ring (in copy mode:
	// handed to the driver and freed, which includes frames the driver
	// dropped: see DevTxDropped).
	Sent      uint64 `json:"sent"`
	Completed uint64 `json:"completed"`
	// Elapsed runs from the first batch until every sent frame completed
	// (or a 2 s drain timeout).
	Elapsed time.Duration `json:"elapsed_ns"`
	PPS     float64       `json:"pps"`  // Sent / Elapsed
	Mbps    float64       `json:"mbps"` // PPS * Size * 8 / 1e6
	// WireMbps adds the 24 bytes per frame an Ethernet wire also carries
	// (FCS, preamble, inter-frame gap): compare it with the line rate.
	WireMbps float64 `json:"wire_mbps"`

	// TxRingFull counts batches the TX ring could not take whole (the
	// refused frames are submitted again first): the kernel, not the
	// generator, set the pace. RateWaits counts the times Run waited for
	// tokens (a sleep or, under 20 µs, a spin).
	TxRingFull uint64 `json:"tx_ring_full"`
	TxKicks    uint64 `json:"tx_kicks"`
	KickErrors uint64 `json:"kick_errors"`
	RateWaits  uint64 `json:"rate_waits"`
	// TxInvalidDescs and TxRingEmptyDescs are the kernel's
	// XDP_STATISTICS.
	TxInvalidDescs   uint64 `json:"tx_invalid_descs"`
	TxRingEmptyDescs uint64 `json:"tx_ring_empty_descs"`
	// DevTxPackets and DevTxDropped are the interface's counters over the
	// run (netlink link statistics; they include other traffic). On veth,
	// DevTxDropped counts frames the peer could not take.
	DevTxPackets uint64 `json:"dev_tx_packets"`
	DevTxDropped uint64 `json:"dev_tx_dropped"`
}

// drainTimeout bounds how long Run waits for the kernel to complete the
// frames in flight after the last batch.
const drainTimeout = 2 * time.Second

// minSleep is the shortest wait for tokens Run sleeps through rather than
// spins.
const minSleep = 20 * time.Microsecond

// neighTimeout bounds the neighbour resolution New does for a zero DstMAC.
const neighTimeout = 2 * time.Second

// New checks cfg, resolves the MACs it leaves zero (SrcMAC: the interface's;
// DstMAC: ResolveDstMAC), builds the Filler, opens an AF_XDP socket on
// (cfg.Dev, cfg.Queue) and writes the template into every UMEM frame that can
// carry TX traffic. The interface is looked up, and the socket made, in the
// calling thread's network namespace.
func New(cfg Config) (*Generator, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	ifc, err := net.InterfaceByName(c.Dev)
	if err != nil {
		return nil, fmt.Errorf("pktgen: %w", err)
	}
	if c.Size > ifc.MTU+ethLen {
		return nil, fmt.Errorf("%w: frame size %d exceeds %s's MTU %d + 14", ErrConfig, c.Size, c.Dev, ifc.MTU)
	}
	if c.SrcMAC == ([6]byte{}) {
		if len(ifc.HardwareAddr) != 6 {
			return nil, fmt.Errorf("%w: %s has no Ethernet address; pass the source MAC", ErrConfig, c.Dev)
		}
		c.SrcMAC = [6]byte(ifc.HardwareAddr)
	}
	if c.DstMAC == ([6]byte{}) {
		if c.DstMAC, err = ResolveDstMAC(c.Dev, c.Dst, neighTimeout); err != nil {
			return nil, fmt.Errorf("pktgen: %w", err)
		}
	}
	fill, err := NewFiller(&c)
	if err != nil {
		return nil, err
	}
	g := &Generator{
		cfg:     c,
		ifindex: ifc.Index,
		fill:    fill,
		size:    uint32(c.Size),
		descs:   make([]xsk.Desc, c.Batch),
	}
	if g.nl, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
		return nil, fmt.Errorf("pktgen: netlink: %w", err)
	}

	// Frames: the fill ring holds Ring of them for good (the socket
	// receives nothing: no XDP program redirects to it); in flight are at
	// most Ring on the TX ring plus Ring taken by the kernel and not yet
	// reaped from the completion ring; Batch more are being filled.
	g.numFrame = nextPow2(uint32(3*c.Ring + c.Batch))
	frameSize := uint32(2048)
	if c.Size > 2048 {
		frameSize = 4096
	}
	mode := xsk.ModeAuto
	switch c.XSKMode {
	case XSKCopy:
		mode = xsk.ModeCopy
	case XSKZeroCopy:
		mode = xsk.ModeZeroCopy
	}
	g.sock, err = xsk.Open(xsk.Config{
		Ifindex:    ifc.Index,
		QueueID:    c.Queue,
		NumFrames:  g.numFrame,
		FrameSize:  frameSize,
		RingSize:   uint32(c.Ring),
		NeedWakeup: true,
		Mode:       mode,
	})
	if err != nil {
		g.nl.Close()
		return nil, fmt.Errorf("pktgen: %w", err)
	}

	// Every frame the socket will hand out for TX gets the template once;
	// the kernel never writes a TX frame, so from then on Fill only
	// patches the per-flow fields.
	all := make([]xsk.Desc, g.numFrame)
	n := g.sock.AllocTx(all)
	for _, d := range all[:n] {
		copy(g.sock.Frame(d), fill.Template())
	}
	for _, d := range all[:n] {
		g.sock.Release(d.Addr)
	}
	return g, nil
}

func nextPow2(v uint32) uint32 {
	p := uint32(1)
	for p < v {
		p <<= 1
	}
	return p
}

// Config returns the configuration with defaults and resolved MACs.
func (g *Generator) Config() Config { return g.cfg }

// ZeroCopy reports whether the socket runs in zero-copy mode.
func (g *Generator) ZeroCopy() bool { return g.sock.ZeroCopy() }

// Close closes the socket.
func (g *Generator) Close() error {
	g.nl.Close()
	return g.sock.Close()
}

// step fills and submits one batch of up to want frames (want <= Batch): the
// frames Transmit refused last time first, then new ones. It returns how many
// the TX ring accepted and whether it refused any. No allocation, no syscall
// but Transmit's kick.
func (g *Generator) step(want int) (int, bool) {
	s := g.sock
	s.Recycle()
	have := g.pending
	if have < want {
		k := s.AllocTx(g.descs[have:want])
		for i := have; i < have+k; i++ {
			d := &g.descs[i]
			g.fill.Fill(s.Frame(*d))
			d.Len = g.size
		}
		have += k
	}
	submit := min(have, want)
	m := s.Transmit(g.descs[:submit])
	if m > 0 && m < have {
		copy(g.descs, g.descs[m:have])
	}
	g.pending = have - m
	return m, m < submit
}

// Run transmits until Count frames are sent, Duration passes or ctx is done,
// whichever comes first, then waits for the frames in flight and reports.
// A Generator may Run again; each Run continues the flow sequence and
// reports only its own traffic.
func (g *Generator) Run(ctx context.Context) (Result, error) {
	c := &g.cfg
	if c.Pin {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		var old, set unix.CPUSet
		if err := unix.SchedGetaffinity(0, &old); err != nil {
			return Result{}, fmt.Errorf("pktgen: CPU affinity: %w", err)
		}
		set.Set(c.CPU)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return Result{}, fmt.Errorf("pktgen: pin to CPU %d: %w", c.CPU, err)
		}
		defer func() { _ = unix.SchedSetaffinity(0, &old) }()
	}
	st0, err := g.sock.Stats()
	if err != nil {
		return Result{}, fmt.Errorf("pktgen: %w", err)
	}
	dev0, devErr := g.devStats()

	var (
		sent, waits, ringFull uint64
		tokens                float64
		last                  time.Duration
		done                  = ctx.Done()
		// A batch waits for at least quantum tokens, 100 µs worth of the
		// rate (at most a batch), and sleeps meanwhile: a low rate costs
		// neither a syscall per packet nor a spinning core.
		quantum = min(float64(c.Batch), max(1, c.Rate*100e-6))
		// The bucket holds two batches: a short stall is caught up, a
		// long one is not turned into a burst.
		depth = float64(2 * c.Batch)
	)
	timer := time.NewTimer(time.Hour) // for rate waits; Reset before each use
	timer.Stop()
	start := time.Now()
loop:
	for {
		select {
		case <-done:
			break loop
		default:
		}
		now := time.Since(start)
		if c.Duration > 0 && now >= c.Duration {
			break
		}
		want := c.Batch
		if c.Count > 0 {
			if sent >= c.Count {
				break
			}
			want = int(min(uint64(want), c.Count-sent))
		}
		if c.Rate > 0 {
			tokens = min(depth, tokens+(now-last).Seconds()*c.Rate)
			last = now
			if need := min(quantum, float64(want)); tokens < need {
				// A sleep overshoots by tens of µs; the bucket keeps
				// the tokens that accrue meanwhile, so the rate holds.
				waits++
				g.sock.Recycle()
				wait := time.Duration((need - tokens) / c.Rate * 1e9)
				if c.Duration > 0 {
					wait = min(wait, c.Duration-now)
				}
				if wait >= minSleep {
					timer.Reset(wait)
					select {
					case <-done:
						timer.Stop()
						break loop
					case <-timer.C:
					}
				}
				continue
			}
			want = min(want, int(tokens))
		}
		m, full := g.step(want)
		sent += uint64(m)
		tokens -= float64(m)
		if full {
			ringFull++
		}
	}

	// Frames filled but refused were never sent.
	for _, d := range g.descs[:g.pending] {
		g.sock.Release(d.Addr)
	}
	g.pending = 0
	for deadline := time.Now().Add(drainTimeout); g.sock.Accounting().Tx > 0 && time.Now().Before(deadline); {
		g.sock.Recycle()
		if g.sock.Accounting().Tx > 0 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	elapsed := time.Since(start)

	st, err := g.sock.Stats()
	if err != nil {
		return Result{}, fmt.Errorf("pktgen: %w", err)
	}
	r := Result{
		Dev: c.Dev, Queue: c.Queue, ZeroCopy: g.sock.ZeroCopy(),
		Proto: c.Proto, Family: family(c.Dst), Size: c.Size, Flows: c.Flows(), FlowOrder: c.FlowOrder,
		Batch: c.Batch, Ring: c.Ring, Rate: c.Rate,
		Sent:             sent,
		Completed:        st.TxCompleted - st0.TxCompleted,
		Elapsed:          elapsed,
		TxRingFull:       ringFull,
		TxKicks:          st.TxKicks - st0.TxKicks,
		KickErrors:       st.KickErrors - st0.KickErrors,
		RateWaits:        waits,
		TxInvalidDescs:   st.Kernel.TxInvalidDescs - st0.Kernel.TxInvalidDescs,
		TxRingEmptyDescs: st.Kernel.TxRingEmptyDescs - st0.Kernel.TxRingEmptyDescs,
	}
	if s := elapsed.Seconds(); s > 0 {
		r.PPS = float64(sent) / s
		r.Mbps = r.PPS * float64(c.Size) * 8 / 1e6
		r.WireMbps = r.PPS * float64(c.Size+24) * 8 / 1e6
	}
	if dev1, err := g.devStats(); err == nil && devErr == nil {
		r.DevTxPackets = dev1.TxPackets - dev0.TxPackets
		r.DevTxDropped = dev1.TxDropped - dev0.TxDropped
	}
	if r.Sent != r.Completed {
		return r, fmt.Errorf("pktgen: %d of %d frames did not complete within %v", r.Sent-r.Completed, r.Sent, drainTimeout)
	}
	return r, nil
}

// devStats reads the interface's counters through the netlink handle made in
// its namespace.
func (g *Generator) devStats() (netlink.LinkStatistics, error) {
	l, err := g.nl.LinkByIndex(g.ifindex)
	if err != nil {
		return netlink.LinkStatistics{}, err
	}
	if s := l.Attrs().Statistics; s != nil {
		return *s, nil
	}
	return netlink.LinkStatistics{}, errors.New("no link statistics")
}
