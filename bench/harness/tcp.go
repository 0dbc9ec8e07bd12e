//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// tcpResult is one real-TCP workload through one peer.
type tcpResult struct {
	Peer     string
	Workload string // "connections/s" or "throughput"
	Conns    int    // connections completed (verified)
	Failed   int
	Bytes    int64 // payload bytes verified (each crosses client -> server and back)
	Seconds  float64
	Use      usage
	Skipped  string
	Err      error
}

func (r *tcpResult) CPS() float64  { return safeDiv(float64(r.Conns), r.Seconds) }
func (r *tcpResult) Mbps() float64 { return safeDiv(float64(r.Bytes)*8/1e6, r.Seconds) }

const tcpPort = 7000

// startServers runs "iplab serve" on every server (TCP and UDP port 7000)
// and waits until each greets from the client's namespace. The sinks must be
// detached.
func (e *env) startServers(ctx context.Context) ([]*proc, error) { return e.startServersOn(ctx, -1) }

// startServersOn is startServers with every server pinned to cpu (none when
// cpu < 0).
func (e *env) startServersOn(ctx context.Context, cpu int) ([]*proc, error) {
	var ps []*proc
	for _, s := range e.t.servers {
		args := []string{filepath.Join(e.bin, "iplab"), "serve", "--name", s.role, "--tcp", fmt.Sprint(tcpPort), "--udp", fmt.Sprint(tcpPort)}
		if cpu >= 0 {
			args = append([]string{"taskset", "-c", fmt.Sprint(cpu)}, args...)
		}
		p, err := e.t.start(s.ns, "iplab-serve-"+s.role, e.logDir, args...)
		if err != nil {
			return ps, err
		}
		ps = append(ps, p)
	}
	for i, s := range e.t.servers {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := lab.WaitGreeting(wctx, e.t.client.ns, netip.AddrPortFrom(s.ip, tcpPort), s.role, ps[i].done)
		cancel()
		if err != nil {
			return ps, fmt.Errorf("server %s: %w", s.role, err)
		}
	}
	return ps, nil
}

// iplabTCP runs "iplab tcp" in the client's namespace against the VIP.
func (e *env) iplabTCP(ctx context.Context, conns, parallel, bytes int) (lab.TCPReport, error) {
	var rep lab.TCPReport
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", e.t.client.ns, filepath.Join(e.bin, "iplab"), "tcp",
		"--vip", e.t.vip.String(), "--port", fmt.Sprint(tcpPort), "--conns", fmt.Sprint(conns),
		"--parallel", fmt.Sprint(parallel), "--bytes", fmt.Sprint(bytes), "--timeout", "60s", "-o", "json")
	out, err := cmd.Output()
	if jerr := json.Unmarshal(out, &rep); jerr != nil {
		if err == nil {
			err = jerr
		}
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return rep, fmt.Errorf("iplab tcp: %v: %s", err, tail(stderr, 500))
	}
	return rep, nil // a report with failures is returned as measured
}

// tcpWorkloads measures connections per second (short connections: greeting
// and a 64-byte echo) and throughput (a few long connections echoing large
// payloads) through one peer, whose process (if any) is dut.
func (e *env) tcpWorkloads(ctx context.Context, peer string, dut func() []int, p params) []tcpResult {
	var out []tcpResult
	napis, err := e.t.placement(placeDUTCore)
	if err != nil {
		return []tcpResult{{Peer: peer, Workload: "connections/s", Err: err}}
	}
	measure := func(work string, conns, parallel, bytes int) tcpResult {
		r := tcpResult{Peer: peer, Workload: work}
		s, err := startSample(dut(), napis)
		if err != nil {
			r.Err = err
			return r
		}
		rep, err := e.iplabTCP(ctx, conns, parallel, bytes)
		use, _ := s.end()
		r.Use, r.Err = use, err
		r.Conns, r.Failed, r.Bytes, r.Seconds = rep.OK, rep.Failed, rep.BytesVerified, rep.DurationMS/1e3
		if r.Err == nil && rep.OK == 0 {
			r.Err = fmt.Errorf("no connection completed (%v)", rep.Reasons)
		}
		return r
	}
	// Calibrate on a short run, then size the measured run to last about
	// p.tcpDur.
	cal := measure("calibration", p.tcpCalConns, 16, 64)
	if cal.Err != nil {
		cal.Workload = "connections/s"
		return append(out, cal)
	}
	conns := int(min(max(cal.CPS()*p.tcpDur.Seconds(), 200), 30000))
	out = append(out, measure("connections/s", conns, 16, 64))

	const tpConns = 4
	cal = measure("calibration", tpConns, tpConns, 2<<20)
	if cal.Err != nil {
		cal.Workload = "throughput"
		return append(out, cal)
	}
	bytes := int(min(max(safeDiv(float64(cal.Bytes), cal.Seconds)*p.tcpDur.Seconds()/tpConns, 1<<20), 256<<20))
	out = append(out, measure("throughput", tpConns, tpConns, bytes))
	return out
}

// haproxyTCP measures HAProxy (TCP mode, one thread on the DUT's core,
// round-robin over the 16 servers) on the real-TCP workloads.
func (e *env) haproxyTCP(ctx context.Context, p params) []tcpResult {
	const peer = "HAProxy (mode tcp, 1 thread)"
	hp, err := exec.LookPath("haproxy")
	if err != nil {
		return []tcpResult{{Peer: peer, Workload: "connections/s", Skipped: "haproxy not installed (Debian package haproxy)"},
			{Peer: peer, Workload: "throughput", Skipped: "haproxy not installed (Debian package haproxy)"}}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "global\n  nbthread 1\n  maxconn 8000\n\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n\n")
	fmt.Fprintf(&b, "frontend fe\n  bind %s:%d\n  default_backend be\n\nbackend be\n  balance roundrobin\n", e.t.vip, tcpPort)
	for _, s := range e.t.servers {
		fmt.Fprintf(&b, "  server %s %s:%d\n", s.role, s.ip, tcpPort)
	}
	cfg := filepath.Join(e.out, "configs", "haproxy.cfg")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		return []tcpResult{{Peer: peer, Workload: "connections/s", Err: err}}
	}
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		return []tcpResult{{Peer: peer, Workload: "connections/s", Err: err}}
	}
	// HAProxy terminates the VIP: the DUT holds it (the servers hold it
	// too, on lo, but the client routes it to the DUT).
	lb := e.t.lb
	if err := ipBatch(lb.ns, fmt.Sprintf("addr add %s/32 dev lo\n", e.t.vip)); err != nil {
		return []tcpResult{{Peer: peer, Workload: "connections/s", Err: err}}
	}
	defer ipBatch(lb.ns, fmt.Sprintf("addr del %s/32 dev lo\n", e.t.vip))
	proc, err := e.t.start(lb.ns, "haproxy", e.logDir, "taskset", "-c", fmt.Sprint(dutCPU), hp, "-f", cfg, "-db")
	if err != nil {
		return []tcpResult{{Peer: peer, Workload: "connections/s", Err: err}}
	}
	defer proc.stop(5 * time.Second)
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := waitGreetingAny(wctx, e.t.client.ns, netip.AddrPortFrom(e.t.vip, tcpPort), proc.done); err != nil {
		return []tcpResult{{Peer: peer, Workload: "connections/s", Err: fmt.Errorf("haproxy not serving: %w; log %s", err, proc.log)}}
	}
	return e.tcpWorkloads(ctx, peer, func() []int { return []int{proc.pid()} }, p)
}

// waitGreetingAny waits until a connection to addr is greeted by any lab
// server.
func waitGreetingAny(ctx context.Context, ns string, addr netip.AddrPort, exited <-chan struct{}) error {
	for {
		c, err := lab.DialContext(ctx, ns, "tcp", addr.String())
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			buf := make([]byte, 64)
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), lab.Greeting) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-exited:
			return fmt.Errorf("exited")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ipfrontTCP measures ipfront (DSR, busy_poll=false) on the same workloads.
func (e *env) ipfrontTCP(ctx context.Context, p params) []tcpResult {
	c := defaultIPF(false, 1<<16)
	peer := "ipfront DSR (busy_poll=false)"
	ipf, err := e.startIPFront(ctx, "ipfront-tcp", c)
	if err != nil {
		return []tcpResult{{Peer: peer, Workload: "connections/s", Err: err}}
	}
	defer ipf.p.stop(10 * time.Second)
	res := e.tcpWorkloads(ctx, peer, func() []int { return []int{ipf.p.pid()} }, p)
	return res
}

// latency is the round-trip time distribution of UDP ping-pong.
type latency struct {
	Key      string // "direct", "linux", "netdev", "xskfwd", "ipfront-busy", "ipfront-nobusy"
	Place    place  // where the DUT's kernel work ran (placeDUTCore or placeRPS)
	Path     string
	N        int
	Lost     int
	P50, P99 time.Duration
	// DirectP50 and DirectP99 are those of the direct pings interleaved
	// with these (see pingPong).
	DirectP50, DirectP99 time.Duration
	Skipped              string
	Err                  error
}

// pingPong sends n 64-byte datagrams to the VIP's port 7000 from the client
// (through the DUT), one at a time, each waiting for its echo, and as many to
// server 1's own address (direct, on the same bridge), alternating the two
// and which goes first: both sets of round trips are taken in the same
// moments, so background load on the machine falls on both alike and the
// difference of their percentiles is what the DUT adds.
func (e *env) pingPong(ctx context.Context, key, path string, n int) latency {
	l := latency{Key: key, Path: path, N: n}
	via, err := lab.DialContext(ctx, e.t.client.ns, "udp", netip.AddrPortFrom(e.t.vip, tcpPort).String())
	if err != nil {
		l.Err = err
		return l
	}
	defer via.Close()
	direct, err := lab.DialContext(ctx, e.t.client.ns, "udp", netip.AddrPortFrom(e.t.servers[0].ip, tcpPort).String())
	if err != nil {
		l.Err = err
		return l
	}
	defer direct.Close()
	msg := make([]byte, 64)
	buf := make([]byte, 256)
	// ping sends msg on c and waits for its echo; 0 if none came.
	ping := func(c net.Conn) (time.Duration, error) {
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		for {
			k, err := c.Read(buf)
			if err != nil {
				return 0, nil
			}
			// iplab serve answers "<name> " + the datagram.
			if k >= len(msg) && string(buf[k-len(msg):k]) == string(msg) {
				return time.Since(t0), nil
			}
		}
	}
	var rtts, drtts []time.Duration
	warm := min(100, n/10)
	silent := 0 // datagrams in a row without a reply: a broken path fails fast, not after n timeouts
	for i := 0; i < n+warm; i++ {
		if ctx.Err() != nil {
			l.Err = ctx.Err()
			return l
		}
		msg[0], msg[1] = byte(i), byte(i>>8)
		var d, dd time.Duration
		var err error
		if i%2 == 0 {
			if d, err = ping(via); err == nil {
				msg[2] = 1
				dd, err = ping(direct)
			}
		} else {
			msg[2] = 1
			if dd, err = ping(direct); err == nil {
				msg[2] = 0
				d, err = ping(via)
			}
		}
		msg[2] = 0
		if err != nil {
			l.Err = err
			return l
		}
		if d == 0 {
			if i >= warm {
				l.Lost++
			}
			if silent++; silent == 20 {
				l.Err = fmt.Errorf("no reply to 20 datagrams in a row (after %d sent)", i+1)
				return l
			}
			continue
		}
		silent = 0
		if i >= warm && dd > 0 {
			rtts, drtts = append(rtts, d), append(drtts, dd)
		}
	}
	if len(rtts) == 0 {
		l.Err = fmt.Errorf("no reply to %d datagrams", n)
		return l
	}
	l.P50, l.P99 = percentiles(rtts)
	l.DirectP50, l.DirectP99 = percentiles(drtts)
	if l.Lost > n/100 {
		l.Err = fmt.Errorf("%d of %d datagrams lost", l.Lost, n)
	}
	return l
}

// percentiles returns the median and the 99th percentile of d (sorted in
// place).
func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2], d[min(len(d)-1, len(d)*99/100)]
}

// Added50 and Added99 are what the DUT added to the direct path's p50 and
// p99, measured in the same moments.
func (l *latency) Added50() time.Duration { return l.P50 - l.DirectP50 }
func (l *latency) Added99() time.Duration { return l.P99 - l.DirectP99 }

// latencyPeer is one path of the latency step: how to set it up (the
// returned function undoes it), with the client routing the VIP to the DUT.
type latencyPeer struct {
	key, path string
	skip      func() string // why the peer cannot run here, or ""
	on        func(ctx context.Context) (undo func() error, err error)
}

// latencies measures ping-pong through every forwarding peer of the DUT,
// each against the direct path to server 1 (see pingPong): Linux forwarding,
// nftables netdev DSR, xskfwd, and ipfront with busy_poll on and off, in
// each placement of places (the forwarding table's, the one-core-each
// table's), the peers of one placement one after another.
func (e *env) latencies(ctx context.Context, n int, places []place) []latency {
	var out []latency
	if err := ipBatch(e.t.client.ns, fmt.Sprintf("route replace %s/32 via %s\n", e.t.vip, e.t.lb.ip)); err != nil {
		return append(out, latency{Key: "linux", Path: "through the DUT", Err: err})
	}
	ipf := func(busy bool) func(ctx context.Context) (func() error, error) {
		return func(ctx context.Context) (func() error, error) {
			ipf, err := e.startIPFront(ctx, fmt.Sprintf("ipfront-latency-busy%v", busy), defaultIPF(busy, 1<<16))
			if err != nil {
				return nil, err
			}
			return func() error { return ipf.p.stop(10 * time.Second) }, nil
		}
	}
	peers := []latencyPeer{
		{"linux", "Linux IP forwarding", nil, func(context.Context) (func() error, error) {
			undo, err := e.linuxForwardOn()
			if err != nil {
				return nil, err
			}
			return func() error { undo(); return nil }, nil
		}},
		{"netdev", "nftables netdev ingress L2 DSR", nftMissing, func(context.Context) (func() error, error) {
			undo, err := e.nftNetdevOn()
			if err != nil {
				return nil, err
			}
			return func() error { undo(); return nil }, nil
		}},
		{"xskfwd", "raw AF_XDP forwarder (xskfwd, busy_poll=true)", nil, func(ctx context.Context) (func() error, error) {
			p, err := e.startXskfwd(ctx, "xskfwd-latency", defaultIPF(true, 0))
			if err != nil {
				return nil, err
			}
			return func() error { return p.stop(5 * time.Second) }, nil
		}},
		{"ipfront-busy", "ipfront (busy_poll=true)", nil, ipf(true)},
		{"ipfront-nobusy", "ipfront (busy_poll=false)", nil, ipf(false)},
	}
	for _, pl := range places {
		for _, pr := range peers {
			if pr.skip != nil {
				if why := pr.skip(); why != "" {
					out = append(out, latency{Key: pr.key, Place: pl, Path: pr.path, Skipped: why})
					continue
				}
			}
			undo, err := pr.on(ctx)
			if err != nil {
				out = append(out, latency{Key: pr.key, Place: pl, Path: pr.path, Err: err})
				continue
			}
			// The DUT's NAPI threads exist once its XDP program (if any) is
			// attached: place them now.
			if _, err := e.t.placement(pl); err != nil {
				out = append(out, latency{Key: pr.key, Place: pl, Path: pr.path, Err: err})
				undo()
				continue
			}
			l := e.pingPong(ctx, pr.key, pr.path, n)
			l.Place = pl
			if err := undo(); err != nil && l.Err == nil {
				l.Err = err
			}
			out = append(out, l)
		}
	}
	return out
}
