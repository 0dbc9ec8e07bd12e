package health

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fast is the timing of most tests: short, Timeout below Interval. These
// tests run real probes on the wall clock and check what they conclude, not
// when: timing_test.go checks the detection bounds in virtual time.
func fast(typ string, port uint16) Check {
	return Check{Type: typ, Port: port, Interval: 20 * time.Millisecond, Timeout: 15 * time.Millisecond, Rise: 2, Fall: 3}
}

// httpTimeout is the Timeout of HTTP checks that are not about time-outs:
// an HTTP exchange can take tens of milliseconds under the race detector on
// a loaded machine, and a spurious time-out is a failure.
const httpTimeout = 250 * time.Millisecond

func TestTCP(t *testing.T) {
	m, r := newMonitor(t)
	srv := listenTCP(t, "127.0.0.1:0")
	ap := srv.addrPort()
	tg := Target{Set: "web", Server: "web-1", Addr: ap.Addr(), Check: fast(TypeTCP, ap.Port())}
	m.Update([]Target{tg})

	if e := r.next(t); !e.Up || e.Target != tg || e.Reason != "connected" {
		t.Fatalf("first event = %+v, want up for %+v", e, tg)
	}
	wantState(t, m, "web", ap.Addr(), true, true)
	r.quiet(t, 5*tg.Check.Interval)

	srv.close()
	e := r.next(t)
	if e.Up || !strings.Contains(e.Reason, "refused") {
		t.Fatalf("event after close = %+v, want down with connection refused", e)
	}
	wantState(t, m, "web", ap.Addr(), false, true)
	r.quiet(t, 5*tg.Check.Interval) // exactly one down event

	srv = listenTCP(t, ap.String())
	e = r.next(t)
	if !e.Up {
		t.Fatalf("event after reopen = %+v, want up", e)
	}
	wantState(t, m, "web", ap.Addr(), true, true)
	if srv.accepts.Load() == 0 {
		t.Error("no probe reached the reopened listener")
	}
}

func TestTCPDeadAtStart(t *testing.T) {
	m, r := newMonitor(t)
	ap := closedPort(t)
	tg := Target{Set: "web", Server: "web-1", Addr: ap.Addr(), Check: fast(TypeTCP, ap.Port())}
	m.Update([]Target{tg})
	if e := r.next(t); e.Up || !strings.Contains(e.Reason, "refused") {
		t.Fatalf("first event = %+v, want down with connection refused", e)
	}
	r.quiet(t, 5*tg.Check.Interval)
}

// statusServer is an HTTP server whose handler answers status on path and
// 404 elsewhere, and records requests that would keep the connection alive.
type statusServer struct {
	*httptest.Server
	status    atomic.Int32
	keepAlive atomic.Int32
}

func newStatusServer(t *testing.T, path string, status int) *statusServer {
	t.Helper()
	s := &statusServer{}
	s.status.Store(int32(status))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !r.Close {
			s.keepAlive.Add(1)
		}
		switch r.URL.Path {
		case path:
			w.WriteHeader(int(s.status.Load()))
			fmt.Fprint(w, strings.Repeat("x", 100<<10)) // more than the probe reads
		case "/redirect":
			http.Redirect(w, r, path, http.StatusFound)
		case "/nocontent":
			w.WriteHeader(http.StatusNoContent)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *statusServer) addrPort(t *testing.T) netip.AddrPort {
	return mustAddrPort(t, s.Listener.Addr().String())
}

func TestHTTP(t *testing.T) {
	m, r := newMonitor(t)
	srv := newStatusServer(t, "/healthz", http.StatusOK)
	ap := srv.addrPort(t)
	tg := Target{Set: "web", Server: "web-1", Addr: ap.Addr(), Check: fast(TypeHTTP, ap.Port())}
	tg.Check.Path = "/healthz"
	tg.Check.Timeout = httpTimeout
	m.Update([]Target{tg})

	if e := r.next(t); !e.Up || !strings.Contains(e.Reason, "200") {
		t.Fatalf("first event = %+v, want up with status 200", e)
	}
	srv.status.Store(http.StatusServiceUnavailable)
	if e := r.next(t); e.Up || !strings.Contains(e.Reason, "503") {
		t.Fatalf("event after 503 = %+v, want down with status 503", e)
	}
	r.quiet(t, 5*tg.Check.Interval)
	srv.status.Store(http.StatusOK)
	if e := r.next(t); !e.Up {
		t.Fatalf("event after 200 = %+v, want up", e)
	}
	if n := srv.keepAlive.Load(); n != 0 {
		t.Errorf("%d probes asked for keep-alive, want none", n)
	}
}

func TestHTTPPathAndStatus(t *testing.T) {
	m, r := newMonitor(t)
	srv := newStatusServer(t, "/healthz", http.StatusOK)
	ap := srv.addrPort(t)
	tests := []struct {
		path   string
		status int
		wantUp bool
		reason string
	}{
		{"/healthz", 0, true, "200"},
		{"", 0, false, "404"}, // "/"
		{"/other", 200, false, "404"},
		{"/nocontent", 200, false, "204"},
		{"/nocontent", 204, true, "204"},
		{"/redirect", 200, false, "302"}, // not followed
		{"/redirect", 302, true, "302"},
		{"/healthz?probe=1", 200, true, "200"},
	}
	var targets []Target
	for i, tt := range tests {
		c := fast(TypeHTTP, ap.Port())
		c.Path, c.ExpectStatus, c.Timeout = tt.path, tt.status, httpTimeout
		targets = append(targets, Target{Set: fmt.Sprint(i), Addr: ap.Addr(), Check: c})
	}
	m.Update(targets)
	seen := map[string]Event{}
	for len(seen) < len(tests) {
		e := r.next(t)
		if _, dup := seen[e.Target.Set]; dup {
			t.Fatalf("second event %+v, want one per target", e)
		}
		seen[e.Target.Set] = e
	}
	for i, tt := range tests {
		if e := seen[fmt.Sprint(i)]; e.Up != tt.wantUp || !strings.Contains(e.Reason, tt.reason) {
			t.Errorf("path %q expecting %d: event %+v, want up %v with %s", tt.path, tt.status, e, tt.wantUp, tt.reason)
		}
	}
}

func TestHTTPFlappingBelowThresholds(t *testing.T) {
	m, r := newMonitor(t)
	var alternate atomic.Bool
	var served atomic.Int32
	reached := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !alternate.Load() {
			return // 200
		}
		n := served.Add(1)
		if n == 12 {
			close(reached)
		}
		if n%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	ap := mustAddrPort(t, srv.Listener.Addr().String())
	c := fast(TypeHTTP, ap.Port())
	c.Rise, c.Fall, c.Timeout = 2, 2, httpTimeout
	m.Update([]Target{{Set: "web", Addr: ap.Addr(), Check: c}})
	if e := r.next(t); !e.Up {
		t.Fatalf("first event = %+v, want up", e)
	}

	alternate.Store(true)
	select {
	case <-reached:
	case <-time.After(wait):
		t.Fatal("fewer than 12 probes")
	}
	r.quiet(t, c.Interval) // the last probe's result has been handled
	wantState(t, m, "web", ap.Addr(), true, true)
}

func TestHTTPTimeout(t *testing.T) {
	m, r := newMonitor(t)
	release := make(chan struct{})
	var mu sync.Mutex
	var arrivals []time.Time
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // before srv.Close, which waits for handlers
	ap := mustAddrPort(t, srv.Listener.Addr().String())
	// Timeout spans four intervals: each probe makes the next skip ticks.
	c := Check{Type: TypeHTTP, Port: ap.Port(), Interval: 20 * time.Millisecond, Timeout: 80 * time.Millisecond, Rise: 1, Fall: 2}
	start := time.Now()
	m.Update([]Target{{Set: "web", Addr: ap.Addr(), Check: c}})

	e := r.next(t)
	if e.Up || !strings.Contains(e.Reason, "deadline exceeded") {
		t.Fatalf("event = %+v, want down with deadline exceeded", e)
	}
	// Each of the Fall probes waited out its Timeout.
	if took, min := time.Since(start), c.Timeout*time.Duration(c.Fall); took < min {
		t.Errorf("down after %v, want at least %d timeouts (%v)", took, c.Fall, min)
	}
	m.Close()
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(arrivals); i++ {
		if gap := arrivals[i].Sub(arrivals[i-1]); gap < c.Timeout*3/4 {
			t.Errorf("probes %d and %d started %v apart, want no overlap (timeout %v)", i-1, i, gap, c.Timeout)
		}
	}
}

func TestNone(t *testing.T) {
	m, r := newMonitor(t)
	srv := listenTCP(t, "127.0.0.1:0")
	ap := srv.addrPort()
	c := fast(TypeTCP, ap.Port())
	c.Type = TypeNone
	m.Update([]Target{{Set: "web", Addr: ap.Addr(), Check: c}})
	if e := r.next(t); !e.Up || e.Reason != "no check" {
		t.Fatalf("event = %+v, want up without a check", e)
	}
	r.quiet(t, 5*c.Interval)
	wantState(t, m, "web", ap.Addr(), true, true)
	if n := srv.accepts.Load(); n != 0 {
		t.Errorf("%d connections to a server with no check, want 0", n)
	}
}

func TestInvalidTarget(t *testing.T) {
	m, r := newMonitor(t)
	c := fast(TypeTCP, 9)
	c.Interval = 0 // would panic a ticker
	addr := netip.MustParseAddr("127.0.0.1")
	m.Update([]Target{{Set: "web", Addr: addr, Check: c}})
	if e := r.next(t); e.Up || !strings.Contains(e.Reason, "interval") {
		t.Fatalf("event = %+v, want down about the interval", e)
	}
	wantState(t, m, "web", addr, false, true)
}

func TestUpdateKeepsState(t *testing.T) {
	m, r := newMonitor(t)
	ap := closedPort(t)
	tg := Target{Set: "web", Server: "web-1", Addr: ap.Addr(), Check: fast(TypeTCP, ap.Port())}
	m.Update([]Target{tg})
	if e := r.next(t); e.Up {
		t.Fatalf("first event = %+v, want down", e)
	}
	c := checkerOf(m, "web", ap.Addr())

	renamed := tg
	renamed.Server = "web-one"
	m.Update([]Target{renamed, tg}) // a duplicate is ignored
	if got := checkerOf(m, "web", ap.Addr()); got != c {
		t.Fatal("Update with the same check replaced the checker")
	}
	wantState(t, m, "web", ap.Addr(), false, true)
	r.quiet(t, 5*tg.Check.Interval) // a reload does not bring it up

	listenTCP(t, ap.String())
	if e := r.next(t); !e.Up || e.Target != renamed {
		t.Fatalf("event after reopen = %+v, want up for %+v", e, renamed)
	}
}

func TestUpdateChangedCheckRestarts(t *testing.T) {
	m, r := newMonitor(t)
	srv := newStatusServer(t, "/good", http.StatusOK)
	ap := srv.addrPort(t)
	tg := Target{Set: "web", Addr: ap.Addr(), Check: fast(TypeHTTP, ap.Port())}
	tg.Check.Path, tg.Check.Timeout = "/bad", httpTimeout
	m.Update([]Target{tg})
	if e := r.next(t); e.Up {
		t.Fatalf("first event = %+v, want down", e)
	}
	old := checkerOf(m, "web", ap.Addr())

	tg.Check.Path = "/good"
	m.Update([]Target{tg})
	if !isClosed(old.done) {
		t.Error("old checker still running after Update")
	}
	if checkerOf(m, "web", ap.Addr()) == old {
		t.Fatal("Update with a new check kept the checker")
	}
	wantState(t, m, "web", ap.Addr(), false, true) // the verdict carries over
	if e := r.next(t); !e.Up || e.Target != tg {
		t.Fatalf("event after the fix = %+v, want up for %+v", e, tg)
	}
}

func TestUpdateRemoves(t *testing.T) {
	m, r := newMonitor(t)
	srv := listenTCP(t, "127.0.0.1:0")
	ap := srv.addrPort()
	a := Target{Set: "a", Addr: ap.Addr(), Check: fast(TypeTCP, ap.Port())}
	b := Target{Set: "b", Addr: ap.Addr(), Check: fast(TypeTCP, ap.Port())}
	m.Update([]Target{a, b})
	for range 2 {
		if e := r.next(t); !e.Up {
			t.Fatalf("event = %+v, want up", e)
		}
	}
	ca, cb := checkerOf(m, "a", ap.Addr()), checkerOf(m, "b", ap.Addr())

	m.Update([]Target{a})
	if !isClosed(cb.done) {
		t.Error("removed checker still running after Update")
	}
	wantState(t, m, "b", ap.Addr(), false, false)
	srv.close() // a goes down, b must say nothing
	if e := r.next(t); e.Up || e.Target.Set != "a" {
		t.Fatalf("event = %+v, want a down", e)
	}
	r.quiet(t, 5*a.Check.Interval)

	m.Close()
	if !isClosed(ca.done) {
		t.Error("checker still running after Close")
	}
	wantState(t, m, "a", ap.Addr(), false, false)
	m.Update([]Target{a}) // after Close: nothing
	r.quiet(t, 3*a.Check.Interval)
	m.Close()
}

func TestCloseInterruptsProbe(t *testing.T) {
	m, r := newMonitor(t)
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	ap := mustAddrPort(t, srv.Listener.Addr().String())
	c := Check{Type: TypeHTTP, Port: ap.Port(), Interval: time.Minute, Timeout: 30 * time.Second, Rise: 1, Fall: 1}
	m.Update([]Target{{Set: "web", Addr: ap.Addr(), Check: c}})
	<-arrived
	wantState(t, m, "web", ap.Addr(), true, false) // pending: reported up

	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(wait): // far below the probe's 30 s timeout
		t.Fatalf("Close still waiting after %v with a probe in flight (probe timeout %v)", wait, c.Timeout)
	}
	r.quiet(t, 0)
	if len(r.ch) != 0 {
		t.Errorf("%d events from a cancelled probe, want none", len(r.ch))
	}
}
