package health

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wait is how long a test waits for an event whose timing it does not check.
const wait = 5 * time.Second

// recorder collects a Monitor's events.
type recorder struct{ ch chan Event }

func newMonitor(t *testing.T) (*Monitor, *recorder) {
	t.Helper()
	r := &recorder{ch: make(chan Event, 1024)}
	m := NewMonitor(func(e Event) {
		select {
		case r.ch <- e:
		default:
			panic("health test: event recorder full")
		}
	})
	t.Cleanup(m.Close)
	return m, r
}

// next returns the next event, failing the test if none arrives within wait.
func (r *recorder) next(t *testing.T) Event {
	t.Helper()
	select {
	case e := <-r.ch:
		return e
	case <-time.After(wait):
		t.Fatalf("no event within %v", wait)
		return Event{}
	}
}

// quiet fails the test if an event arrives within d.
func (r *recorder) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case e := <-r.ch:
		t.Fatalf("unexpected event %+v", e)
	case <-time.After(d):
	}
}

// tcpServer accepts and closes connections, counting them.
type tcpServer struct {
	ln      net.Listener
	accepts atomic.Int64
	wg      sync.WaitGroup
}

// listenTCP listens on addr ("127.0.0.1:0" for any port) until the test ends.
func listenTCP(t *testing.T, addr string) *tcpServer {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	s := &tcpServer{ln: ln}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			c.Close()
		}
	})
	t.Cleanup(s.close)
	return s
}

func (s *tcpServer) addrPort() netip.AddrPort {
	return s.ln.Addr().(*net.TCPAddr).AddrPort()
}

func (s *tcpServer) close() {
	s.ln.Close()
	s.wg.Wait()
}

// closedPort returns a loopback address and port nothing listens on.
func closedPort(t *testing.T) netip.AddrPort {
	t.Helper()
	s := listenTCP(t, "127.0.0.1:0")
	s.close()
	return s.addrPort()
}

func mustAddrPort(t *testing.T, hostport string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

// checkerOf returns m's checker for (set, addr), or nil.
func checkerOf(m *Monitor, set string, addr netip.Addr) *checker {
	return (*m.view.Load())[key{set, addr}]
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func wantState(t *testing.T, m *Monitor, set string, addr netip.Addr, wantUp, wantKnown bool) {
	t.Helper()
	if up, known := m.State(set, addr); up != wantUp || known != wantKnown {
		t.Errorf("State(%q, %v) = %v, %v, want %v, %v", set, addr, up, known, wantUp, wantKnown)
	}
}
