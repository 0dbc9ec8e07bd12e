//go:build linux

package e2e

// Helpers of the file-transfer tests (persist_test.go): a lab whose servers
// serve the transfer ports and whose client has more addresses, and clients
// made from the test process itself inside the client's namespace: a TCP
// control connection (the server's greeting names it, every echo is
// checked) and UDP data flows (each reply names the server), each from a
// chosen address and source port.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// ftPorts are the ports the lab's servers serve in the file-transfer tests,
// TCP and UDP alike: Aspera's 33001 and the ranges the tests own.
const ftPorts = "33001-33004,33010-33039"

// ftTimeout bounds one file-transfer test, set-up included.
const ftTimeout = 90 * time.Second

// startFT builds a lab with n servers (running "iplab serve" on ftPorts)
// and the given VIPs, starts ipfront with the [dataplane], [log] and [api]
// of the slow-path tests followed by sets (TOML), and waits until it is
// ready and every server of the sets is resolved. servers lists the roles
// the sets configure, by name.
func startFT(t *testing.T, n int, vips []netip.Addr, servers []spServer, sets string) *spEnv {
	t.Helper()
	requireEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), ftTimeout)
	t.Cleanup(cancel)
	l, err := lab.New(lab.UniquePrefix("e2e"), n, lab.WithVIPs(vips...))
	if err != nil {
		t.Fatal(err)
	}
	closeAtEnd(t, l)
	e := newSPEnv(t, ctx, l, vips[0])
	e.cfg = spConfig{Servers: servers}
	e.cfgPath = filepath.Join(t.TempDir(), "ipfront.toml")
	for _, s := range l.Servers() {
		h := s
		w := &lab.PrefixWriter{W: testLog{t}, Prefix: h.Role + " | ", Mu: &e.outMu}
		p, err := l.StartProc(h.NS, h.Role, w, iplabBin, "serve", "--name", h.Role, "--tcp", ftPorts, "--udp", ftPorts)
		if err != nil {
			t.Fatal(err)
		}
		e.srvMu.Lock()
		e.servers[h.Role] = p
		e.srvMu.Unlock()
		if err := lab.WaitGreeting(ctx, l.Client().NS, netip.AddrPortFrom(h.IPv4, 33001), h.Role, p.Done()); err != nil {
			t.Fatalf("server %s: %v", h.Role, err)
		}
	}
	e.writeFile(ftConfig(sets))
	e.log = &procLog{t: t, prefix: "ipfront | ", mu: &e.outMu, notify: make(chan struct{})}
	e.ipf, err = l.StartProc(l.LB().NS, "ipfront", e.log, ipfrontBin, "run", "--config", e.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.ipf.Stop(10 * time.Second); err != nil {
			t.Errorf("ipfront did not exit cleanly on SIGTERM: %v", err)
		}
	})
	if err := lab.WaitReady(ctx, l.LB().NS, apiURL+"/v1/status", e.ipf.Done()); err != nil {
		t.Fatalf("ipfront not ready: %v", err)
	}
	e.waitFor(10*time.Second, "servers resolved", func() (bool, string) {
		var r apiServers
		e.api("/v1/servers", &r)
		for _, s := range r.Servers {
			if !s.Resolved {
				return false, fmt.Sprintf("%s/%s not resolved", s.Set, s.Name)
			}
		}
		return len(r.Servers) > 0, "no servers"
	})
	logCountersAtCleanup(t, l.LB().NS, apiURL, false)
	return e
}

// ftConfig is a file-transfer test's configuration: the fixed [dataplane],
// [log] and [api] tables, then sets.
func ftConfig(sets string) string {
	return dataplaneTOML([]string{lab.LBIfname}, 65536) + "\n[log]\nformat = \"json\"\n" + sets
}

// ftServers returns [[target_set.server]] tables for lab servers s1, s2,
// ... with the given weights (role -> weight; roles left out are not
// listed), by address of the family of v6, each with the owned_ports in
// owned (role -> TOML list body).
func ftServers(v6 bool, weights map[string]int, owned map[string]string) string {
	var b strings.Builder
	for i := 1; i <= lab.MaxServers; i++ {
		role := "s" + strconv.Itoa(i)
		w, ok := weights[role]
		if !ok {
			continue
		}
		addr := lab.ServerIPv4(i)
		if v6 {
			addr = lab.ServerIPv6(i)
		}
		fmt.Fprintf(&b, "  [[target_set.server]]\n  name = %q\n  address = %q\n  weight = %d\n", role, addr, w)
		if o := owned[role]; o != "" {
			fmt.Fprintf(&b, "  owned_ports = [%s]\n", o)
		}
	}
	return b.String()
}

// addClientAddrs gives the client's interface more addresses (a /32 or
// /128 each, without duplicate address detection): the test's clients.
func (e *spEnv) addClientAddrs(addrs ...netip.Addr) {
	e.t.Helper()
	var b strings.Builder
	for _, a := range addrs {
		fmt.Fprintf(&b, "addr add %s dev %s", netip.PrefixFrom(a, a.BitLen()), lab.ClientIfname)
		if a.Is6() {
			b.WriteString(" nodad")
		}
		b.WriteString("\n")
	}
	cmd := e.lab.CommandContext(e.ctx, e.lab.Client().NS, "ip", "-batch", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("client addresses: ip -batch: %v: %s", err, out)
	}
}

// ftIO bounds one exchange of a control connection or data flow.
const ftIO = 3 * time.Second

// ctlConn is a TCP control connection through the VIP: server is the name
// the server greeted it with.
type ctlConn struct {
	name   string // "client:port -> vip:port", for messages
	c      net.Conn
	br     *bufio.Reader
	server string
	n      int // echoes so far
}

// control connects from src:sport to vip:port in the client's namespace and
// reads the server's greeting.
func (e *spEnv) control(src netip.Addr, sport int, vip netip.Addr, port int) *ctlConn {
	e.t.Helper()
	cc, err := e.dialControl(src, sport, vip, port)
	if err != nil {
		e.t.Fatal(err)
	}
	return cc
}

// dialControl is control for other goroutines than the test's: it returns
// what went wrong.
func (e *spEnv) dialControl(src netip.Addr, sport int, vip netip.Addr, port int) (*ctlConn, error) {
	cc := &ctlConn{name: fmt.Sprintf("tcp %s -> %s", netip.AddrPortFrom(src, uint16(sport)), netip.AddrPortFrom(vip, uint16(port)))}
	err := lab.Do(e.lab.Client().NS, func() error {
		ctx, cancel := context.WithTimeout(e.ctx, ftIO)
		defer cancel()
		d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(src, uint16(sport)))}
		var err error
		cc.c, err = d.DialContext(ctx, "tcp", netip.AddrPortFrom(vip, uint16(port)).String())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: connect: %w", cc.name, err)
	}
	e.t.Cleanup(func() { cc.c.Close() })
	cc.br = bufio.NewReader(cc.c)
	cc.c.SetDeadline(time.Now().Add(ftIO))
	line, err := cc.br.ReadString('\n')
	name, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), lab.Greeting)
	if err != nil || !ok || name == "" {
		return nil, fmt.Errorf("%s: greeting %q, %v", cc.name, line, err)
	}
	cc.server = name
	return cc, nil
}

// echo sends a line on the control connection and checks that exactly it
// comes back; it returns what went wrong, or nil.
func (cc *ctlConn) echo() error {
	cc.n++
	msg := fmt.Sprintf("control %s message %d\n", cc.name, cc.n)
	cc.c.SetDeadline(time.Now().Add(ftIO))
	if _, err := cc.c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("%s: write: %w", cc.name, err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(cc.br, got); err != nil {
		return fmt.Errorf("%s: echo: %w", cc.name, err)
	}
	if string(got) != msg {
		return fmt.Errorf("%s: echo %q, want %q", cc.name, got, msg)
	}
	return nil
}

// mustEcho fails the test unless an echo on cc succeeds.
func (e *spEnv) mustEcho(cc *ctlConn) {
	e.t.Helper()
	if err := cc.echo(); err != nil {
		e.t.Fatal(err)
	}
}

// udpFlow is a UDP data flow through the VIP from one source port.
type udpFlow struct {
	name string
	c    *net.UDPConn
	n    int
}

// udp opens a data flow from src:sport to vip:port in the client's
// namespace.
func (e *spEnv) udp(src netip.Addr, sport int, vip netip.Addr, port int) *udpFlow {
	e.t.Helper()
	f, err := e.openUDP(src, sport, vip, port)
	if err != nil {
		e.t.Fatal(err)
	}
	return f
}

// openUDP is udp for other goroutines than the test's.
func (e *spEnv) openUDP(src netip.Addr, sport int, vip netip.Addr, port int) (*udpFlow, error) {
	f := &udpFlow{name: fmt.Sprintf("udp %s -> %s", netip.AddrPortFrom(src, uint16(sport)), netip.AddrPortFrom(vip, uint16(port)))}
	err := lab.Do(e.lab.Client().NS, func() error {
		var err error
		f.c, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, uint16(sport))),
			net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip, uint16(port))))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.name, err)
	}
	e.t.Cleanup(func() { f.c.Close() })
	return f, nil
}

// ask sends one datagram and returns the name of the server that answered
// it (the reply is "<name> <datagram>"). A datagram unanswered within a
// second is sent again, twice at most: a lost datagram is not what the
// tests are about, a wrong server is.
func (f *udpFlow) ask() (string, error) {
	f.n++
	msg := fmt.Sprintf("data %s datagram %d", f.name, f.n)
	buf := make([]byte, 2048)
	for try := 0; try < 3; try++ {
		if _, err := f.c.Write([]byte(msg)); err != nil {
			return "", fmt.Errorf("%s: write: %w", f.name, err)
		}
		f.c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			n, err := f.c.Read(buf)
			if err != nil {
				break // timeout: send again
			}
			name, body, ok := strings.Cut(string(buf[:n]), " ")
			if ok && body == msg {
				return name, nil
			}
			// A late reply to an earlier datagram: read on.
		}
	}
	return "", fmt.Errorf("%s: no reply to %q", f.name, msg)
}

// mustAsk fails the test unless a datagram of f is answered, and returns
// the server's name.
func (e *spEnv) mustAsk(f *udpFlow) string {
	e.t.Helper()
	s, err := f.ask()
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// apiPersistence is GET /v1/persistence, declared here so that a change of
// the wire format breaks these tests.
type apiPersistence struct {
	Counters struct {
		Made      uint64 `json:"records_made"`
		Found     uint64 `json:"records_found"`
		Full      uint64 `json:"records_full"`
		Expired   uint64 `json:"records_expired"`
		OwnedPort uint64 `json:"owned_port"`
	} `json:"counters"`
	Records []struct {
		Group     string   `json:"group"`
		Sets      []string `json:"sets"`
		Client    string   `json:"client"`
		Server    string   `json:"server"`
		Address   string   `json:"address"`
		Age       int      `json:"age_seconds"`
		ExpiresIn int      `json:"expires_in_seconds"`
		Workers   int      `json:"workers"`
		Flows     int      `json:"flows"`
	} `json:"records"`
}

// persistence returns GET /v1/persistence with the query (such as
// "?set=x").
func (e *spEnv) persistence(query string) apiPersistence {
	e.t.Helper()
	var p apiPersistence
	e.api("/v1/persistence"+query, &p)
	return p
}

// counters returns GET /v1/counters' totals that the tests compare.
type assocTotals struct {
	New        uint64 `json:"new_associations"`
	Reselected uint64 `json:"reselected"`
	Expired    uint64 `json:"expired"`
}

func (e *spEnv) assocTotals() assocTotals {
	e.t.Helper()
	var c assocTotals
	e.api("/v1/counters", &c)
	return c
}

// assocTotalsAtLeast waits until the published counters show at least n
// associations made and returns them: a worker publishes its counters just
// after it transmits, so an answer can reach the client a moment before the
// association that carried it shows in /v1/counters.
func (e *spEnv) assocTotalsAtLeast(n uint64) assocTotals {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := e.assocTotals()
		if c.New >= n || time.Now().After(deadline) {
			return c
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// clientAddrs returns n client addresses: prefix followed by first,
// first+1, ... in decimal.
func clientAddrs(prefix string, first, n int) []netip.Addr {
	out := make([]netip.Addr, n)
	for i := range out {
		out[i] = netip.MustParseAddr(prefix + strconv.Itoa(first+i))
	}
	return out
}
