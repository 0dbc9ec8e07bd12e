//go:build linux

package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/internal/netnstest"
	"github.com/ipfront/ipfront/internal/nsutil"
)

// newLab builds a lab for t and closes it at cleanup.
func newLab(t *testing.T, servers int, opts ...Option) *Lab {
	t.Helper()
	netnstest.RequireRoot(t)
	l, err := New(UniquePrefix("labtest"), servers, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return l
}

func exists(ns string) bool {
	_, err := os.Stat(nsutil.Dir + "/" + ns)
	return err == nil
}

func TestNewBuildsTopology(t *testing.T) {
	netnstest.RequireRoot(t)
	start := time.Now()
	l := newLab(t, 3)
	t.Logf("New took %v", time.Since(start)) // how long is a benchmark's question, not a test's

	for _, ns := range append([]string{l.Switch()}, nsNames(l.Hosts())...) {
		if !exists(ns) {
			t.Errorf("namespace %s missing", ns)
		}
	}
	out := run(t, l, l.Switch(), "ip", "-br", "link", "show", "master", BridgeName)
	for _, h := range l.Hosts() {
		if !strings.Contains(out, "p-"+h.Role+"@") {
			t.Errorf("bridge ports:\n%s\nwant p-%s", out, h.Role)
		}
	}

	for _, h := range l.Hosts() {
		addrs := run(t, l, h.NS, "ip", "-br", "addr", "show", "dev", h.Ifname)
		for _, want := range []string{h.IPv4.String() + "/24", h.IPv6.String() + "/64", "UP"} {
			if !strings.Contains(addrs, want) {
				t.Errorf("%s %s: %q, want %s", h.NS, h.Ifname, addrs, want)
			}
		}
		if strings.Contains(addrs, "tentative") {
			t.Errorf("%s %s: %q: address still in DAD", h.NS, h.Ifname, addrs)
		}
		link := run(t, l, h.NS, "ip", "-br", "link", "show", "dev", h.Ifname)
		if !strings.Contains(link, h.MAC.String()) {
			t.Errorf("%s %s: %q, want MAC %s", h.NS, h.Ifname, link, h.MAC)
		}
		if got := sysctl(t, h.NS, "net.ipv6.conf."+h.Ifname+".accept_dad"); got != "0" {
			t.Errorf("%s %s accept_dad = %s, want 0", h.NS, h.Ifname, got)
		}
	}

	lo := run(t, l, l.Server(1).NS, "ip", "-br", "addr", "show", "dev", "lo")
	for _, s := range l.Servers() {
		if got := run(t, l, s.NS, "ip", "-br", "addr", "show", "dev", "lo"); !strings.Contains(got, "192.0.2.10/32") || !strings.Contains(got, "2001:db8:10::10/128") {
			t.Errorf("%s lo: %q, want both VIPs", s.NS, lo)
		}
		for _, name := range []string{"all", s.Ifname} {
			if got := sysctl(t, s.NS, "net.ipv4.conf."+name+".arp_ignore"); got != "1" {
				t.Errorf("%s conf.%s.arp_ignore = %s, want 1", s.NS, name, got)
			}
			if got := sysctl(t, s.NS, "net.ipv4.conf."+name+".arp_announce"); got != "2" {
				t.Errorf("%s conf.%s.arp_announce = %s, want 2", s.NS, name, got)
			}
		}
	}
	if got := sysctl(t, l.LB().NS, "net.ipv4.ip_forward"); got != "0" {
		t.Errorf("lb ip_forward = %s, want 0", got)
	}
	if got := sysctl(t, l.LB().NS, "net.ipv6.conf.all.forwarding"); got != "0" {
		t.Errorf("lb ipv6 forwarding = %s, want 0", got)
	}

	for _, c := range []struct{ vip, via string }{{"192.0.2.10", "198.51.100.1"}, {"2001:db8:10::10", "2001:db8:100::1"}} {
		got := run(t, l, l.Client().NS, "ip", "route", "get", c.vip)
		if !strings.Contains(got, "via "+c.via+" dev "+ClientIfname) {
			t.Errorf("client route to %s: %q, want via %s", c.vip, got, c.via)
		}
	}

	// Client and servers put wire-like frames on the segment; ipfront's
	// interface is left as it is.
	for _, h := range append([]Host{l.Client()}, l.Servers()...) {
		for name, on := range offloads(t, h.NS, h.Ifname) {
			if on {
				t.Errorf("%s %s: %s on, want off", h.NS, h.Ifname, name)
			}
		}
	}
}

func TestAccessors(t *testing.T) {
	netnstest.RequireRoot(t)
	vip := netip.MustParseAddr("203.0.113.80")
	l := newLab(t, 2, WithVIPs(vip))
	if got := l.VIPs(); len(got) != 1 || got[0] != vip {
		t.Errorf("VIPs() = %v, want [%v]", got, vip)
	}
	if got := l.VIP(false); got != vip {
		t.Errorf("VIP(false) = %v, want %v", got, vip)
	}
	if got := l.VIP(true); got.IsValid() {
		t.Errorf("VIP(true) = %v, want none", got)
	}
	if s := l.Server(2); s.Role != "s2" || s.Ifname != "veth-s2" || s.IPv4 != ServerIPv4(2) ||
		s.IPv6 != netip.MustParseAddr("2001:db8:100::12") || s.NS != l.Prefix()+"-s2" {
		t.Errorf("Server(2) = %+v", s)
	}
	if got := len(l.Hosts()); got != 4 {
		t.Errorf("len(Hosts()) = %d, want 4", got)
	}
	if got := run(t, l, l.Server(1).NS, "ip", "-br", "addr", "show", "dev", "lo"); !strings.Contains(got, "203.0.113.80/32") {
		t.Errorf("s1 lo: %q, want 203.0.113.80/32", got)
	}
}

func TestNewRejects(t *testing.T) {
	netnstest.RequireRoot(t)
	for _, c := range []struct {
		prefix  string
		servers int
		opts    []Option
	}{
		{"", 1, nil},
		{"a/b", 1, nil},
		{"-x", 1, nil},
		{UniquePrefix("rej"), 0, nil},
		{UniquePrefix("rej"), MaxServers + 1, nil},
		{UniquePrefix("rej"), 1, []Option{WithVIPs(netip.MustParseAddr("198.51.100.50"))}},
		{UniquePrefix("rej"), 1, []Option{WithVIPs(netip.Addr{})}},
	} {
		if l, err := New(c.prefix, c.servers, c.opts...); err == nil {
			l.Close()
			t.Errorf("New(%q, %d, ...) succeeded, want an error", c.prefix, c.servers)
		}
	}
}

// A second lab with the same prefix fails without touching the first.
func TestNewExistingPrefix(t *testing.T) {
	l := newLab(t, 1)
	if l2, err := New(l.Prefix(), 1); !errors.Is(err, ErrExists) {
		if err == nil {
			l2.Close()
		}
		t.Fatalf("New(same prefix) = %v, want ErrExists", err)
	}
	for _, ns := range nsNames(l.Hosts()) {
		if !exists(ns) {
			t.Errorf("namespace %s of the first lab removed", ns)
		}
	}
	if _, err := l.Exec(l.Client().NS, "true"); err != nil {
		t.Error(err)
	}
}

// A New that fails halfway removes what it made and nothing else.
func TestNewFailureCleansUp(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := UniquePrefix("labtest")
	theirs := prefix + "-c" // made after -sw and -lb
	if out, err := exec.Command("ip", "netns", "add", theirs).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", theirs).Run() })
	if l, err := New(prefix, 1); !errors.Is(err, ErrExists) {
		if err == nil {
			l.Close()
		}
		t.Fatalf("New = %v, want ErrExists", err)
	}
	for _, ns := range []string{prefix + "-sw", prefix + "-lb", prefix + "-s1"} {
		if exists(ns) {
			t.Errorf("%s left behind", ns)
		}
	}
	if !exists(theirs) {
		t.Errorf("%s, not made by New, removed", theirs)
	}
}

func TestCloseRemovesEverything(t *testing.T) {
	netnstest.RequireRoot(t)
	l, err := New(UniquePrefix("labtest"), 2)
	if err != nil {
		t.Fatal(err)
	}
	names := append([]string{l.Switch()}, nsNames(l.Hosts())...)
	// A tracked command and a process the lab does not know about.
	tracked, err := l.Start(l.Server(1).NS, "sleep", "60")
	if err != nil {
		l.Close()
		t.Fatal(err)
	}
	untracked := exec.Command("ip", "netns", "exec", l.Server(2).NS, "sleep", "60")
	if err := untracked.Start(); err != nil {
		l.Close()
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	for _, ns := range names {
		if exists(ns) {
			t.Errorf("namespace %s still exists", ns)
		}
	}
	for _, c := range []*exec.Cmd{tracked, untracked} {
		err := c.Wait()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("%v: %v, want killed", c.Args, err)
		}
	}
}

func TestCloseAll(t *testing.T) {
	netnstest.RequireRoot(t)
	a, err := New(UniquePrefix("labtest"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(UniquePrefix("labtest"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := CloseAll(); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*Lab{a, b} {
		if exists(l.LB().NS) {
			t.Errorf("%s still exists", l.LB().NS)
		}
	}
}

func TestRemoveStale(t *testing.T) {
	netnstest.RequireRoot(t)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := fmt.Sprintf("stale-p%dn1-lb", dead.Process.Pid)
	live := fmt.Sprintf("stale-p%dn1-lb", os.Getppid())
	for _, ns := range []string{stale, live} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	RemoveStale()
	if exists(stale) {
		t.Errorf("%s (process %d gone) not removed", stale, dead.Process.Pid)
	}
	if !exists(live) {
		t.Errorf("%s (process %d alive) removed", live, os.Getppid())
	}
}

func TestRemove(t *testing.T) {
	netnstest.RequireRoot(t)
	prefix := UniquePrefix("labtest")
	l, err := New(prefix, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	found, err := Remove(prefix)
	if !found || err != nil {
		t.Fatalf("Remove = %v, %v; want true, nil", found, err)
	}
	for _, ns := range append([]string{l.Switch()}, nsNames(l.Hosts())...) {
		if exists(ns) {
			t.Errorf("%s still exists", ns)
		}
	}
	if found, err := Remove(prefix); found || err != nil {
		t.Errorf("second Remove = %v, %v; want false, nil", found, err)
	}
}

// The servers hold the VIPs but must not claim them on the segment: with an
// on-link route to the VIP, the client's ARP and ND for it go unanswered
// until the client's kernel gives up (the entry leaves INCOMPLETE without an
// address), while the same requests for a server's own address are answered.
func TestServersDoNotClaimVIP(t *testing.T) {
	l := newLab(t, 2)
	c := l.Client()
	// Three probes 100 ms apart instead of 1 s: the kernel's verdict on the
	// VIP comes in about 300 ms.
	if err := Sysctl(c.NS, [][2]string{
		{"net.ipv4.neigh." + c.Ifname + ".retrans_time_ms", "100"},
		{"net.ipv4.neigh." + c.Ifname + ".mcast_solicit", "3"},
		{"net.ipv6.neigh." + c.Ifname + ".retrans_time_ms", "100"},
		{"net.ipv6.neigh." + c.Ifname + ".mcast_solicit", "3"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, v6 := range []bool{false, true} {
		vip, own := l.VIP(v6), l.Server(1).Addr(v6)
		run(t, l, c.NS, "ip", "route", "replace", netip.PrefixFrom(vip, vip.BitLen()).String(), "dev", c.Ifname)
		// Datagrams make the client resolve both addresses.
		for _, a := range []netip.Addr{vip, own} {
			if err := Do(c.NS, func() error {
				u, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 9)))
				if err != nil {
					return err
				}
				defer u.Close()
				_, err = u.Write([]byte("who has"))
				return err
			}); err != nil {
				t.Fatal(err)
			}
		}
		proto := map[bool]string{false: "ARP", true: "ND"}[v6]
		netnstest.WaitFor(t, 5*time.Second, "client resolves "+own.String(), func() error {
			if out := neigh(t, l, c, own); !strings.Contains(out, "lladdr") {
				return fmt.Errorf("neighbour entry %q", out)
			}
			return nil
		})
		// Every probe for the VIP has been sent and waited for once the
		// entry is no longer INCOMPLETE (FAILED, or already collected).
		var out string
		netnstest.WaitFor(t, 5*time.Second, proto+" for the VIP to end", func() error {
			if out = neigh(t, l, c, vip); strings.Contains(out, "INCOMPLETE") {
				return fmt.Errorf("neighbour entry %q", out)
			}
			return nil
		})
		if strings.Contains(out, "lladdr") {
			t.Errorf("a server answered %s for the VIP %v: %s", proto, vip, out)
		}
	}
}

// neigh returns h's neighbour entry for a, or "" if it has none.
func neigh(t *testing.T, l *Lab, h Host, a netip.Addr) string {
	return strings.TrimSpace(run(t, l, h.NS, "ip", "neigh", "show", a.String(), "dev", h.Ifname))
}

// With the client's VIP routes pointing at a server, traffic to the VIP
// reaches that server without ipfront; restoring them sends it to the load
// balancer again, which does not forward.
func TestRouteVIPsVia(t *testing.T) {
	l := newLab(t, 2)
	ln := listen(t, l.Server(2).NS)
	if err := l.RouteVIPsVia(l.Server(2)); err != nil {
		t.Fatal(err)
	}
	for _, v6 := range []bool{false, true} {
		addr := netip.AddrPortFrom(l.VIP(v6), uint16(ln.Addr().(*net.TCPAddr).Port))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := DialContext(ctx, l.Client().NS, "tcp", addr.String())
		cancel()
		if err != nil {
			t.Fatalf("dial %v via s2: %v", addr, err)
		}
		if got := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap(); got != l.VIP(v6) {
			t.Errorf("connected to %v, want %v", got, l.VIP(v6))
		}
		c.Close()
	}
	if err := l.RouteVIPsVia(l.LB()); err != nil {
		t.Fatal(err)
	}
	got := run(t, l, l.Client().NS, "ip", "route", "get", l.VIP(false).String())
	if !strings.Contains(got, "via "+LBIPv4.String()) {
		t.Errorf("route after restoring: %q, want via %v", got, LBIPv4)
	}
}

func listen(t *testing.T, ns string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := Do(ns, func() error {
		var err error
		ln, err = net.Listen("tcp", ":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

// The ioctl path, used where ethtool(8) is missing, turns off what ethtool
// would. veth-lb is left with its offloads on by New.
func TestDisableOffloadsIoctl(t *testing.T) {
	l := newLab(t, 1)
	lb := l.LB()
	before := offloads(t, lb.NS, lb.Ifname)
	if !before["tx"] || !before["gso"] {
		t.Fatalf("veth-lb offloads before = %v, want tx and gso on (veth default)", before)
	}
	if err := disableOffloadsIoctl(lb.NS, lb.Ifname); err != nil {
		t.Fatal(err)
	}
	for name, on := range offloads(t, lb.NS, lb.Ifname) {
		if on {
			t.Errorf("%s still on", name)
		}
	}
}

func TestHTTPClientAndWaitReady(t *testing.T) {
	l := newLab(t, 1)
	// A stand-in for ipfront's API, on the lb namespace's loopback only.
	var ln net.Listener
	if err := Do(l.LB().NS, func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:9180")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var polls atomic.Int32
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/status" && polls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `{"ready": false}`)
			return
		}
		fmt.Fprint(w, `{"ready": true, "path": "`+r.URL.Path+`"}`)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitReady(ctx, l.LB().NS, "http://127.0.0.1:9180/v1/status", nil); err != nil {
		t.Fatal(err)
	}
	if n := polls.Load(); n != 3 {
		t.Errorf("WaitReady polled %d times, want 3 (two not ready, one ready)", n)
	}
	body, err := GetJSON(ctx, l.LB().NS, "http://127.0.0.1:9180/v1/counters")
	if err != nil || !strings.Contains(string(body), "/v1/counters") {
		t.Errorf("GetJSON = %q, %v", body, err)
	}
	// Not reachable from the client: the API is on the lb's loopback.
	short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if err := WaitReady(short, l.Client().NS, "http://127.0.0.1:9180/v1/status", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitReady from the client namespace = %v, want deadline exceeded", err)
	}
}

func TestProc(t *testing.T) {
	l := newLab(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A program that exits early ends WaitReady at once.
	q, err := l.StartProc(l.LB().NS, "false", nil, "false")
	if err != nil {
		t.Fatal(err)
	}
	if err := WaitReady(ctx, l.LB().NS, "http://127.0.0.1:9180/v1/status", q.Done()); !errors.Is(err, errExited) {
		t.Errorf("WaitReady with an exited program = %v, want errExited", err)
	}
	if q.Err() == nil {
		t.Error("Err() = nil for false(1)")
	}

	// Stop: nil for a clean exit on SIGTERM, an error for death by signal
	// or a program that ignores SIGTERM.
	out := newOutput()
	clean, err := l.StartProc(l.Server(1).NS, "clean", &PrefixWriter{W: out, Prefix: "x ", Mu: &out.mu},
		"sh", "-c", `trap "echo bye; exit 0" TERM; echo up; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	out.wait(t, clean, "x up")
	if err := clean.Stop(5 * time.Second); err != nil {
		t.Errorf("Stop(clean exit) = %v", err)
	}
	if got := out.String(); got != "x up\nx bye\n" {
		t.Errorf("output %q, want %q", got, "x up\nx bye\n")
	}
	killed, err := l.StartProc(l.Server(1).NS, "sleep", nil, "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	if err := killed.Stop(5 * time.Second); err == nil {
		t.Error("Stop(killed by SIGTERM) = nil")
	}
	out = newOutput()
	stubborn, err := l.StartProc(l.Server(1).NS, "stubborn", &PrefixWriter{W: out, Prefix: "x ", Mu: &out.mu},
		"sh", "-c", `trap "" TERM; echo up; while :; do sleep 0.05; done`)
	if err != nil {
		t.Fatal(err)
	}
	out.wait(t, stubborn, "x up")
	if err := stubborn.Stop(100 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("Stop(ignores SIGTERM) = %v, want killed", err)
	}
}

// output collects what programs write through PrefixWriters that share its
// mu, and signals every write so a test waits for a line instead of polling.
type output struct {
	mu    sync.Mutex
	b     strings.Builder
	wrote chan struct{} // one pending signal at most: writes coalesce
}

func newOutput() *output { return &output{wrote: make(chan struct{}, 1)} }

// Write is called by a PrefixWriter, with mu held.
func (o *output) Write(p []byte) (int, error) {
	n, err := o.b.Write(p)
	select {
	case o.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// wait returns once p has written want, and fails if p exits first or
// writes nothing matching within 5 s.
func (o *output) wait(t *testing.T, p *Proc, want string) {
	t.Helper()
	timeout := time.NewTimer(5 * time.Second)
	defer timeout.Stop()
	for {
		// A write after this check leaves a signal in wrote: none is lost.
		if got := o.String(); strings.Contains(got, want) {
			return
		}
		select {
		case <-o.wrote:
		case <-p.Done():
			if got := o.String(); !strings.Contains(got, want) {
				t.Fatalf("%s exited (%v) before writing %q; wrote %q", p.Name, p.Err(), want, got)
			}
			return
		case <-timeout.C:
			t.Fatalf("%s did not write %q in 5s; wrote %q", p.Name, want, o.String())
		}
	}
}

func TestPrefixWriter(t *testing.T) {
	var b strings.Builder
	var mu sync.Mutex
	w := &PrefixWriter{W: &b, Prefix: "s1 | ", Mu: &mu}
	for _, s := range []string{"hel", "lo\nwor", "ld\n", "\n"} {
		if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got, want := b.String(), "s1 | hello\ns1 | world\ns1 | \n"; got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func run(t *testing.T, l *Lab, ns string, args ...string) string {
	t.Helper()
	out, err := l.Exec(ns, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sysctl(t *testing.T, ns, name string) string {
	t.Helper()
	v, err := ReadSysctl(ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// offloads reads the features DisableOffloads turns off, through the
// ethtool ioctl's get commands.
func offloads(t *testing.T, ns, ifname string) map[string]bool {
	t.Helper()
	get := map[string]uint32{"tx": unix.ETHTOOL_GTXCSUM, "tso": unix.ETHTOOL_GTSO, "gso": unix.ETHTOOL_GGSO, "gro": unix.ETHTOOL_GGRO}
	state := map[string]bool{}
	err := Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for name, cmd := range get {
			v, err := nsutil.Ethtool(fd, ifname, cmd, 0)
			if err != nil {
				return fmt.Errorf("get %s: %w", name, err)
			}
			state[name] = v != 0
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return state
}
