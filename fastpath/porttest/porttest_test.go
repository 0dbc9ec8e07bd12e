package porttest

import (
	"bytes"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath/xsk"
)

// TestFrameLifecycle walks frames through every state and checks that the
// accounting follows and that the TX ring refuses what does not fit.
func TestFrameLifecycle(t *testing.T) {
	p := New(Config{Frames: 8, TxRing: 2, ManualCompletion: true})
	for i := 0; i < 3; i++ {
		if !p.Deliver([]byte{byte(i), 1, 2, 3}) {
			t.Fatalf("Deliver(frame %d) = false, want true", i)
		}
	}
	descs := make([]xsk.Desc, 4)
	if n := p.Receive(descs); n != 3 {
		t.Fatalf("Receive() = %d, want 3", n)
	}
	for i, d := range descs[:3] {
		if f := p.Frame(d); !bytes.Equal(f, []byte{byte(i), 1, 2, 3}) {
			t.Fatalf("Frame(%d) = %v, want [%d 1 2 3]", i, f, i)
		}
	}
	p.Frame(descs[0])[0] = 0xAA // the worker rewrites in place
	if n := p.Transmit(descs[:3]); n != 2 {
		t.Fatalf("Transmit(3 frames) on a 2-slot TX ring = %d, want 2", n)
	}
	p.Release(descs[2].Addr)
	if got := p.Sent(); len(got) != 2 || got[0][0] != 0xAA {
		t.Fatalf("Sent() = %v, want 2 frames, the first rewritten", got)
	}
	if a := p.Accounting(); a.Tx != 2 || a.Free != 6 || a.Held != 0 {
		t.Fatalf("Accounting() = %v, want tx 2, free 6, held 0", a)
	}
	p.Complete(1)
	if a := p.Accounting(); a.Tx != 1 || a.Free != 7 {
		t.Fatalf("Accounting() after Complete(1) = %v, want tx 1, free 7", a)
	}
	if ev := p.Events(); ev.Sent != 2 || ev.TxRefused != 1 || ev.Received != 3 || ev.Released != 1 {
		t.Fatalf("Events() = %+v, want Sent 2, TxRefused 1, Received 3, Released 1", ev)
	}
	if err := p.Check(); err != nil {
		t.Fatalf("Check() = %v, want nil", err)
	}
}

// TestMisuseIsReported: releasing a frame twice is caught.
func TestMisuseIsReported(t *testing.T) {
	p := New(Config{Frames: 4})
	out := make([]xsk.Desc, 1)
	if p.AllocTx(out) != 1 {
		t.Fatalf("AllocTx() = 0, want 1")
	}
	p.Release(out[0].Addr)
	p.Release(out[0].Addr)
	if err := p.Check(); err == nil {
		t.Fatalf("Check() after a double release = nil, want an error")
	}
}

// TestDeliverWakesWait: a worker sleeping in Wait returns when a frame
// arrives, and WaitUntil sees its events.
func TestDeliverWakesWait(t *testing.T) {
	p := New(Config{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Wait(-1)
	}()
	if err := p.WaitUntil(10*time.Second, func(ev Events) bool { return ev.Waits == 1 }); err != nil {
		t.Fatalf("WaitUntil(Waits == 1) = %v", err)
	}
	p.Deliver([]byte{1})
	<-done
	if ev := p.Events(); ev.RxQueued != 1 {
		t.Fatalf("RxQueued = %d, want 1", ev.RxQueued)
	}
}
