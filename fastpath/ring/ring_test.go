package ring

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
)

func TestCapacityRoundsUpToPowerOfTwo(t *testing.T) {
	for _, tc := range []struct{ ask, want int }{{-1, 1}, {0, 1}, {1, 1}, {2, 2}, {3, 4}, {5, 8}, {1024, 1024}, {1025, 2048}} {
		if got := NewSPSC[int](tc.ask).Cap(); got != tc.want {
			t.Errorf("NewSPSC(%d).Cap() = %d, want %d", tc.ask, got, tc.want)
		}
	}
}

// TestSPSCBounded: a full ring refuses without blocking, counts every
// refusal, and loses nothing it accepted.
func TestSPSCBounded(t *testing.T) {
	r := NewSPSC[int](8)
	for i := 0; i < 8; i++ {
		if !r.TryPush(i) {
			t.Fatalf("TryPush(%d) on a ring holding %d of 8 = false, want true", i, i)
		}
	}
	for i := 0; i < 3; i++ {
		if r.TryPush(100 + i) {
			t.Fatalf("TryPush on a full ring = true, want false")
		}
	}
	if r.Overflows() != 3 || r.Len() != 8 {
		t.Fatalf("Overflows, Len = %d, %d, want 3, 8", r.Overflows(), r.Len())
	}
	for i := 0; i < 8; i++ {
		if v, ok := r.TryPop(); !ok || v != i {
			t.Fatalf("TryPop() = %d, %v, want %d, true", v, ok, i)
		}
	}
	if v, ok := r.TryPop(); ok {
		t.Fatalf("TryPop() on an empty ring = %d, true, want false", v)
	}
	if !r.TryPush(8) {
		t.Fatalf("TryPush after draining = false, want true")
	}
}

// TestSPSCOrderAcrossWrap pushes and pops in uneven rounds so the indices wrap
// the 4-slot array many times; every value comes out once, in order.
func TestSPSCOrderAcrossWrap(t *testing.T) {
	r := NewSPSC[uint64](4)
	var next, want uint64
	out := make([]uint64, 3)
	for round := 0; round < 1000; round++ {
		for k := 0; k < 1+round%4; k++ {
			if r.TryPush(next) {
				next++
			}
		}
		var got []uint64
		if round%2 == 0 {
			got = out[:r.PopBatch(out)]
		} else if v, ok := r.TryPop(); ok {
			got = []uint64{v}
		}
		for _, v := range got {
			if v != want {
				t.Fatalf("round %d: popped %d, want %d", round, v, want)
			}
			want++
		}
	}
	if next < 1000 {
		t.Fatalf("only %d values went through 1000 rounds", next)
	}
}

// TestSPSCPutIsInvisibleUntilFlush: staged values count against capacity but
// the consumer sees them only after Flush, all at once.
func TestSPSCPutIsInvisibleUntilFlush(t *testing.T) {
	r := NewSPSC[int](2)
	if !r.Put(1) || !r.Put(2) {
		t.Fatalf("Put on an empty 2-slot ring = false, want true")
	}
	if r.Put(3) {
		t.Fatalf("Put with 2 staged values in 2 slots = true, want false")
	}
	if v, ok := r.TryPop(); ok {
		t.Fatalf("TryPop before Flush = %d, true, want false", v)
	}
	r.Flush()
	out := make([]int, 4)
	if n := r.PopBatch(out); n != 2 || out[0] != 1 || out[1] != 2 {
		t.Fatalf("PopBatch after Flush = %d %v, want 2 [1 2 ...]", n, out)
	}
}

// TestSPSCConcurrent runs a producer and a consumer on their own goroutines
// (meant for -race): every value arrives once and in order, the consumer
// sleeping in Wait whenever the ring is empty.
func TestSPSCConcurrent(t *testing.T) {
	const n = 200000
	r := NewSPSC[uint64](64)
	done := make(chan struct{})
	go func() {
		for i := uint64(0); i < n; {
			if r.TryPush(i) {
				i++
			} else {
				runtime.Gosched()
			}
		}
	}()
	out := make([]uint64, 16)
	var want uint64
	for want < n {
		if !r.Wait(done) {
			t.Fatalf("Wait returned false with done open")
		}
		k := r.PopBatch(out)
		for _, v := range out[:k] {
			if v != want {
				t.Fatalf("popped %d, want %d", v, want)
			}
			want++
		}
	}
	close(done)
}

// TestMPSCConcurrent: several producers push at once; the consumer gets every
// accepted value once, each producer's in its order, and every refusal is
// counted.
func TestMPSCConcurrent(t *testing.T) {
	const producers, each = 4, 20000
	type msg struct{ from, seq int }
	q := NewMPSC[msg](32)
	var wg sync.WaitGroup
	refused := make([]int, producers)
	accepted := make([]int, producers)
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := 0; s < each; s++ {
				if q.TryPush(msg{p, s}) {
					accepted[p]++
				} else {
					refused[p]++
					runtime.Gosched()
				}
			}
		}()
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	last := make([]int, producers)
	for i := range last {
		last[i] = -1
	}
	got := make([]int, producers)
	buf := make([]msg, 8)
	for {
		more := q.Wait(stopped)
		for k := q.PopBatch(buf); k > 0; k = q.PopBatch(buf) {
			for _, m := range buf[:k] {
				if m.seq <= last[m.from] {
					t.Fatalf("producer %d: seq %d after %d", m.from, m.seq, last[m.from])
				}
				last[m.from] = m.seq
				got[m.from]++
			}
		}
		if !more {
			break
		}
	}
	var sumRefused uint64
	for p := 0; p < producers; p++ {
		if got[p] != accepted[p] {
			t.Errorf("producer %d: consumer got %d values, TryPush accepted %d", p, got[p], accepted[p])
		}
		sumRefused += uint64(refused[p])
	}
	if q.Overflows() != sumRefused {
		t.Errorf("Overflows() = %d, want %d (refusals seen by producers)", q.Overflows(), sumRefused)
	}
}

// TestWaitWakesSleepingConsumer parks a consumer in Wait (it has announced
// that it sleeps) and checks that one push wakes it, and that closing done
// releases it when nothing comes.
func TestWaitWakesSleepingConsumer(t *testing.T) {
	r := NewSPSC[int](4)
	woke := make(chan bool)
	go func() { woke <- r.Wait(nil) }()
	for !r.sleeping.Load() {
		runtime.Gosched()
	}
	r.TryPush(7)
	if !<-woke {
		t.Fatalf("Wait after a push = false, want true")
	}
	if v, ok := r.TryPop(); !ok || v != 7 {
		t.Fatalf("TryPop() = %d, %v, want 7, true", v, ok)
	}

	done := make(chan struct{})
	go func() { woke <- r.Wait(done) }()
	for !r.sleeping.Load() {
		runtime.Gosched()
	}
	close(done)
	if <-woke {
		t.Fatalf("Wait on an empty ring after done closed = true, want false")
	}
}

// TestFramesCopies: a pushed frame is a copy (the producer's buffer can be
// reused at once), keeps its metadata, and comes back in order.
func TestFramesCopies(t *testing.T) {
	r := NewFrames(4, 64)
	src := []byte("first frame")
	if !r.TryPush(src, Meta{Iface: 1, Queue: 2, Set: 3, Hash: 0xfeed}) {
		t.Fatalf("TryPush on an empty ring = false, want true")
	}
	copy(src, "XXXXX")
	if !r.TryPush([]byte("second"), Meta{Set: NoSet}) {
		t.Fatalf("second TryPush = false, want true")
	}
	f, m, ok := r.Peek()
	if !ok || string(f) != "first frame" || m != (Meta{Iface: 1, Queue: 2, Set: 3, Hash: 0xfeed}) {
		t.Fatalf("Peek() = %q, %+v, %v, want \"first frame\", {1 2 3 0 0xfeed}, true", f, m, ok)
	}
	if cap(f) != len(f) {
		t.Fatalf("Peek() frame has cap %d beyond its len %d: an append would overwrite the next slot", cap(f), len(f))
	}
	r.Release()
	if f, m, ok = r.Peek(); !ok || string(f) != "second" || m.Set != NoSet {
		t.Fatalf("Peek() after Release = %q, %+v, %v, want \"second\", Set NoSet", f, m, ok)
	}
	r.Release()
	if _, _, ok = r.Peek(); ok {
		t.Fatalf("Peek() on an empty ring = true, want false")
	}
}

// TestFramesBounded: full ring and oversized frames are refused, each counted
// under its own name, and nothing accepted is lost or reordered across wrap.
func TestFramesBounded(t *testing.T) {
	r := NewFrames(4, 32)
	if r.TryPush(make([]byte, 33), Meta{}) {
		t.Fatalf("TryPush of 33 bytes into 32-byte slots = true, want false")
	}
	if r.TryPush(make([]byte, 32), Meta{}) != true {
		t.Fatalf("TryPush of exactly SlotSize bytes = false, want true")
	}
	r.Peek()
	r.Release()
	next, want := 0, 0
	for round := 0; round < 100; round++ {
		for k := 0; k < 6; k++ { // more than fit: some are refused
			frame := bytes.Repeat([]byte{byte(next)}, 1+next%32)
			if r.TryPush(frame, Meta{Hash: uint64(next)}) {
				next++
			}
		}
		for k := 0; k < 3; k++ {
			f, m, ok := r.Peek()
			if !ok {
				break
			}
			if m.Hash != uint64(want) || len(f) != 1+want%32 || f[0] != byte(want) {
				t.Fatalf("round %d: frame %d of %d bytes, want frame %d of %d bytes", round, m.Hash, len(f), want, 1+want%32)
			}
			r.Release()
			want++
		}
	}
	if r.Oversize() != 1 {
		t.Errorf("Oversize() = %d, want 1", r.Oversize())
	}
	// Each round offers 6 and takes out at most 3 of a 4-slot ring.
	if r.Overflows() == 0 {
		t.Errorf("Overflows() = 0 after pushing into a full ring, want > 0")
	}
}

// TestMPFramesConcurrent: producers push frames from several goroutines while
// a consumer drains with Wait (meant for -race); each producer's frames
// arrive intact and in order.
func TestMPFramesConcurrent(t *testing.T) {
	const producers, each = 3, 5000
	q := NewMPFrames(16, 128)
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			frame := make([]byte, 100)
			for s := 0; s < each; {
				for i := range frame {
					frame[i] = byte(s + i)
				}
				if q.TryPush(frame[:1+s%100], Meta{Queue: uint16(p), Hash: uint64(s)}) {
					s++
				} else {
					runtime.Gosched()
				}
			}
		}()
	}
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	next := make([]uint64, producers)
	for total := 0; total < producers*each; {
		if !q.Wait(stopped) {
			t.Fatalf("consumer saw %d frames, want %d", total, producers*each)
		}
		for f, m, ok := q.Peek(); ok; f, m, ok = q.Peek() {
			p, s := m.Queue, m.Hash
			if s != next[p] || len(f) != 1+int(s)%100 || f[len(f)-1] != byte(int(s)+len(f)-1) {
				t.Fatalf("producer %d: frame %d (%d bytes), want frame %d intact", p, s, len(f), next[p])
			}
			next[p]++
			q.Release()
			total++
		}
	}
}

// TestZeroAllocs: pushing and popping allocate nothing.
func TestZeroAllocs(t *testing.T) {
	type msg struct {
		a, b uint64
		c    [40]byte
	}
	s := NewSPSC[msg](16)
	mp := NewMPSC[msg](16)
	f := NewFrames(16, 2048)
	mf := NewMPFrames(16, 2048)
	frame := make([]byte, 1500)
	out := make([]msg, 4)
	for name, fn := range map[string]func(){
		"SPSC TryPush/TryPop": func() { s.TryPush(msg{a: 1}); s.TryPop() },
		"SPSC Put/Flush/PopBatch": func() {
			s.Put(msg{a: 1})
			s.Put(msg{a: 2})
			s.Flush()
			s.PopBatch(out)
		},
		"MPSC TryPush/PopBatch": func() { mp.TryPush(msg{b: 2}); mp.PopBatch(out) },
		"Frames Put/Flush/Peek/Release": func() {
			f.Put(frame, Meta{Set: 1})
			f.Flush()
			f.Peek()
			f.Release()
		},
		"MPFrames TryPush/Peek/Release": func() { mf.TryPush(frame, Meta{}); mf.Peek(); mf.Release() },
		"full ring refusal": func() {
			for s.TryPush(msg{}) {
			}
			s.PopBatch(out[:0])
		},
	} {
		if a := testing.AllocsPerRun(1000, fn); a != 0 {
			t.Errorf("%s: %v allocs per run, want 0", name, a)
		}
	}
}

func BenchmarkSPSCPushPop(b *testing.B) {
	r := NewSPSC[[64]byte](1024)
	var v [64]byte
	b.ReportAllocs()
	for b.Loop() {
		r.TryPush(v)
		r.TryPop()
	}
}

func BenchmarkFramesPutFlushPeekRelease(b *testing.B) {
	r := NewFrames(1024, 2048)
	frame := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		r.Put(frame, Meta{})
		r.Flush()
		r.Peek()
		r.Release()
	}
}
