// Command pktgen is ipfront's AF_XDP packet generator: it transmits UDP, TCP
// SYN or ACK, or SCTP DATA or INIT frames over many client flows through one
// AF_XDP socket, as fast as the queue takes them or at a set rate, and
// reports what it sent. The work is done by package gen, which the benchmark
// harness can also drive in-process.
//
//	pktgen --dev veth0 --dst-mac 02:00:00:00:00:02 --src-count 16 --sport-count 1024 \
//	       --proto tcp-syn --duration 10s -o json
//
// Run it in the network namespace of the interface (ip netns exec NS pktgen
// ...); it needs CAP_NET_RAW, CAP_NET_ADMIN and CAP_BPF or root.
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
	"syscall"
	"time"

	"github.com/ipfront/ipfront/bench/pktgen/gen"
)

const usage = `usage: pktgen --dev IF [flags]

Transmits pre-built frames through an AF_XDP socket on one queue of IF (in
the current network namespace). Flow i (0 <= i < src-count*sport-count) is
client address src + i/sport-count, client port sport-first + i%sport-count.

flags:
`

// defaults for addresses, per family.
var (
	defSrc4, defDst4 = "198.51.100.2", "192.0.2.10"
	defSrc6, defDst6 = "2001:db8:100::2", "2001:db8::10"
)

// defaultDuration applies when neither --duration nor --count is given.
const defaultDuration = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errFlags): // the flag package printed it
		os.Exit(2)
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "pktgen:", err)
		os.Exit(2)
	default: // package gen's errors say "pktgen: ..."
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

var (
	errUsage = errors.New("usage")
	errFlags = fmt.Errorf("%w: bad flags", errUsage)
)

func usageErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// run parses args, generates, and prints the result on stdout. The socket is
// made in the network namespace of the calling thread.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pktgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		_, _ = io.WriteString(fs.Output(), usage)
		fs.PrintDefaults()
	}
	var (
		dev        = fs.String("dev", "", "interface to transmit on (required)")
		queue      = fs.Int("queue", 0, "queue of the interface to bind the AF_XDP socket to")
		xdpMode    = fs.String("xdp-mode", "auto", "AF_XDP bind mode: auto, copy or zerocopy")
		srcMAC     = fs.String("src-mac", "", "source MAC (default: the interface's)")
		dstMAC     = fs.String("dst-mac", "", "destination MAC (default: from the neighbour table; required if dst's next hop is not resolvable)")
		src        = fs.String("src", "", "first client address (default "+defSrc4+", or "+defSrc6+" with IPv6)")
		srcCount   = fs.Int("src-count", 1, "number of client addresses (src, src+1, ...)")
		sportFirst = fs.Uint("sport-first", gen.DefaultSportFirst, "first client port")
		sportCount = fs.Int("sport-count", 1, "number of client ports")
		dst        = fs.String("dst", "", "destination address, the VIP (default "+defDst4+", or "+defDst6+" with IPv6)")
		dport      = fs.Uint("dport", 7000, "destination port")
		ipv6       = fs.Bool("ipv6", false, "IPv6 (also implied by an IPv6 --dst or --src)")
		proto      = fs.String("proto", "udp", "udp, tcp-syn, tcp-ack, sctp-data or sctp-init")
		size       = fs.Int("size", 0, fmt.Sprintf("frame bytes without FCS, >= %d (default %d, or the headers' length if larger)", gen.MinSize, gen.DefaultSize))
		sctpTag    = fs.Uint("sctp-tag", gen.DefaultSCTPTag, "SCTP verification tag (DATA) or Initiate Tag (INIT)")
		rate       = fs.Float64("rate", 0, "packets per second, 0 for as fast as possible")
		duration   = fs.Duration("duration", 0, fmt.Sprintf("how long to send (default %v unless --count is given)", defaultDuration))
		count      = fs.Uint64("count", 0, "how many frames to send (0: no limit)")
		batch      = fs.Int("batch", gen.DefaultBatch, "frames per TX submission")
		ring       = fs.Int("ring", gen.DefaultRing, "AF_XDP ring size (power of two)")
		flowOrder  = fs.String("flow-order", "seq", "seq or random (a permutation fixed by --seed)")
		seed       = fs.Uint64("seed", 1, "seed of the random flow order")
		cpu        = fs.Int("cpu", -1, "pin the sending thread to this CPU (-1: no pinning)")
		output     = fs.String("o", "text", "output: text or json (one object)")
	)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errFlags, err)
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q", fs.Arg(0))
	}
	if *dev == "" {
		return usageErr("--dev is required")
	}
	if *output != "text" && *output != "json" {
		return usageErr("-o %q: want text or json", *output)
	}
	cfg := gen.Config{
		Dev:        *dev,
		Queue:      *queue,
		SrcCount:   *srcCount,
		SportCount: *sportCount,
		Size:       *size,
		Rate:       *rate,
		Duration:   *duration,
		Count:      *count,
		Batch:      *batch,
		Ring:       *ring,
		Seed:       *seed,
		Pin:        *cpu >= 0,
		CPU:        *cpu,
	}
	var err error
	if cfg.XSKMode, err = gen.ParseXSKMode(*xdpMode); err != nil {
		return usageErr("%v", err)
	}
	if cfg.Proto, err = gen.ParseProto(*proto); err != nil {
		return usageErr("%v", err)
	}
	if cfg.FlowOrder, err = gen.ParseFlowOrder(*flowOrder); err != nil {
		return usageErr("%v", err)
	}
	if *sportFirst < 1 || *sportFirst > 65535 || *dport > 65535 {
		return usageErr("ports must be in [1, 65535] (destination: [0, 65535])")
	}
	cfg.SportFirst, cfg.Dport = uint16(*sportFirst), uint16(*dport)
	if *sctpTag < 1 || *sctpTag > 1<<32-1 {
		return usageErr("--sctp-tag must be in [1, 2^32-1]")
	}
	cfg.SCTPTag = uint32(*sctpTag)
	if cfg.Duration == 0 && cfg.Count == 0 {
		cfg.Duration = defaultDuration
	}
	for _, m := range []struct {
		flag string
		val  string
		dst  *[6]byte
	}{{"src-mac", *srcMAC, &cfg.SrcMAC}, {"dst-mac", *dstMAC, &cfg.DstMAC}} {
		if m.val == "" {
			continue
		}
		hw, err := net.ParseMAC(m.val)
		if err != nil || len(hw) != 6 {
			return usageErr("--%s %q is not an Ethernet address", m.flag, m.val)
		}
		*m.dst = [6]byte(hw)
	}
	if cfg.Src, cfg.Dst, err = addresses(*src, *dst, *ipv6); err != nil {
		return err
	}

	g, err := gen.New(cfg)
	if err != nil {
		return err
	}
	defer g.Close()
	res, runErr := g.Run(ctx)
	if *output == "json" {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			return fmt.Errorf("pktgen: write result: %w", err)
		}
	} else {
		printText(stdout, g.Config(), res)
	}
	return runErr
}

// addresses parses --src and --dst, filling in the defaults of the family:
// IPv6 if --ipv6 or either address is IPv6.
func addresses(src, dst string, ipv6 bool) (netip.Addr, netip.Addr, error) {
	var s, d netip.Addr
	for _, a := range []struct {
		flag, val string
		out       *netip.Addr
	}{{"src", src, &s}, {"dst", dst, &d}} {
		if a.val == "" {
			continue
		}
		v, err := netip.ParseAddr(a.val)
		if err != nil {
			return s, d, usageErr("--%s: %v", a.flag, err)
		}
		*a.out = v
		ipv6 = ipv6 || v.Is6()
	}
	if ipv6 {
		if s.Is4() || d.Is4() {
			return s, d, usageErr("IPv6 requested but an address is IPv4 (--src %q, --dst %q)", src, dst)
		}
		if !s.IsValid() {
			s = netip.MustParseAddr(defSrc6)
		}
		if !d.IsValid() {
			d = netip.MustParseAddr(defDst6)
		}
	} else {
		if !s.IsValid() {
			s = netip.MustParseAddr(defSrc4)
		}
		if !d.IsValid() {
			d = netip.MustParseAddr(defDst4)
		}
	}
	return s, d, nil
}

func printText(w io.Writer, c gen.Config, r gen.Result) {
	mode := "copy mode"
	if r.ZeroCopy {
		mode = "zero-copy"
	}
	rate := "max"
	if r.Rate > 0 {
		rate = fmt.Sprintf("%.0f pps", r.Rate)
	}
	fmt.Fprintf(w, "pktgen: %s queue %d (%s), %v over IPv%d, %d-byte frames, %v -> %v port %d, %d flows (%v), rate %s, batch %d, ring %d\n",
		r.Dev, r.Queue, mode, r.Proto, r.Family, r.Size, net.HardwareAddr(c.SrcMAC[:]), net.HardwareAddr(c.DstMAC[:]),
		c.Dport, r.Flows, r.FlowOrder, rate, r.Batch, r.Ring)
	fmt.Fprintf(w, "sent      %d frames in %.3fs: %.0f pps, %.1f Mbit/s (%.1f Mbit/s on the wire, with FCS, preamble and gap)\n",
		r.Sent, r.Elapsed.Seconds(), r.PPS, r.Mbps, r.WireMbps)
	fmt.Fprintf(w, "socket    completed %d, TX ring full %d, kicks %d, kick errors %d, rate waits %d\n",
		r.Completed, r.TxRingFull, r.TxKicks, r.KickErrors, r.RateWaits)
	fmt.Fprintf(w, "kernel    XDP_STATISTICS tx invalid descs %d, tx ring empty %d; %s tx packets %d, tx dropped %d\n",
		r.TxInvalidDescs, r.TxRingEmptyDescs, r.Dev, r.DevTxPackets, r.DevTxDropped)
}
