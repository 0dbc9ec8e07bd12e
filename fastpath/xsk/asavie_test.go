//go:build linux

package xsk_test

// asavie/xdp serves here as an independent reference implementation of an
// AF_XDP socket (conformance in both directions) and as the baseline of
// BenchmarkReceive. Nothing outside this package's tests may import it.

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	asavie "github.com/asavie/xdp"

	"github.com/ipfront/ipfront/fastpath/steer"
	"github.com/ipfront/ipfront/fastpath/xsk"
	"github.com/ipfront/ipfront/internal/netnstest"
)

// conformanceFrames are frames to the VIP with seeded random payloads of
// assorted sizes up to a full 1514-byte Ethernet frame.
func (l *lab) conformanceFrames(n int, toVIP bool) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	frames := make([][]byte, n)
	for i := range frames {
		p := make([]byte, 18+rng.IntN(1514-42-18+1))
		for j := range p {
			p[j] = byte(rng.Uint32())
		}
		if toVIP {
			frames[i] = l.toVIP(p)
		} else {
			frames[i] = l.fromVIP(p)
		}
	}
	return frames
}

// openAsavie opens an asavie/xdp socket on queue 0 of ifindex inside ns,
// with frames UMEM frames and rings of ring entries; the test closes it.
func openAsavie(t testing.TB, ns *netnstest.NS, ifindex, frames, ring int) *asavie.Socket {
	t.Helper()
	var s *asavie.Socket
	if err := ns.Do(func() error {
		var err error
		s, err = asavie.NewSocket(ifindex, 0, &asavie.SocketOptions{
			NumFrames: frames, FrameSize: 2048,
			FillRingNumDescs: ring, CompletionRingNumDescs: ring, RxRingNumDescs: ring, TxRingNumDescs: ring,
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// asavieOnVIP opens the benchmarks' asavie/xdp receiver: on the load
// balancer's end, steered to by the lab's program, fill ring full.
func asavieOnVIP(b *testing.B, l *lab) *asavie.Socket {
	b.Helper()
	ref := openAsavie(b, l.lb, l.x0.Index, 4096, 2048)
	if err := l.prog.RegisterSocket(0, ref.FD()); err != nil {
		b.Fatal(err)
	}
	ref.Fill(ref.GetDescs(ref.NumFreeFillSlots()))
	return ref
}

func TestAsavieConformance(t *testing.T) {
	const n = 200

	// asavie transmits on p0, we receive on x0 (steered by VIP).
	t.Run("asavie-tx-ours-rx", func(t *testing.T) {
		l := newLab(t)
		ours := l.openLB(t, xsk.Config{NumFrames: 512, RingSize: 128, NeedWakeup: true})
		ref := openAsavie(t, l.peer, l.p0.Index, 256, 128)
		want := l.conformanceFrames(n, true)

		var got [][]byte
		rx := make([]xsk.Desc, 32)
		next := 0
		deadline := time.Now().Add(10 * time.Second)
		for len(got) < n && time.Now().Before(deadline) {
			if next < n && ref.NumFreeTxSlots() >= 16 {
				descs := ref.GetDescs(min(16, n-next))
				for i := range descs {
					descs[i].Len = uint32(copy(ref.GetFrame(descs[i]), want[next+i]))
				}
				next += ref.Transmit(descs)
			}
			if c := ref.NumCompleted(); c > 0 {
				ref.Complete(c)
			}
			ours.Recycle()
			k := ours.Receive(rx)
			for _, d := range rx[:k] {
				got = append(got, bytes.Clone(ours.Frame(d)))
				ours.Release(d.Addr)
			}
		}
		compareFrames(t, got, want)
		settle(t, ours)
	})

	// We transmit on x0, asavie receives on p0 (its own redirect-all program).
	t.Run("ours-tx-asavie-rx", func(t *testing.T) {
		l := newLab(t)
		ours := l.openLB(t, xsk.Config{NumFrames: 512, RingSize: 128})
		ref := openAsavie(t, l.peer, l.p0.Index, 256, 128)
		prog, err := asavie.NewProgram(1)
		if err != nil {
			t.Fatal(err)
		}
		defer prog.Close()
		var att *steer.Attachment
		if err := l.peer.Do(func() error {
			att, err = steer.AttachProgram(prog.Program, l.p0.Index, steer.ModeNative)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		defer att.Close()
		if err := prog.Register(0, ref.FD()); err != nil {
			t.Fatal(err)
		}
		ref.Fill(ref.GetDescs(ref.NumFreeFillSlots()))
		want := l.conformanceFrames(n, false)

		var got [][]byte
		tx := make([]xsk.Desc, 16)
		next := 0
		deadline := time.Now().Add(10 * time.Second)
		for len(got) < n && time.Now().Before(deadline) {
			ours.Recycle()
			if next < n {
				k := ours.AllocTx(tx[:min(len(tx), n-next)])
				for i := range tx[:k] {
					tx[i].Len = uint32(copy(ours.Frame(tx[i]), want[next+i]))
				}
				m := ours.Transmit(tx[:k])
				for _, d := range tx[m:k] {
					ours.Release(d.Addr)
				}
				next += m
			}
			for _, d := range ref.Receive(ref.NumReceived()) {
				got = append(got, bytes.Clone(ref.GetFrame(d)))
			}
			ref.Fill(ref.GetDescs(ref.NumFreeFillSlots()))
		}
		compareFrames(t, got, want)
		settle(t, ours)
	})
}

func compareFrames(t *testing.T, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("received %d frames, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("frame %d: got %d bytes, want %d bytes; contents differ", i, len(got[i]), len(want[i]))
		}
	}
}

// generate blasts 64-byte frames to the VIP from an AF_XDP socket on p0 until
// stop is set. It runs on its own OS thread (the other core).
func generate(tb testing.TB, l *lab, stop *atomic.Bool, wg *sync.WaitGroup) {
	gen := open(tb, l.peer, xsk.Config{Ifindex: l.p0.Index, NumFrames: 4096, RingSize: 2048})
	frame := l.toVIP(make([]byte, 18))
	// Pre-write every frame once; afterwards only descriptors move.
	all := make([]xsk.Desc, 4096)
	k := gen.AllocTx(all)
	for i := range all[:k] {
		copy(gen.Frame(all[i]), frame)
		gen.Release(all[i].Addr)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread()
		descs := make([]xsk.Desc, 256)
		for !stop.Load() {
			gen.Recycle()
			k := gen.AllocTx(descs)
			for i := range descs[:k] {
				descs[i].Len = uint32(len(frame))
			}
			m := gen.Transmit(descs[:k])
			for _, d := range descs[m:k] {
				gen.Release(d.Addr)
			}
		}
	}()
}

// burst sends n copies of frame from gen and waits until the receiver has
// them all on its RX ring (queued reports how many it holds), so the timed
// drain that follows never waits for the kernel.
func burst(tb testing.TB, gen *xsk.Socket, frame []byte, n int, queued func() int) {
	descs := make([]xsk.Desc, 256)
	for sent := 0; sent < n; {
		gen.Recycle()
		k := gen.AllocTx(descs[:min(len(descs), n-sent)])
		for i := range descs[:k] {
			descs[i].Len = uint32(copy(gen.Frame(descs[i]), frame))
		}
		m := gen.Transmit(descs[:k])
		for _, d := range descs[m:k] {
			gen.Release(d.Addr)
		}
		sent += m
	}
	netnstest.WaitFor(tb, 5*time.Second, "burst on the receiver's RX ring", func() error {
		gen.Recycle() // drives copy-mode TX if the kernel left frames on the ring
		if q := queued(); q < n {
			st, _ := gen.Stats()
			return fmt.Errorf("%d of %d frames queued (generator completed %d)", q, n, st.TxCompleted)
		}
		return nil
	})
}

// BenchmarkReceiveDrain measures the receiver's own cost per frame: the RX
// ring is filled with a burst (timer stopped), then drained with the usual
// loop (refill, receive a batch, drop it). Ours against asavie/xdp's
// Fill(GetDescs(NumFreeFillSlots())) + Receive(NumReceived()).
func BenchmarkReceiveDrain(b *testing.B) {
	const batch = 1024
	b.Run("ours", func(b *testing.B) {
		l := newLab(b)
		s := l.openLB(b, xsk.Config{NumFrames: 4096, RingSize: 2048})
		gen := open(b, l.peer, xsk.Config{Ifindex: l.p0.Index, NumFrames: 4096, RingSize: 2048})
		frame := l.toVIP(make([]byte, 18))
		descs := make([]xsk.Desc, 64)
		b.ReportAllocs()
		b.ResetTimer()
		for got := 0; got < b.N; {
			b.StopTimer()
			burst(b, gen, frame, batch, func() int { return xsk.RxQueued(s) })
			b.StartTimer()
			for want := got + batch; got < want; {
				s.Recycle()
				n := s.Receive(descs)
				for _, d := range descs[:n] {
					s.Release(d.Addr)
				}
				got += n
			}
		}
	})
	b.Run("asavie", func(b *testing.B) {
		l := newLab(b)
		ref := asavieOnVIP(b, l)
		gen := open(b, l.peer, xsk.Config{Ifindex: l.p0.Index, NumFrames: 4096, RingSize: 2048})
		frame := l.toVIP(make([]byte, 18))
		b.ReportAllocs()
		b.ResetTimer()
		for got := 0; got < b.N; {
			b.StopTimer()
			burst(b, gen, frame, batch, ref.NumReceived)
			b.StartTimer()
			for want := got + batch; got < want; {
				ref.Fill(ref.GetDescs(ref.NumFreeFillSlots()))
				got += len(ref.Receive(min(64, ref.NumReceived())))
			}
		}
	})
}

// BenchmarkReceiveLive receives from a generator running on the other core
// (an AF_XDP socket on the peer end). ns/op and allocs/op are per received
// frame; "pps" is the received rate, which on a 2-core VM is bounded by the
// generator and the kernel's veth/XDP path (and by three busy contexts
// sharing two cores), not by the receiver: compare BenchmarkReceiveDrain
// for the receiver's own cost.
func BenchmarkReceiveLive(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		l := newLab(b)
		s := l.openLB(b, xsk.Config{NumFrames: 4096, RingSize: 2048, NeedWakeup: true})
		var stop atomic.Bool
		var wg sync.WaitGroup
		generate(b, l, &stop, &wg)
		defer func() { stop.Store(true); wg.Wait() }()
		descs := make([]xsk.Desc, 64)
		b.ReportAllocs()
		b.ResetTimer()
		got := 0
		for got < b.N {
			s.Recycle()
			n := s.Receive(descs)
			for _, d := range descs[:n] {
				s.Release(d.Addr)
			}
			got += n
		}
		b.StopTimer()
		b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "pps")
		st, _ := s.Stats()
		b.ReportMetric(float64(st.Kernel.RxRingFull+st.Kernel.RxDropped)/float64(max(got, 1)), "drops/frame")
	})
	b.Run("asavie", func(b *testing.B) {
		l := newLab(b)
		ref := asavieOnVIP(b, l)
		var stop atomic.Bool
		var wg sync.WaitGroup
		generate(b, l, &stop, &wg)
		defer func() { stop.Store(true); wg.Wait() }()
		b.ReportAllocs()
		b.ResetTimer()
		got := 0
		for got < b.N {
			ref.Fill(ref.GetDescs(ref.NumFreeFillSlots()))
			got += len(ref.Receive(min(64, ref.NumReceived())))
		}
		b.StopTimer()
		b.ReportMetric(float64(got)/b.Elapsed().Seconds(), "pps")
		st, _ := ref.Stats()
		b.ReportMetric(float64(st.KernelStats.Rx_ring_full+st.KernelStats.Rx_dropped)/float64(max(got, 1)), "drops/frame")
	})
}
