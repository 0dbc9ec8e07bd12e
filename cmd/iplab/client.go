//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// clientFlags are the flags every client command (tcp, udp, hold, load)
// has: where to go and how to print the report.
type clientFlags struct {
	vip  string
	port int
	out  string
}

// register adds --vip, --port and -o to fs; verb says what the command does
// with the VIP ("connect to", "send to").
func (f *clientFlags) register(fs *flag.FlagSet, verb string) {
	fs.StringVar(&f.vip, "vip", "", "address to "+verb+" (required)")
	fs.IntVar(&f.port, "port", 7000, "port to "+verb)
	fs.StringVar(&f.out, "o", "text", "output: text or json")
}

// target is where a client command goes.
type target struct {
	vip  netip.Addr
	port int
}

// parse parses args into fs and returns the target --vip and --port name.
func (f *clientFlags) parse(fs *flag.FlagSet, args []string) (target, error) {
	if err := parseFlags(fs, args); err != nil {
		return target{}, err
	}
	vip, err := netip.ParseAddr(f.vip)
	if err != nil {
		return target{}, fmt.Errorf("--vip: %w", err)
	}
	if f.port < 1 || f.port > 65535 {
		return target{}, fmt.Errorf("--port %d: want 1..65535", f.port)
	}
	return target{vip, f.port}, nil
}

// runContext returns the context a client command runs under: it ends at
// SIGTERM or SIGINT, or after duration unless that is 0.
func runContext(duration time.Duration) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	if duration <= 0 {
		return ctx, stop
	}
	ctx, cancel := context.WithTimeout(ctx, duration)
	return ctx, func() { cancel(); stop() }
}

// dialVIP connects to vip:port over TCP, from source port sport unless that
// is 0 (then the kernel picks).
func dialVIP(ctx context.Context, vip netip.Addr, port, sport int) (net.Conn, error) {
	d := net.Dialer{}
	if sport > 0 {
		d.LocalAddr = &net.TCPAddr{Port: sport}
	}
	network := "tcp4"
	if vip.Is6() {
		network = "tcp6"
	}
	return d.DialContext(ctx, network, netip.AddrPortFrom(vip, uint16(port)).String())
}

// sourcePort returns the source port of connection or flow i when the
// first is sport: 0 (the kernel's choice) if sport is 0, else sport+i.
func sourcePort(sport, i int) int {
	if sport == 0 {
		return 0
	}
	return sport + i
}

// readGreeting reads the server's greeting line and returns the name it
// gives.
func readGreeting(br *bufio.Reader) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return "", err
	}
	name, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), lab.Greeting)
	if !ok || name == "" {
		return "", fmt.Errorf("unexpected greeting %q", line)
	}
	return name, nil
}

// newChaCha returns the pseudo-random source of the bytes a client sends:
// keyed by the seed, the connection, the message number and a byte naming
// the command, so that each stream is reproducible and differs from the
// others.
func newChaCha(seed, conn, seq uint64, kind byte) *rand.ChaCha8 {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	binary.LittleEndian.PutUint64(key[8:], conn)
	binary.LittleEndian.PutUint64(key[16:], seq)
	key[24] = kind
	return rand.NewChaCha8(key)
}
