//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// maxListedFailures bounds the failures a report details; Reasons counts
// them all.
const maxListedFailures = 20

type tcpOptions struct {
	target
	conns    int
	parallel int
	bytes    int
	timeout  time.Duration
	sport    int    // first source port; 0: the kernel picks
	seed     uint64 // payload seed
}

func tcpCmd(args []string) error {
	fs := flag.NewFlagSet("tcp", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs, "connect to")
	var o tcpOptions
	fs.IntVar(&o.conns, "conns", 300, "connections to open")
	fs.IntVar(&o.parallel, "parallel", 16, "connections open at once")
	fs.IntVar(&o.bytes, "bytes", 4096, "pseudo-random bytes to send and verify per connection")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "limit for each connection, from dial to close")
	fs.IntVar(&o.sport, "sport", 0, "bind connection i to source port sport+i (0: kernel's ephemeral ports, which are distinct too)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the payloads")
	var err error
	if o.target, err = cf.parse(fs, args); err != nil {
		return err
	}
	switch {
	case o.conns < 1, o.parallel < 1, o.bytes < 0, o.timeout <= 0:
		return errors.New("--conns and --parallel must be positive, --bytes >= 0, --timeout > 0")
	case o.sport < 0 || o.sport > 0 && o.sport+o.conns-1 > 65535:
		return fmt.Errorf("--sport %d: ports sport..sport+conns-1 must fit in 1..65535", o.sport)
	}
	ctx, stop := runContext(0)
	defer stop()
	r := runTCP(ctx, o)
	if err := printReport(cf.out, r, func() { printTCP(os.Stdout, r, true) }); err != nil {
		return err
	}
	if r.Failed > 0 || r.DuplicateSourcePorts > 0 {
		return errFailed
	}
	return nil
}

// printReport prints r as JSON or calls text.
func printReport(format string, r any, text func()) error {
	switch format {
	case "json":
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case "text":
		text()
		return nil
	}
	return fmt.Errorf("-o %q: want text or json", format)
}

type connResult struct {
	server     string
	sourcePort int
	sent       int64
	verified   int64
	fail       *lab.ConnFailure
}

func runTCP(ctx context.Context, o tcpOptions) *lab.TCPReport {
	start := time.Now()
	results := make([]connResult, o.conns)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(o.parallel, o.conns) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i] = oneTCP(ctx, o, i)
			}
		}()
	}
	for i := range o.conns {
		next <- i
	}
	close(next)
	wg.Wait()

	r := &lab.TCPReport{
		VIP: o.vip.String(), Port: o.port, Conns: o.conns,
		Servers: map[string]int{}, Reasons: map[string]int{},
	}
	ports := map[int]bool{}
	made := 0
	for _, res := range results {
		if res.server != "" {
			r.Servers[res.server]++
		}
		if res.sourcePort != 0 {
			ports[res.sourcePort] = true
			made++
		}
		r.BytesSent += res.sent
		r.BytesVerified += res.verified
		if res.fail == nil {
			r.OK++
			continue
		}
		r.Failed++
		r.Reasons[res.fail.Stage+": "+res.fail.Error]++
		if len(r.Failures) < maxListedFailures {
			r.Failures = append(r.Failures, *res.fail)
		}
	}
	r.DistinctSourcePorts = len(ports)
	r.DuplicateSourcePorts = made - len(ports)
	r.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return r
}

// oneTCP runs connection i: connect, read the greeting, send the payload
// while reading the echo back, compare, close.
func oneTCP(ctx context.Context, o tcpOptions, i int) (res connResult) {
	fail := func(stage string, err error) connResult {
		res.fail = &lab.ConnFailure{Conn: i, SourcePort: res.sourcePort, Server: res.server, Stage: stage, Error: classify(err)}
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	c, err := dialVIP(ctx, o.vip, o.port, sourcePort(o.sport, i))
	if err != nil {
		return fail("dial", err)
	}
	defer c.Close()
	res.sourcePort = c.LocalAddr().(*net.TCPAddr).Port
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	stopOnCancel := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stopOnCancel()

	br := bufio.NewReader(c)
	name, err := readGreeting(br)
	if err != nil {
		return fail("greeting", err)
	}
	res.server = name

	payload := payloadFor(o.seed, i, o.bytes)
	werr := make(chan error, 1)
	go func() {
		n, err := c.Write(payload)
		res.sent = int64(n)
		werr <- err
	}()
	echo := make([]byte, len(payload))
	n, rerr := io.ReadFull(br, echo)
	if err := <-werr; err != nil {
		return fail("write", err)
	}
	if rerr != nil {
		return fail("echo", fmt.Errorf("%w after %d of %d bytes", rerr, n, len(payload)))
	}
	for j := range payload {
		if echo[j] != payload[j] {
			return fail("echo", fmt.Errorf("mismatch at byte %d", j))
		}
	}
	res.verified = int64(len(payload))
	if err := c.Close(); err != nil {
		return fail("close", err)
	}
	return res
}

// payloadFor returns connection i's pseudo-random payload.
func payloadFor(seed uint64, i, n int) []byte {
	b := make([]byte, n)
	_, _ = newChaCha(seed, uint64(i), 0, 0).Read(b)
	return b
}

// classify turns an error into a short reason that does not name the
// connection (so equal failures count together).
func classify(err error) string {
	var errno syscall.Errno
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "closed by peer"
	case errors.As(err, &errno):
		return errno.Error()
	}
	s := err.Error()
	if strings.HasPrefix(s, "mismatch") {
		return "mismatch"
	}
	return s
}

// printTCP prints the report, with the connections per server if perServer.
func printTCP(w io.Writer, r *lab.TCPReport, perServer bool) {
	fmt.Fprintf(w, "tcp %s: %d connections, %d ok, %d failed, %d of %d bytes verified, %d distinct source ports (%d reused), %.0f ms\n",
		netip.AddrPortFrom(netip.MustParseAddr(r.VIP), uint16(r.Port)), r.Conns, r.OK, r.Failed,
		r.BytesVerified, r.BytesSent, r.DistinctSourcePorts, r.DuplicateSourcePorts, r.DurationMS)
	total := 0
	for _, n := range r.Servers {
		total += n
	}
	for _, name := range sortedKeys(r.Servers) {
		if !perServer {
			break
		}
		fmt.Fprintf(w, "  %-8s %6d  %5.1f%%\n", name, r.Servers[name], 100*float64(r.Servers[name])/float64(max(total, 1)))
	}
	for _, reason := range sortedKeys(r.Reasons) {
		fmt.Fprintf(w, "  failed: %-40s %d\n", reason, r.Reasons[reason])
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "  conn %d (source port %d, server %q): %s: %s\n", f.Conn, f.SourcePort, f.Server, f.Stage, f.Error)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		// s2 before s10
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) < len(keys[j])
		}
		return keys[i] < keys[j]
	})
	return keys
}
