//go:build linux

// Command xskfwd is the benchmark harness's raw AF_XDP forwarder: the floor
// under ipfront's own cost. It steers frames for one VIP into AF_XDP sockets
// with ipfront's steering program (fastpath/steer), and for every received
// frame only sets the destination MAC (one sink, or round-robin over a list)
// and the source MAC (the interface's), then transmits it back out of the
// same interface through ipfront's socket adapter (fastpath/xsk). No parsing,
// no flow table, no server selection: whatever ipfront costs on top of this
// is its load-balancing logic.
//
//	xskfwd --dev veth-lb --vip 192.0.2.10 --dst-mac 02:1b:00:00:00:0b,02:1b:00:00:00:0c --cpus 1
//
// It runs until SIGINT or SIGTERM, then prints its counters (one JSON object
// with -o json) and exits. Run it in the interface's network namespace, as
// root. "ready" on stderr means the program is attached and the sockets are
// registered.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/fastpath/steer"
	"github.com/ipfront/ipfront/fastpath/xsk"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "xskfwd:", err)
		os.Exit(1)
	}
}

// options are the parsed flags.
type options struct {
	dev        string
	vip        netip.Addr
	queues     []int
	cpus       []int
	dstMACs    [][6]byte
	srcMAC     [6]byte
	batch      int
	ring       uint32
	frames     uint32
	frameSize  uint32
	busyPoll   bool
	needWakeup bool
	mode       xsk.Mode
	xdpMode    steer.XDPMode
	json       bool
}

func parse(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("xskfwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		dev        = fs.String("dev", "", "interface to forward on (required)")
		vip        = fs.String("vip", "", "destination address whose frames are forwarded (required); everything else passes to the kernel")
		queues     = fs.String("queues", "0", "RX queues to serve, comma-separated: one socket and one goroutine each")
		cpus       = fs.String("cpus", "", "CPUs to pin the queues' threads to, one per queue (empty: not pinned)")
		dstMACs    = fs.String("dst-mac", "", "destination MAC, or a comma-separated list used round-robin (required)")
		srcMAC     = fs.String("src-mac", "", "source MAC (default: the interface's)")
		batch      = fs.Int("batch", 64, "frames per receive batch")
		ring       = fs.Uint("ring", 2048, "entries of each AF_XDP ring (power of two)")
		frames     = fs.Uint("frames", 0, "UMEM frames per socket (0: 4 * ring)")
		frameSize  = fs.Uint("frame-size", 4096, "UMEM frame size: 2048 or 4096")
		busyPoll   = fs.Bool("busy-poll", true, "spin on the rings; false: sleep in poll(2) when idle")
		needWakeup = fs.Bool("need-wakeup", true, "bind with XDP_USE_NEED_WAKEUP")
		mode       = fs.String("mode", "auto", "AF_XDP bind mode: auto, copy or zerocopy")
		xdpMode    = fs.String("xdp-mode", "auto", "steering program attach mode: auto, native or generic")
		output     = fs.String("o", "text", "output: text or json")
	)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o := &options{dev: *dev, batch: *batch, ring: uint32(*ring), frames: uint32(*frames), frameSize: uint32(*frameSize),
		busyPoll: *busyPoll, needWakeup: *needWakeup, json: *output == "json"}
	if o.dev == "" {
		return nil, errors.New("--dev is required")
	}
	var err error
	if o.vip, err = netip.ParseAddr(*vip); err != nil {
		return nil, fmt.Errorf("--vip: %w", err)
	}
	if o.queues, err = intList(*queues); err != nil || len(o.queues) == 0 {
		return nil, fmt.Errorf("--queues %q: want a comma-separated list of queue ids", *queues)
	}
	if *cpus != "" {
		if o.cpus, err = intList(*cpus); err != nil || len(o.cpus) != len(o.queues) {
			return nil, fmt.Errorf("--cpus %q: want one CPU per queue (%d)", *cpus, len(o.queues))
		}
	}
	for _, s := range strings.Split(*dstMACs, ",") {
		hw, err := net.ParseMAC(strings.TrimSpace(s))
		if err != nil || len(hw) != 6 {
			return nil, fmt.Errorf("--dst-mac %q: want Ethernet addresses", *dstMACs)
		}
		o.dstMACs = append(o.dstMACs, [6]byte(hw))
	}
	if *srcMAC != "" {
		hw, err := net.ParseMAC(*srcMAC)
		if err != nil || len(hw) != 6 {
			return nil, fmt.Errorf("--src-mac %q: want an Ethernet address", *srcMAC)
		}
		o.srcMAC = [6]byte(hw)
	}
	if o.batch < 1 || o.batch > int(o.ring) {
		return nil, fmt.Errorf("--batch %d: want 1..ring (%d)", o.batch, o.ring)
	}
	switch *mode {
	case "auto":
		o.mode = xsk.ModeAuto
	case "copy":
		o.mode = xsk.ModeCopy
	case "zerocopy":
		o.mode = xsk.ModeZeroCopy
	default:
		return nil, fmt.Errorf("--mode %q: want auto, copy or zerocopy", *mode)
	}
	switch *xdpMode {
	case "auto":
		o.xdpMode = steer.ModeAuto
	case "native":
		o.xdpMode = steer.ModeNative
	case "generic":
		o.xdpMode = steer.ModeGeneric
	default:
		return nil, fmt.Errorf("--xdp-mode %q: want auto, native or generic", *xdpMode)
	}
	return o, nil
}

func intList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%q is not a non-negative integer", f)
		}
		out = append(out, v)
	}
	return out, nil
}

// Report is what xskfwd prints when it stops.
type Report struct {
	Dev        string `json:"dev"`
	ZeroCopy   bool   `json:"zero_copy"`
	XDPMode    string `json:"xdp_mode"`
	Queues     []int  `json:"queues"`
	RxPackets  uint64 `json:"rx_packets"`
	TxPackets  uint64 `json:"tx_packets"`
	TxDropped  uint64 `json:"tx_dropped"` // TX ring full: released unsent
	KernelDrop uint64 `json:"kernel_rx_dropped"`
	// The kernel's drops and the adapter's system calls, summed over the
	// sockets (xsk.Stats): no frame on the fill ring, RX ring full, fill
	// ring found empty, TX kicks (sendto), fill-ring wake-ups (recvfrom).
	RxNoFrame     uint64  `json:"rx_dropped_no_frame"`
	RxRingFull    uint64  `json:"rx_ring_full"`
	FillRingEmpty uint64  `json:"rx_fill_ring_empty"`
	TxKicks       uint64  `json:"tx_kicks"`
	RxWakeups     uint64  `json:"rx_wakeups"`
	Seconds       float64 `json:"seconds"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	ifc, err := net.InterfaceByName(o.dev)
	if err != nil {
		return err
	}
	if o.srcMAC == ([6]byte{}) {
		if len(ifc.HardwareAddr) != 6 {
			return fmt.Errorf("%s has no Ethernet address: pass --src-mac", o.dev)
		}
		o.srcMAC = [6]byte(ifc.HardwareAddr)
	}
	maxQ := 0
	for _, q := range o.queues {
		maxQ = max(maxQ, q+1)
	}
	prog, err := steer.Load(maxQ)
	if err != nil {
		return err
	}
	defer prog.Close()
	if err := prog.SetVIPs([]netip.Addr{o.vip}); err != nil {
		return err
	}
	fwds := make([]*forwarder, len(o.queues))
	defer func() {
		for _, f := range fwds {
			if f != nil {
				f.sock.Close()
			}
		}
	}()
	frames := o.frames
	if frames == 0 {
		frames = 4 * o.ring
	}
	for i, q := range o.queues {
		sock, err := xsk.Open(xsk.Config{Ifindex: ifc.Index, QueueID: q, NumFrames: frames, FrameSize: o.frameSize,
			RingSize: o.ring, NeedWakeup: o.needWakeup, Mode: o.mode})
		if err != nil {
			return fmt.Errorf("queue %d: %w", q, err)
		}
		cpu := -1
		if o.cpus != nil {
			cpu = o.cpus[i]
		}
		fwds[i] = newForwarder(sock, o, cpu)
		if err := prog.RegisterSocket(q, sock.FD()); err != nil {
			return err
		}
	}
	att, err := prog.Attach(ifc.Index, o.xdpMode)
	if err != nil {
		return err
	}
	defer att.Close()

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(fwds))
	for i, f := range fwds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f.loop()
		}()
	}
	fmt.Fprintln(stderr, "ready")
	<-ctx.Done()
	for _, f := range fwds {
		f.stop.Store(true)
	}
	wg.Wait()

	rep := Report{Dev: o.dev, ZeroCopy: fwds[0].sock.ZeroCopy(), XDPMode: att.Mode().String(), Queues: o.queues,
		Seconds: time.Since(start).Seconds()}
	for _, f := range fwds {
		st, err := f.sock.Stats()
		if err != nil {
			return err
		}
		rep.RxPackets += st.RxPackets
		rep.TxPackets += st.TxPackets
		rep.TxDropped += f.txDropped
		rep.KernelDrop += st.Kernel.RxDropped + st.Kernel.RxRingFull
		rep.RxNoFrame += st.Kernel.RxDropped
		rep.RxRingFull += st.Kernel.RxRingFull
		rep.FillRingEmpty += st.Kernel.RxFillRingEmptyDescs
		rep.TxKicks += st.TxKicks
		rep.RxWakeups += st.RxWakeups
	}
	if o.json {
		if err := json.NewEncoder(stdout).Encode(rep); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "xskfwd: %s queues %v (zero-copy %v, XDP %s): rx %d, tx %d, tx ring full %d, kernel rx drops %d in %.1fs\n",
			rep.Dev, rep.Queues, rep.ZeroCopy, rep.XDPMode, rep.RxPackets, rep.TxPackets, rep.TxDropped, rep.KernelDrop, rep.Seconds)
	}
	return errors.Join(errs...)
}

// forwarder serves one socket from one goroutine locked to its OS thread,
// the way a fast-path worker does (fastpath/worker.go): receive a batch,
// rewrite, transmit, release what did not fit, recycle.
type forwarder struct {
	sock     *xsk.Socket
	dst      [][6]byte
	src      [6]byte
	busyPoll bool
	cpu      int
	next     int // round-robin position in dst

	descs     []xsk.Desc
	txDropped uint64 // owner only; read after stop
	stop      atomic.Bool
}

func newForwarder(sock *xsk.Socket, o *options, cpu int) *forwarder {
	return &forwarder{sock: sock, dst: o.dstMACs, src: o.srcMAC, busyPoll: o.busyPoll, cpu: cpu,
		descs: make([]xsk.Desc, o.batch)}
}

func (f *forwarder) loop() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if f.cpu >= 0 {
		var set unix.CPUSet
		set.Set(f.cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pin to CPU %d: %w", f.cpu, err)
		}
	}
	s := f.sock
	idle := false
	for !f.stop.Load() {
		var n int
		if idle {
			n = f.idlePoll()
		} else {
			n = s.Receive(f.descs)
		}
		if idle = n == 0; idle {
			f.idle()
			continue
		}
		batch := f.descs[:n]
		for _, d := range batch {
			fr := s.Frame(d)
			if len(fr) < 12 {
				continue
			}
			copy(fr[0:6], f.dst[f.next][:])
			copy(fr[6:12], f.src[:])
			if f.next++; f.next == len(f.dst) {
				f.next = 0
			}
		}
		sent := s.Transmit(batch)
		for _, d := range batch[sent:] {
			s.Release(d.Addr)
		}
		f.txDropped += uint64(n - sent)
		s.Recycle()
	}
	return nil
}

// idlePoll is the RX poll after an empty one, a function of its own like
// idle (ipfront's worker has the same, Worker.idlePoll): the polls spun
// through while nothing arrives are idle time.
//
//go:noinline
func (f *forwarder) idlePoll() int { return f.sock.Receive(f.descs) }

// idle is a loop iteration that received nothing. It is a function of its
// own, never inlined, so that a profile tells the forwarder's idle polling
// from its work (the benchmark harness's overhead accounting counts samples
// under it as idle, as it does under ipfront's Worker.idle).
//
//go:noinline
func (f *forwarder) idle() {
	f.sock.Recycle()
	if !f.busyPoll {
		_ = f.sock.Wait(100)
	}
}
