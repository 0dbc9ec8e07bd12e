//go:build linux

package xsk_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/fastpath/xsk"
	"github.com/ipfront/ipfront/internal/netnstest"
)

// TestWakeEndsWait: Wake ends a Wait that has no timeout, whether it comes
// before the Wait or during it; the Wait consumes it (the next Wait would
// block again); Wake after Close does nothing.
func TestWakeEndsWait(t *testing.T) {
	s := newIdle(t)

	s.Wake() // before: the Wait returns at once
	if !xsk.WakePending(s) {
		t.Fatal("after Wake: eventfd not readable")
	}
	waitOrFail(t, s)
	if xsk.WakePending(s) {
		t.Error("after the Wait that Wake ended: eventfd still readable, the next Wait would not sleep")
	}

	// During: a second goroutine wakes the owner blocked in Wait(-1).
	go func() {
		// Not a synchronisation: either order must end the Wait.
		time.Sleep(10 * time.Millisecond)
		s.Wake()
	}()
	waitOrFail(t, s)

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s.Wake() // must not write to a closed (possibly reused) descriptor
	if err := s.Wait(0); err != xsk.ErrClosed {
		t.Errorf("Wait after Close = %v, want ErrClosed", err)
	}
}

// waitOrFail runs s.Wait(-1) and fails the test if it has not returned
// after a long time (it would then block forever).
func waitOrFail(t *testing.T, s *xsk.Socket) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Wait(-1) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait(-1) = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Wait(-1) did not return after Wake")
	}
}

func sockoptInt(t *testing.T, s *xsk.Socket, opt int) int {
	t.Helper()
	v, err := unix.GetsockoptInt(s.FD(), unix.SOL_SOCKET, opt)
	if err != nil {
		t.Fatalf("getsockopt(%d): %v", opt, err)
	}
	return v
}

// TestBusyPollOptions: a socket opened with BusyPoll gets the three socket
// options (as root, on a kernel with busy polling), and its Receive on an
// empty RX ring pokes the kernel so NAPI runs; without BusyPoll neither.
func TestBusyPollOptions(t *testing.T) {
	ns := netnstest.New(t, "xsk-bp")
	other := netnstest.New(t, "xsk-bp2")
	netnstest.Veth(t, ns, "b0", other, "b1")
	idx := ns.Link(t, "b0").Index

	s := open(t, ns, xsk.Config{Ifindex: idx, NumFrames: 256, RingSize: 64, NeedWakeup: true, BusyPoll: xsk.BusyPoll{Usec: 50, Budget: 64}})
	if st := s.BusyPoll(); !st.Enabled || st.Err != nil {
		t.Fatalf("BusyPoll() = %+v, want enabled (root, kernel with CONFIG_NET_RX_BUSY_POLL)", st)
	}
	for _, o := range []struct {
		name string
		opt  int
		want int
	}{{"SO_BUSY_POLL", unix.SO_BUSY_POLL, 50}, {"SO_PREFER_BUSY_POLL", unix.SO_PREFER_BUSY_POLL, 1}} { // SO_BUSY_POLL_BUDGET has no getsockopt
		if got := sockoptInt(t, s, o.opt); got != o.want {
			t.Errorf("%s = %d, want %d", o.name, got, o.want)
		}
	}
	out := make([]xsk.Desc, 8)
	for range 3 {
		if n := s.Receive(out); n != 0 {
			t.Fatalf("Receive = %d on an idle link", n)
		}
	}
	if st, _ := s.Stats(); st.BusyPolls != 3 || st.BusyPollRefused != 0 {
		t.Errorf("BusyPolls, BusyPollRefused = %d, %d after 3 empty receives, want 3, 0", st.BusyPolls, st.BusyPollRefused)
	}

	plain := newIdle(t)
	plain.Receive(out)
	if st, _ := plain.Stats(); st.BusyPolls != 0 || plain.BusyPoll().Enabled || sockoptInt(t, plain, unix.SO_PREFER_BUSY_POLL) != 0 {
		t.Errorf("socket without BusyPoll: BusyPolls %d, status %+v, SO_PREFER_BUSY_POLL %d; want none of it",
			st.BusyPolls, plain.BusyPoll(), sockoptInt(t, plain, unix.SO_PREFER_BUSY_POLL))
	}
}

// TestBusyPollRefused: where the kernel refuses (here: a thread without
// CAP_NET_ADMIN), the socket says why, counts it, is left with busy polling
// fully off, and Receive makes no busy-poll calls.
func TestBusyPollRefused(t *testing.T) {
	s := newIdle(t)
	errc := make(chan error, 1)
	go func() {
		// This thread loses CAP_NET_ADMIN and must not run anything else:
		// it stays locked and exits with the goroutine.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		data[0].Effective &^= 1 << unix.CAP_NET_ADMIN
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			errc <- err
			return
		}
		xsk.SetBusyPoll(s, xsk.BusyPoll{Usec: 50, Budget: 64})
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("dropping CAP_NET_ADMIN: %v", err)
	}
	st := s.BusyPoll()
	if st.Enabled || st.Err == nil || !strings.Contains(st.Err.Error(), "SO_") || !strings.Contains(st.Err.Error(), "not permitted") {
		t.Errorf("BusyPoll() = %+v, want disabled with an EPERM error naming the option", st)
	}
	for _, opt := range []int{unix.SO_BUSY_POLL, unix.SO_PREFER_BUSY_POLL} {
		if got := sockoptInt(t, s, opt); got != 0 {
			t.Errorf("socket option %d = %d after the refusal, want 0 (busy polling fully off)", opt, got)
		}
	}
	s.Receive(make([]xsk.Desc, 8))
	if stats, _ := s.Stats(); stats.BusyPollRefused != 1 || stats.BusyPolls != 0 {
		t.Errorf("BusyPollRefused, BusyPolls = %d, %d, want 1, 0", stats.BusyPollRefused, stats.BusyPolls)
	}
}

// TestUMEMReported: Open says what backs the UMEM, and huge_pages = off gets
// normal pages with no fallback to explain.
func TestUMEMReported(t *testing.T) {
	ns := netnstest.New(t, "xsk-umem")
	other := netnstest.New(t, "xsk-umem2")
	netnstest.Veth(t, ns, "u0", other, "u1")
	idx := ns.Link(t, "u0").Index
	const frames, size = 1024, 4096

	auto := open(t, ns, xsk.Config{Ifindex: idx, NumFrames: frames, FrameSize: size, RingSize: 256})
	u := auto.UMEM()
	if u.Bytes != frames*size || u.Kind == xsk.PagesNormal && u.Fallback == nil {
		t.Errorf("UMEM() = %+v: want %d bytes and, if on normal pages, the reason", u, frames*size)
	}
	t.Logf("huge_pages = auto: %v", u)
	auto.Close()

	off := open(t, ns, xsk.Config{Ifindex: idx, NumFrames: frames, FrameSize: size, RingSize: 256, HugePages: xsk.HugeOff})
	if u := off.UMEM(); u.Kind == xsk.PagesHugeTLB || u.Fallback != nil {
		t.Errorf("UMEM() with HugeOff = %+v, want no hugetlb pages and no fallback", u)
	}
}

// TestIdlePathAllocatesNothing: what an idle worker calls on its socket, an
// empty Receive that pokes NAPI, a Wait that a Wake ends and a Wait that
// times out, allocates nothing.
func TestIdlePathAllocatesNothing(t *testing.T) {
	ns := netnstest.New(t, "xsk-alloc")
	other := netnstest.New(t, "xsk-alloc2")
	netnstest.Veth(t, ns, "z0", other, "z1")
	s := open(t, ns, xsk.Config{Ifindex: ns.Link(t, "z0").Index, NumFrames: 256, RingSize: 64, NeedWakeup: true,
		BusyPoll: xsk.BusyPoll{Usec: 50, Budget: 64}})
	out := make([]xsk.Desc, 8)
	allocs := testing.AllocsPerRun(100, func() {
		s.Receive(out)
		s.Recycle()
		s.Wake()
		if err := s.Wait(-1); err != nil {
			t.Fatal(err)
		}
		if err := s.Wait(0); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("idle socket calls: %v allocs per run, want 0", allocs)
	}
	if st, _ := s.Stats(); st.BusyPolls < 100 {
		t.Errorf("BusyPolls = %d after 100 empty receives, want at least 100", st.BusyPolls)
	}
}
