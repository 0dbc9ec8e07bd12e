package fastpath

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/fastpath/porttest"
	"github.com/ipfront/ipfront/fastpath/ring"
)

// twoArmed is two started workers, one per interface, wired as Start wires
// them: interface 0 faces the clients, interface 1 the servers.
type twoArmed struct {
	ports   [2]*porttest.Port
	workers [2]*Worker
}

func startTwoArmed(t *testing.T, tab *Tables) *twoArmed {
	t.Helper()
	var tables atomic.Pointer[Tables]
	tables.Store(tab)
	ta := &twoArmed{}
	ifaces := []Interface{{Name: "client", MAC: otherMAC}, {Name: "server", MAC: lbMAC}}
	for i := range ta.ports {
		ta.ports[i] = porttest.New(porttest.Config{})
		shard, err := assoc.NewShard(1024)
		if err != nil {
			t.Fatal(err)
		}
		e := NewEngine(shard, i, ifaces[i].MAC)
		// Both sleep until woken: a frame handed to a sleeping worker is
		// sent only if the hand-off wakes it.
		ta.workers[i] = newWorker(ta.ports[i], e, &tables, workerConfig{iface: ifaces[i].Name, queue: 0, cpu: -1, batch: 16,
			slotSize: ta.ports[i].Config().FrameSize, idleWaitMs: -1})
	}
	wireWorkers(ifaces, ta.workers[:], 0)
	for i, w := range ta.workers {
		if err := w.start(); err != nil {
			t.Fatalf("start worker %d: %v", i, err)
		}
	}
	t.Cleanup(func() {
		for i, w := range ta.workers {
			w.stop.Store(true)
			ta.ports[i].Wake()
			<-w.done
			if a := ta.ports[i].Accounting(); a.Held != 0 {
				t.Errorf("port %d after stop: %v; want no frame held", i, a)
			}
			if err := ta.ports[i].Check(); err != nil {
				t.Errorf("port %d after stop: %v", i, err)
			}
		}
	})
	return ta
}

// sentOn waits until port i has sent n frames and returns them.
func (ta *twoArmed) sentOn(t *testing.T, i, n int) [][]byte {
	t.Helper()
	if err := ta.ports[i].WaitUntil(patience, func(ev porttest.Events) bool { return ev.Sent >= uint64(n) }); err != nil {
		t.Fatalf("port %d: waiting for %d frames sent: %v (events %+v)", i, n, err, ta.ports[i].Events())
	}
	return ta.ports[i].Sent()
}

// TestTwoArmedNAT: a client's SYN received on the clients' interface leaves
// by the servers' (handed to that interface's worker, which sleeps until the
// hand-off wakes it), and the server's reply received there goes back out of
// the clients' interface, each translated, with the egress interface's MAC
// as source.
func TestTwoArmedNAT(t *testing.T) {
	tab := natTables(t)
	for _, ts := range tab.Sets() {
		for s := range ts.Servers {
			ts.Servers[s].Egress = 1
		}
	}
	r, err := NewRoutes([]Route{{Prefix: MappedPrefix(netip.MustParsePrefix("203.0.113.0/24")), Iface: 0, MAC: routerMAC, HasMAC: true}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tab.Routes.Store(r)
	ta := startTwoArmed(t, tab)
	srv := natServer(natSetV4, 0, false)
	smac := serverMAC(natSetV4, 0, 1, 1)
	syn := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: otherMAC, Src: natC4, Dst: vip4, Proto: packet.ProtoTCP,
		SrcPort: 40000, DstPort: vipPort, TCPFlags: packet.TCPFlagSYN, Seq: 7}
	if !ta.ports[0].Deliver(encode(t, syn)) {
		t.Fatal("Deliver(SYN) = false")
	}
	want := syn
	want.SrcMAC, want.DstMAC, want.Dst = lbMAC, smac, srv
	if got := ta.sentOn(t, 1, 1)[0]; !bytes.Equal(got, encode(t, want)) {
		t.Fatalf("SYN out of the servers' interface differs\ngot:\n%swant:\n%s", hex.Dump(got), hex.Dump(encode(t, want)))
	}
	rep := packet.FrameSpec{SrcMAC: smac, DstMAC: lbMAC, Src: srv, Dst: natC4, Proto: packet.ProtoTCP,
		SrcPort: vipPort, DstPort: 40000, TCPFlags: packet.TCPFlagSYN | packet.TCPFlagACK, Seq: 99, Ack: 8}
	if !ta.ports[1].Deliver(encode(t, rep)) {
		t.Fatal("Deliver(SYN-ACK) = false")
	}
	want = rep
	want.SrcMAC, want.DstMAC, want.Src = otherMAC, routerMAC, vip4
	if got := ta.sentOn(t, 0, 1)[0]; !bytes.Equal(got, encode(t, want)) {
		t.Fatalf("reply out of the clients' interface differs\ngot:\n%swant:\n%s", hex.Dump(got), hex.Dump(encode(t, want)))
	}
	if ev := ta.ports[0].Events(); ev.Sent != 1 {
		t.Errorf("clients' interface sent %d frames, want 1 (the reply)", ev.Sent)
	}
}

// TestHandoffHoldsAnRXRing: a burst as deep as the sender's RX ring
// (ring_size), handed off while the receiver is off its core, is held whole
// rather than dropped as handoff_ring_full: the receiver drains it when it
// runs again. With fixed 512-slot rings, bulk FTP through two arms lost
// 3.5 % of its frames there.
func TestHandoffHoldsAnRXRing(t *testing.T) {
	for _, ringSize := range []int{256, 2048, 8192} {
		var ws [2]*Worker
		ifaces := []Interface{{Name: "client", MAC: otherMAC}, {Name: "server", MAC: lbMAC}}
		for i := range ws {
			p := porttest.New(porttest.Config{})
			shard, err := assoc.NewShard(64)
			if err != nil {
				t.Fatal(err)
			}
			ws[i] = newWorker(p, NewEngine(shard, i, ifaces[i].MAC), nil, workerConfig{iface: ifaces[i].Name, cpu: -1, batch: 16,
				slotSize: p.Config().FrameSize, idleWaitMs: -1})
		}
		wireWorkers(ifaces, ws[:], ringSize)
		out := ws[0].handoff.out[1].r
		frame := make([]byte, 64)
		held := 0
		for held < ringSize && out.Put(frame, ring.Meta{}) {
			held++
		}
		if held != ringSize {
			t.Errorf("ring_size %d: the hand-off ring took %d frames of a burst of %d", ringSize, held, ringSize)
		}
	}
}

// BenchmarkHandoff measures what handing a frame to another interface's
// worker adds per frame: the copy into the ring, the commit (once per
// batch of 64), and the receiver's copy out of it into its own frame.
func BenchmarkHandoff(b *testing.B) {
	for _, size := range []int{64, 1500} {
		b.Run(map[int]string{64: "64B", 1500: "1500B"}[size], func(b *testing.B) {
			r := ring.NewFrames(minHandoffSlots, 2048)
			frame := make([]byte, size)
			dst := make([]byte, 2048)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			n := 0
			for b.Loop() {
				r.Put(frame, ring.Meta{})
				if n++; n == benchBatch {
					r.Flush()
					for range n {
						f, _, _ := r.Peek()
						copy(dst, f)
						r.Release()
					}
					n = 0
				}
			}
		})
	}
}
