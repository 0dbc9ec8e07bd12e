//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

const maxListedErrors = 20

type udpOptions struct {
	target
	flows    int
	packets  int
	parallel int
	size     int
	timeout  time.Duration
	sport    int
	seed     uint64
}

func udpCmd(args []string) error {
	fs := flag.NewFlagSet("udp", flag.ContinueOnError)
	var cf clientFlags
	cf.register(fs, "send to")
	var o udpOptions
	fs.IntVar(&o.flows, "flows", 50, "flows: one socket, so one source port, each")
	fs.IntVar(&o.packets, "packets", 20, "datagrams per flow, each waiting for its reply")
	fs.IntVar(&o.parallel, "parallel", 16, "flows running at once")
	fs.IntVar(&o.size, "size", 64, "datagram size in bytes (at least 32)")
	fs.DurationVar(&o.timeout, "timeout", time.Second, "wait this long for each reply before counting it lost")
	fs.IntVar(&o.sport, "sport", 0, "bind flow i to source port sport+i (0: kernel's choice)")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the payloads")
	var err error
	if o.target, err = cf.parse(fs, args); err != nil {
		return err
	}
	switch {
	case o.flows < 1, o.packets < 1, o.parallel < 1, o.timeout <= 0:
		return errors.New("--flows, --packets and --parallel must be positive, --timeout > 0")
	case o.size < 32 || o.size > 60000:
		return fmt.Errorf("--size %d: want 32..60000", o.size)
	case o.sport < 0 || o.sport > 0 && o.sport+o.flows-1 > 65535:
		return fmt.Errorf("--sport %d: ports sport..sport+flows-1 must fit in 1..65535", o.sport)
	}
	ctx, stop := runContext(0)
	defer stop()
	r := runUDP(ctx, o)
	if err := printReport(cf.out, r, func() { printUDP(os.Stdout, r) }); err != nil {
		return err
	}
	if r.Failed() {
		return errFailed
	}
	return nil
}

type flowResult struct {
	servers    []string // distinct, in the order they first answered
	sent       int
	replies    int
	lost       int
	mismatched int
	err        error
}

func runUDP(ctx context.Context, o udpOptions) *lab.UDPReport {
	start := time.Now()
	r := &lab.UDPReport{VIP: o.vip.String(), Port: o.port, Flows: o.flows, Packets: o.packets, Servers: map[string]int{}}
	addError := func(err error) {
		if len(r.Errors) < maxListedErrors {
			r.Errors = append(r.Errors, err.Error())
		}
	}

	// Every socket stays open until all flows are done, so no two flows
	// share a source port.
	network := "udp4"
	if o.vip.Is6() {
		network = "udp6"
	}
	raddr := net.UDPAddrFromAddrPort(netip.AddrPortFrom(o.vip, uint16(o.port)))
	conns := make([]*net.UDPConn, o.flows)
	ports := map[int]bool{}
	for i := range conns {
		var laddr *net.UDPAddr
		if sp := sourcePort(o.sport, i); sp > 0 {
			laddr = &net.UDPAddr{Port: sp}
		}
		c, err := net.DialUDP(network, laddr, raddr)
		if err != nil {
			addError(fmt.Errorf("flow %d: %w", i, err))
			continue
		}
		defer c.Close()
		conns[i] = c
		ports[c.LocalAddr().(*net.UDPAddr).Port] = true
	}
	r.DistinctSourcePorts = len(ports)

	results := make([]flowResult, o.flows)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(o.parallel, o.flows) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if conns[i] != nil {
					results[i] = oneFlow(ctx, o, i, conns[i])
				}
			}
		}()
	}
	for i := range o.flows {
		next <- i
	}
	close(next)
	wg.Wait()

	for i, res := range results {
		if conns[i] == nil {
			continue
		}
		r.Sent += res.sent
		r.Replies += res.replies
		r.Lost += res.lost
		r.Mismatched += res.mismatched
		switch {
		case len(res.servers) == 0:
			r.SilentFlows++
		case len(res.servers) > 1:
			r.MultiServerFlows++
			addError(fmt.Errorf("flow %d answered by %v", i, res.servers))
		}
		if len(res.servers) > 0 {
			r.Servers[res.servers[0]]++
		}
		if res.err != nil {
			addError(fmt.Errorf("flow %d: %w", i, res.err))
		}
	}
	r.DurationMS = float64(time.Since(start).Microseconds()) / 1000
	return r
}

// oneFlow sends the flow's datagrams one at a time, each waiting for its
// reply (or the timeout), and records which servers answered.
func oneFlow(ctx context.Context, o udpOptions, i int, c *net.UDPConn) (res flowResult) {
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	buf := make([]byte, o.size+256)
	fill := payloadFor(o.seed, i, o.size)
	for seq := range o.packets {
		if ctx.Err() != nil {
			res.err = ctx.Err()
			return res
		}
		// "flow I seq S " then pseudo-random bytes: a reply names its
		// datagram, so a late reply to an earlier one is recognised.
		tag := []byte("flow " + strconv.Itoa(i) + " seq " + strconv.Itoa(seq) + " ")
		payload := append(tag, fill[min(len(tag), len(fill)):]...)
		if _, err := c.Write(payload); err != nil {
			res.err = err
			return res
		}
		res.sent++
		c.SetReadDeadline(time.Now().Add(o.timeout))
		for {
			n, err := c.Read(buf)
			if err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					res.err = err
					return res
				}
				res.lost++
				break
			}
			name, body, ok := bytes.Cut(buf[:n], []byte(" "))
			if ok && bytes.Equal(body, payload) {
				res.replies++
				res.addServer(string(name))
				break
			}
			if ok && bytes.HasPrefix(body, []byte("flow "+strconv.Itoa(i)+" seq ")) && !bytes.HasPrefix(body, tag) {
				continue // a late reply to an earlier datagram, counted lost already
			}
			res.mismatched++
		}
	}
	return res
}

func (f *flowResult) addServer(name string) {
	for _, s := range f.servers {
		if s == name {
			return
		}
	}
	f.servers = append(f.servers, name)
}

func printUDP(w io.Writer, r *lab.UDPReport) {
	fmt.Fprintf(w, "udp %s: %d flows x %d datagrams, %d sent, %d replies, %d lost, %d mismatched, %d flows on more than one server, %d silent flows, %.0f ms\n",
		netip.AddrPortFrom(netip.MustParseAddr(r.VIP), uint16(r.Port)), r.Flows, r.Packets, r.Sent, r.Replies,
		r.Lost, r.Mismatched, r.MultiServerFlows, r.SilentFlows, r.DurationMS)
	for _, name := range sortedKeys(r.Servers) {
		fmt.Fprintf(w, "  %-8s %4d flows\n", name, r.Servers[name])
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
}
