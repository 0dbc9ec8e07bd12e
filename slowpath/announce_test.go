package slowpath

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ipfront/ipfront/slowpath/bgp"
	"github.com/ipfront/ipfront/slowpath/config"
)

// fakeAnnouncer records what the daemon asks the routers to learn.
type fakeAnnouncer struct {
	d     *Daemon
	plane *fakePlane
	calls chan []netip.Prefix // every Announce, in order

	mu              sync.Mutex
	cur             []netip.Prefix
	beforeReady     bool // an Announce of something came before the daemon was ready
	closed          bool
	planeAtClose    bool // whether the data plane was already closed when Close ran
	announcedAtStop []netip.Prefix
}

func (f *fakeAnnouncer) Announce(p []netip.Prefix) error {
	f.mu.Lock()
	if len(p) > 0 && !f.d.Ready() {
		f.beforeReady = true
	}
	f.cur = slices.Clone(p)
	f.mu.Unlock()
	f.calls <- slices.Clone(p)
	return nil
}

func (f *fakeAnnouncer) Status() bgp.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bgp.Status{Mode: config.BGPKernel, Announced: slices.Clone(f.cur)}
}

func (f *fakeAnnouncer) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plane.mu.Lock()
	f.planeAtClose = f.plane.closed
	f.plane.mu.Unlock()
	f.announcedAtStop = slices.Clone(f.cur)
	f.closed = true
	return nil
}

// next waits for the next Announce and checks it asked for want.
func (f *fakeAnnouncer) next(t *testing.T, what string, want ...string) {
	t.Helper()
	select {
	case got := <-f.calls:
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: Announce(%v), want Announce(%v)", what, got, want)
		}
	case <-time.After(waitLimit):
		t.Fatalf("%s: no Announce within %v", what, waitLimit)
	}
}

// TestDaemonAnnounce: the daemon announces the VIPs once ready, withdraws a
// VIP whose servers all failed and announces it again when one is back,
// withdraws everything on drain-node and back on undrain, and on stop
// withdraws everything first, keeps forwarding (and serving requests) for
// drain_time, and only then stops the announcer and detaches the data
// plane.
func TestDaemonAnnounce(t *testing.T) {
	text := dataplaneTOML + `
[bgp]
asn = 64512
mode = "kernel"
drain_time = "3s"
` + checkedSet("web", "192.0.2.10", "reselect", 1) + `
[[target_set]]
name = "web6"
address = "2001:db8:10::10"
secondary_address = "2001:db8:10::20"
ports = ["80"]
  [[target_set.server]]
  address = "2001:db8:100::11"
`
	h := &harness{plane: newFakePlane(t, 2), clock: newFakeClock(), prober: newFakeProber(), errc: make(chan error, 1)}
	spec, err := config.Parse("test.toml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeAnnouncer{plane: h.plane, calls: make(chan []netip.Prefix, 16)}
	var gotCfg config.BGP
	var gotIf string
	h.d = NewDaemon(spec, zerolog.Nop(), DaemonOptions{Start: h.plane.start, Clock: h.clock, Neighbors: fakeNeighbors{},
		Probe: h.prober.probe, Announce: func(cfg config.BGP, o bgp.Options) (bgp.Announcer, error) {
			gotCfg, gotIf = cfg, o.Interface
			return fa, nil
		}})
	fa.d = h.d
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { h.errc <- h.d.Run(ctx, nil) }()

	fa.next(t, "ready", "192.0.2.10/32", "2001:db8:10::10/128", "2001:db8:10::20/128") // a secondary address is announced too
	if gotCfg.ASN != 64512 || gotIf != "eth1" {
		t.Errorf("announcer started with AS %d interface %q, want 64512 eth1", gotCfg.ASN, gotIf)
	}

	// Both servers of web fail (fall = 1): its VIP goes, web6's stays.
	h.prober.setFailing(srvA, true)
	h.prober.setFailing(srvB, true)
	h.clock.Advance(time.Second)
	fa.next(t, "web's servers down", "2001:db8:10::10/128", "2001:db8:10::20/128")
	if st := h.d.BGP(); fmt.Sprint(st.Withdrawn) != "[192.0.2.10/32]" || !st.Configured {
		t.Errorf("BGP().Withdrawn = %v, want [192.0.2.10/32]", st.Withdrawn)
	}
	h.prober.setFailing(srvB, false)
	h.clock.Advance(time.Second)
	fa.next(t, "server B back", "192.0.2.10/32", "2001:db8:10::10/128", "2001:db8:10::20/128")

	// drain-node withdraws everything; undrain brings it back.
	ctx2, cancel2 := context.WithTimeout(context.Background(), waitLimit)
	defer cancel2()
	if err := h.d.SetNodeDrained(ctx2, true); err != nil {
		t.Fatal(err)
	}
	fa.next(t, "drain-node")
	if err := h.d.SetNodeDrained(ctx2, false); err != nil {
		t.Fatal(err)
	}
	fa.next(t, "undrain-node", "192.0.2.10/32", "2001:db8:10::10/128", "2001:db8:10::20/128")

	// Stop: withdraw first, then forward for drain_time.
	cancel()
	fa.next(t, "stop")
	// A request is served during the drain (the drain ticker exists once
	// it is), and the data plane is still attached.
	if err := h.d.do(ctx2, func() error { return nil }); err != nil {
		t.Fatalf("request during the drain = %v, want served", err)
	}
	h.clock.Advance(2 * time.Second)
	if err := h.d.do(ctx2, func() error { return nil }); err != nil {
		t.Fatalf("request 2s into a 3s drain = %v, want served (still draining)", err)
	}
	select {
	case err := <-h.errc:
		t.Fatalf("Run returned %v 2s into a 3s drain_time", err)
	default:
	}
	h.clock.Advance(time.Second)
	select {
	case err := <-h.errc:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatalf("Run did not return when drain_time ended")
	}
	fa.mu.Lock()
	defer fa.mu.Unlock()
	if !fa.closed || fa.planeAtClose || len(fa.announcedAtStop) != 0 {
		t.Errorf("at stop: announcer closed %v, plane already closed %v, announced %v; want closed before the plane with nothing announced",
			fa.closed, fa.planeAtClose, fa.announcedAtStop)
	}
	if fa.beforeReady {
		t.Errorf("a VIP was announced before the daemon was ready")
	}
	if !h.plane.closed {
		t.Errorf("data plane not closed after Run")
	}
}

// TestDaemonNodeDrainWithoutBGP: drain-node on a daemon without [bgp] says
// so instead of pretending.
func TestDaemonNodeDrainWithoutBGP(t *testing.T) {
	h := startDaemon(t, dataplaneTOML+checkedSet("web", "192.0.2.10", "reselect", 1))
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := h.d.SetNodeDrained(ctx, true); !errors.Is(err, ErrNoBGP) {
		t.Errorf("SetNodeDrained without [bgp] = %v, want ErrNoBGP", err)
	}
	if st := h.d.BGP(); st.Configured {
		t.Errorf("BGP() without [bgp] = %+v, want not configured", st)
	}
}
