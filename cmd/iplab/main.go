//go:build linux

// Command iplab runs ipfront's network-namespace lab (internal/lab) and the
// programs on it: echo servers, TCP and UDP clients that check where their
// traffic went, and the demo that puts ipfront in front of them.
//
// Reports go to stdout (human tables, or JSON with -o json); logs go to
// stderr.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

const usage = `usage: iplab <command> [flags]

commands:
  serve  --name s1 --tcp 7000-7010 --udp 7000-7010
         echo server: TCP greets with "ipfront-lab <name>" then echoes;
         UDP answers each datagram with "<name> " and the datagram
  tcp    --vip ADDR --port 7000 --conns 300 --parallel 16 --bytes 4096 [-o json]
         open connections, verify every echoed byte, count them per server
  udp    --vip ADDR --port 7000 --flows 50 --packets 20 [-o json]
         one socket per flow; check every flow stays on one server
  hold   --vip ADDR --port 7000 --conns 20 --interval 50ms --bytes 64 [--duration D] [-o json]
         long-lived connections echoing a message every interval until
         SIGTERM/SIGINT (or --duration); reports per connection its server,
         echoes verified and whether and when it failed (reset, eof, timeout);
         -o json prints a "ready" report once connected, a "snapshot" at each
         SIGUSR1 and a "final" one
  load   --vip ADDR --port 7000 [--rate BYTES/S] [--duration D] [-o json]
         one connection sending a stream as fast as allowed, every echoed
         byte checked; "ready" and "final" reports like hold
  up     --prefix demo --servers 3 [--serve]
         build a lab and leave it running (namespaces <prefix>-sw, -lb, -c, -s1..)
  down   --prefix demo
         delete that lab
  demo   --config configs/demo.toml --ipfront bin/ipfront --conns 300
         build a lab, run ipfront and the servers, drive traffic through the
         VIP, print the spread and ipfront's counters, tear everything down

Run "iplab <command> -h" for a command's flags. tcp, udp, hold and load run
in the current network namespace: "ip netns exec <prefix>-c iplab tcp ...".
`

// errFailed marks a run that completed but found failures (already
// reported); main exits 1 without printing it again.
var errFailed = errors.New("failures found")

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	log := zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly, NoColor: !isTerminal(os.Stderr)}).
		With().Timestamp().Str("cmd", os.Args[1]).Logger()
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "serve":
		err = serveCmd(args, log)
	case "tcp":
		err = tcpCmd(args)
	case "udp":
		err = udpCmd(args)
	case "hold":
		err = holdCmd(args)
	case "load":
		err = loadCmd(args)
	case "up":
		err = upCmd(args, log)
	case "down":
		err = downCmd(args, log)
	case "demo":
		err = demoCmd(args, log)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "iplab: unknown command %q\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.Is(err, errFailed):
		os.Exit(1)
	default:
		fmt.Fprintf(os.Stderr, "iplab %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// parseFlags parses args into fs and refuses positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// parsePorts parses "7000-7010", "7000" or a comma-separated list of both
// into the ports they name, in order, without duplicates.
func parsePorts(s string) ([]int, error) {
	var ports []int
	seen := map[int]bool{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := parsePort(lo)
		if err != nil {
			return nil, err
		}
		b := a
		if isRange {
			if b, err = parsePort(hi); err != nil {
				return nil, err
			}
			if b < a {
				return nil, fmt.Errorf("port range %q: end before start", part)
			}
		}
		for p := a; p <= b; p++ {
			if !seen[p] {
				seen[p] = true
				ports = append(ports, p)
			}
		}
	}
	return ports, nil
}

func parsePort(s string) (int, error) {
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %q: want 1..65535", s)
	}
	return p, nil
}
