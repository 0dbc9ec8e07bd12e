//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/internal/lab"
)

func serveCmd(args []string, log zerolog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	name := fs.String("name", "", "server name, sent in greetings and UDP replies (required)")
	tcpSpec := fs.String("tcp", "7000-7010", "TCP ports: N, N-M, comma-separated; empty for none")
	udpSpec := fs.String("udp", "7000-7010", "UDP ports, like --tcp")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("--name is required")
	}
	tcpPorts, err := parsePorts(*tcpSpec)
	if err != nil {
		return fmt.Errorf("--tcp: %w", err)
	}
	udpPorts, err := parsePorts(*udpSpec)
	if err != nil {
		return fmt.Errorf("--udp: %w", err)
	}
	if len(tcpPorts)+len(udpPorts) == 0 {
		return errors.New("no ports to serve")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	s := newServer(*name, log)
	if err := s.listen(tcpPorts, udpPorts); err != nil {
		s.close()
		return err
	}
	log.Info().Str("name", *name).Str("tcp", *tcpSpec).Str("udp", *udpSpec).Msg("serving")
	s.serve()
	<-ctx.Done()
	s.close()
	log.Info().Str("name", *name).Msg("stopped")
	return nil
}

// server is the lab's echo server. Every socket is bound before any is
// served, so a client that connects to one port knows all are ready.
//
// The listeners and UDP sockets are owned by serve's goroutines once serve
// runs; mu guards conns and closed, which the connection goroutines and
// close share.
type server struct {
	name     string
	greeting []byte
	log      zerolog.Logger

	tcp []net.Listener
	udp []*net.UDPConn

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func newServer(name string, log zerolog.Logger) *server {
	return &server{
		name:     name,
		greeting: []byte(lab.Greeting + name + "\n"),
		log:      log,
		conns:    map[net.Conn]struct{}{},
	}
}

// listen binds every port: TCP and UDP on the IPv6 wildcard, dual stack
// (IPv4 arrives as ::ffff:a.b.c.d), or IPv4 only where IPv6 is off.
func (s *server) listen(tcpPorts, udpPorts []int) error {
	var lc net.ListenConfig
	for _, p := range udpPorts {
		c, err := lc.ListenPacket(context.Background(), "udp", fmt.Sprintf(":%d", p))
		if err != nil {
			return err
		}
		uc := c.(*net.UDPConn)
		s.udp = append(s.udp, uc)
		if err := recvDestination(uc); err != nil {
			return fmt.Errorf("udp port %d: %w", p, err)
		}
	}
	for _, p := range tcpPorts {
		ln, err := lc.Listen(context.Background(), "tcp", fmt.Sprintf(":%d", p))
		if err != nil {
			return err
		}
		s.tcp = append(s.tcp, ln)
	}
	return nil
}

func (s *server) serve() {
	for _, ln := range s.tcp {
		s.wg.Add(1)
		go s.acceptLoop(ln)
	}
	for _, c := range s.udp {
		s.wg.Add(1)
		go s.udpLoop(c)
	}
}

// close stops accepting, closes every socket and connection and waits (a
// bounded time) for the goroutines.
func (s *server) close() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	for _, ln := range s.tcp {
		ln.Close()
	}
	for _, c := range s.udp {
		c.Close()
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		s.log.Warn().Msg("connections still closing; exiting anyway")
	}
}

func (s *server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors or similar: back off, keep serving.
			s.log.Warn().Err(err).Msg("accept")
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.echo(c)
	}
}

// echo greets, then returns every byte until the client closes.
func (s *server) echo(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	if _, err := c.Write(s.greeting); err != nil {
		return
	}
	_, _ = io.Copy(c, c)
}

// udpLoop answers every datagram with the name, a space and the datagram,
// from the address the datagram was sent to (the VIP, not the server's own
// address: the client's socket is connected to the VIP).
func (s *server) udpLoop(c *net.UDPConn) {
	defer s.wg.Done()
	buf := make([]byte, 64<<10)
	oob := make([]byte, 256)
	reply := make([]byte, 0, len(s.name)+1+len(buf))
	for {
		n, oobn, _, from, err := c.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn().Err(err).Msg("udp read")
			continue
		}
		reply = append(append(append(reply[:0], s.name...), ' '), buf[:n]...)
		var soob []byte
		if dst, ok := destination(oob[:oobn]); ok {
			soob = sourceOOB(dst)
		}
		if _, _, err := c.WriteMsgUDPAddrPort(reply, soob, from); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Warn().Err(err).Stringer("to", from).Msg("udp reply")
		}
	}
}

// recvDestination asks the kernel to report each datagram's destination
// address (IP_PKTINFO / IPV6_PKTINFO; on a dual-stack socket IPV6_PKTINFO
// also covers IPv4, as a mapped address).
func recvDestination(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	v6 := c.LocalAddr().(*net.UDPAddr).IP.To4() == nil
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if v6 {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		} else {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		}
	}); err != nil {
		return err
	}
	return serr
}

// destination extracts the datagram's destination address from its control
// messages.
func destination(oob []byte) (netip.Addr, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 16:
			return netip.AddrFrom16([16]byte(m.Data[:16])), true
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= 12:
			// struct in_pktinfo: ifindex, spec_dst, addr (the header's destination).
			return netip.AddrFrom4([4]byte(m.Data[8:12])), true
		}
	}
	return netip.Addr{}, false
}

// sourceOOB is the control message that sends from addr: IPV6_PKTINFO for
// IPv6 and mapped IPv4 addresses (the kernel accepts it on IPv4 traffic of a
// dual-stack socket), IP_PKTINFO for plain IPv4 sockets.
func sourceOOB(addr netip.Addr) []byte {
	if addr.Is4() {
		return unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: addr.As4()})
	}
	return unix.PktInfo6(&unix.Inet6Pktinfo{Addr: addr.As16()})
}
