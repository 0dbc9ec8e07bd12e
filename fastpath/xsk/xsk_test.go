//go:build linux

package xsk_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath/steer"
	"github.com/ipfront/ipfront/fastpath/xsk"
	"github.com/ipfront/ipfront/internal/netnstest"
)

func TestOpenRejectsBadConfig(t *testing.T) {
	for _, cfg := range []xsk.Config{
		{NumFrames: 100},
		{FrameSize: 1024},
		{FrameSize: 3000},
		{RingSize: 1000},
		{Mode: xsk.Mode(7)},
	} {
		if s, err := xsk.Open(cfg); err == nil {
			s.Close()
			t.Errorf("Open(%+v) succeeded", cfg)
		}
	}
}

func TestModes(t *testing.T) {
	l := newLab(t)
	var err error
	_ = l.lb.Do(func() error {
		var s *xsk.Socket
		s, err = xsk.Open(xsk.Config{Ifindex: l.x0.Index, Mode: xsk.ModeZeroCopy})
		if err == nil {
			s.Close()
		}
		return nil
	})
	if err == nil {
		t.Error("ModeZeroCopy on veth succeeded; veth has no zero-copy support")
	}
	for _, m := range []xsk.Mode{xsk.ModeAuto, xsk.ModeCopy} {
		s := open(t, l.lb, xsk.Config{Ifindex: l.x0.Index, Mode: m})
		if s.ZeroCopy() {
			t.Errorf("mode %v on veth: ZeroCopy() = true", m)
		}
		if a := s.Accounting(); a.Fill != int64(xsk.DefaultRingSize) || a.Free != xsk.DefaultNumFrames-xsk.DefaultRingSize {
			t.Errorf("after Open: %v; want the fill ring full, the rest free", a)
		}
		if err := s.CheckFrames(); err != nil {
			t.Error(err)
		}
		s.Close()
	}
}

// settle recycles until the kernel has completed every frame in flight on
// TX and checks the accounting: everything is free or on the fill ring, no
// duplicates.
func settle(t *testing.T, s *xsk.Socket) {
	t.Helper()
	netnstest.WaitFor(t, 5*time.Second, "TX completions", func() error {
		s.Recycle()
		if a := s.Accounting(); a.Tx > 0 {
			return fmt.Errorf("%d frames still in flight on TX: %v", a.Tx, a)
		}
		return nil
	})
	a := s.Accounting()
	if a.Tx != 0 || a.Caller != 0 || s.Outstanding() != 0 || a.Free+a.Fill != a.Total {
		t.Errorf("frames leaked: %v", a)
	}
	if err := s.CheckFrames(); err != nil {
		t.Error(err)
	}
}

// TestEchoRoundTrip: the peer's kernel sends UDP datagrams to the VIP; our
// socket receives them, turns each frame around in place and transmits it;
// the peer's kernel delivers the replies to its socket.
func TestEchoRoundTrip(t *testing.T) {
	l := newLab(t)
	s := l.openLB(t, xsk.Config{NumFrames: 512, RingSize: 128, NeedWakeup: true})
	c := udpConn(t, l.peer, netip.AddrPortFrom(peer4, 0))

	const n = 2000
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 64)
		for i := range n {
			msg := fmt.Appendf(nil, "echo %d", i)
			if _, err := c.WriteToUDPAddrPort(msg, netip.AddrPortFrom(vip4, 7777)); err != nil {
				done <- err
				return
			}
			// Lock-step keeps the test free of socket buffer drops.
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			m, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				done <- fmt.Errorf("reply %d: %w", i, err)
				return
			}
			if !bytes.Equal(buf[:m], msg) || from != netip.AddrPortFrom(vip4, 7777) {
				done <- fmt.Errorf("reply %d: %q from %v, want %q from %v:7777", i, buf[:m], from, msg, vip4)
				return
			}
		}
		done <- nil
	}()

	descs := make([]xsk.Desc, 64)
	echoed := 0
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if echoed != n {
				t.Fatalf("echoed %d frames, want %d", echoed, n)
			}
			st, err := s.Stats()
			if err != nil {
				t.Fatal(err)
			}
			if st.RxPackets != n || st.TxPackets != n || st.Kernel.RxDropped != 0 || st.Kernel.TxInvalidDescs != 0 {
				t.Errorf("Stats() = %+v", st)
			}
			settle(t, s)
			return
		default:
		}
		s.Recycle()
		k := s.Receive(descs)
		for i := range descs[:k] {
			swapUDP4(s.Frame(descs[i]))
		}
		sent := s.Transmit(descs[:k])
		for _, d := range descs[sent:k] {
			s.Release(d.Addr)
		}
		echoed += sent
		if k == 0 {
			if err := s.Wait(1); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestTransmitToSink: frames we originate arrive at the peer, counted by the
// CountDrop program there. More frames than the TX ring holds are sent, so
// Transmit's partial acceptance and the completion path are exercised.
func TestTransmitToSink(t *testing.T) {
	l := newLab(t)
	cd, err := steer.NewCountDrop()
	if err != nil {
		t.Fatal(err)
	}
	defer cd.Close()
	var att *steer.Attachment
	if err := l.peer.Do(func() error { att, err = cd.Attach(l.p0.Index); return err }); err != nil {
		t.Fatal(err)
	}
	defer att.Close()

	s := l.openLB(t, xsk.Config{NumFrames: 1024, RingSize: 64})
	const n = 10000
	frame := l.fromVIP(make([]byte, 22)) // 64-byte frames
	descs := make([]xsk.Desc, 256)
	sent, rejected := 0, 0
	deadline := time.Now().Add(10 * time.Second)
	for sent < n && time.Now().Before(deadline) {
		s.Recycle()
		k := s.AllocTx(descs[:min(len(descs), n-sent)])
		for i := range descs[:k] {
			descs[i].Len = uint32(copy(s.Frame(descs[i]), frame))
		}
		m := s.Transmit(descs[:k])
		for _, d := range descs[m:k] {
			s.Release(d.Addr)
		}
		sent += m
		rejected += k - m
	}
	if sent != n {
		t.Fatalf("sent %d frames, want %d", sent, n)
	}
	settle(t, s)
	if pkts, byts, err := cd.Count(); err != nil || pkts != n || byts != n*uint64(len(frame)) {
		t.Errorf("peer sink counted %d frames, %d bytes (%v); want %d, %d", pkts, byts, err, n, n*len(frame))
	}
	st, _ := s.Stats()
	if st.TxCompleted != n || st.TxRingFull != uint64(rejected) {
		t.Errorf("Stats() = %+v; want TxCompleted %d, TxRingFull %d", st, n, rejected)
	}
	t.Logf("sent %d, TX ring full %d times, %d kicks", sent, rejected, st.TxKicks)
}

// TestReceiveExactBytes: frames the peer sends raw (AF_XDP from the peer
// side, so exact bytes) arrive unchanged; a frame that does not fit a frame
// after the headroom is dropped by the kernel and counted.
func TestReceiveExactBytes(t *testing.T) {
	l := newLab(t)
	// Room for frames bigger than the copy-mode limit (veth checks the MTU).
	l.lb.Run(t, "ip", "link", "set", "x0", "mtu", "3000")
	l.peer.Run(t, "ip", "link", "set", "p0", "mtu", "3000")
	s := l.openLB(t, xsk.Config{NumFrames: 256, RingSize: 64, FrameSize: 2048})
	gen := open(t, l.peer, xsk.Config{Ifindex: l.p0.Index, NumFrames: 256, RingSize: 64, Mode: xsk.ModeCopy})

	var want [][]byte
	for _, size := range []int{60, 128, 1000, 1514, 1792} {
		want = append(want, l.toVIP(bytes.Repeat([]byte{byte(size)}, size-42)))
	}
	tooBig := l.toVIP(make([]byte, 1793-42)) // 2048 - 256 headroom = 1792 max
	descs := make([]xsk.Desc, len(want)+1)
	if k := gen.AllocTx(descs); k != len(descs) {
		t.Fatalf("AllocTx = %d", k)
	}
	for i, f := range append(want, tooBig) {
		descs[i].Len = uint32(copy(gen.Frame(descs[i]), f))
	}
	if m := gen.Transmit(descs); m != len(descs) {
		t.Fatalf("Transmit = %d", m)
	}

	var got [][]byte
	rx := make([]xsk.Desc, 8)
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < len(want) && time.Now().Before(deadline) {
		s.Recycle()
		gen.Recycle()
		k := s.Receive(rx)
		for _, d := range rx[:k] {
			if d.Addr%2048 != 256 {
				t.Errorf("received desc at frame offset %d, want 256 (XDP_PACKET_HEADROOM)", d.Addr%2048)
			}
			got = append(got, bytes.Clone(s.Frame(d)))
			s.Release(d.Addr)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("received %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("frame %d: got %d bytes, want %d bytes (contents differ)", i, len(got[i]), len(want[i]))
		}
	}
	// The oversized frame went last, so the kernel drops it after
	// delivering the others: wait for its count, then check it is the only
	// drop.
	var st xsk.Stats
	netnstest.WaitFor(t, 5*time.Second, "kernel rx_dropped for the oversized frame", func() error {
		var err error
		if st, err = s.Stats(); err == nil && st.Kernel.RxDropped == 0 {
			err = errors.New("rx_dropped is still 0")
		}
		return err
	})
	if st.Kernel.RxDropped != 1 {
		t.Errorf("kernel rx_dropped = %d, want 1 (the %d-byte frame)", st.Kernel.RxDropped, len(tooBig))
	}
	settle(t, s)
	settle(t, gen)
}

func TestCheckFramesCatchesDoubleRelease(t *testing.T) {
	l := newLab(t)
	s := l.openLB(t, xsk.Config{NumFrames: 256, RingSize: 64})
	d := make([]xsk.Desc, 1)
	s.AllocTx(d)
	s.Release(d[0].Addr)
	if err := s.CheckFrames(); err != nil {
		t.Fatal(err)
	}
	s.Release(d[0].Addr)
	err := s.CheckFrames()
	if err == nil || !strings.Contains(err.Error(), "accounting") {
		t.Errorf("CheckFrames after double Release = %v, want an accounting error", err)
	}
}

// TestZeroAllocs: the per-packet calls do not allocate, on the idle path and
// with frames flowing (RX from a generator on the peer, TX to the peer).
func TestZeroAllocs(t *testing.T) {
	l := newLab(t)
	s := l.openLB(t, xsk.Config{NumFrames: 1024, RingSize: 128, NeedWakeup: true})
	gen := open(t, l.peer, xsk.Config{Ifindex: l.p0.Index, NumFrames: 1024, RingSize: 128})
	frame := l.toVIP(make([]byte, 18))
	out := l.fromVIP(make([]byte, 18))
	gd := make([]xsk.Desc, 32)
	rx := make([]xsk.Desc, 64)
	tx := make([]xsk.Desc, 32)
	received := 0
	loop := func() {
		// Generator: 32 frames from the peer to the VIP.
		gen.Recycle()
		k := gen.AllocTx(gd)
		for i := range gd[:k] {
			gd[i].Len = uint32(copy(gen.Frame(gd[i]), frame))
		}
		m := gen.Transmit(gd[:k])
		for _, d := range gd[m:k] {
			gen.Release(d.Addr)
		}
		// Worker: receive and drop, originate and send.
		s.Recycle()
		n := s.Receive(rx)
		received += n
		for _, d := range rx[:n] {
			_ = s.Frame(d)
			s.Release(d.Addr)
		}
		k = s.AllocTx(tx)
		for i := range tx[:k] {
			tx[i].Len = uint32(copy(s.Frame(tx[i]), out))
		}
		m = s.Transmit(tx[:k])
		for _, d := range tx[m:k] {
			s.Release(d.Addr)
		}
	}
	loop() // warm up
	if a := testing.AllocsPerRun(200, loop); a != 0 {
		t.Errorf("Receive/Transmit/Recycle/AllocTx/Release loop: %v allocs per run, want 0", a)
	}
	if received == 0 {
		t.Error("no frame received during the allocation test")
	}
	idle := newIdle(t)
	if a := testing.AllocsPerRun(1000, func() { idle.Recycle(); idle.Receive(rx); idle.Transmit(nil) }); a != 0 {
		t.Errorf("idle loop: %v allocs per run, want 0", a)
	}
	t.Logf("received %d frames during the allocation test", received)
	settle(t, s)
	settle(t, gen)
}

func newIdle(t *testing.T) *xsk.Socket {
	ns := netnstest.New(t, "xsk-idle")
	other := netnstest.New(t, "xsk-idle2")
	netnstest.Veth(t, ns, "i0", other, "i1")
	return open(t, ns, xsk.Config{Ifindex: ns.Link(t, "i0").Index, NumFrames: 256, RingSize: 64, NeedWakeup: true})
}
