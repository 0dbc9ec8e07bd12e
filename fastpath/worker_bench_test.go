package fastpath

import (
	"sync/atomic"
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/fastpath/xsk"
)

// BenchmarkWorker measures the worker loop per packet in user space: what a
// worker costs on top of the engine, and on top of the floor every AF_XDP
// forwarder pays (issue 14's overhead over bench/xskfwd). The port is
// benchPort, which hands out full batches of frames that are already there
// and takes every frame to transmit, so the kernel's share (the copy into
// the UMEM, the TX kick) is not in these figures; the benchmark harness's
// overhead accounting measures that part on the lab topology.
//
//   - Floor: bench/xskfwd's loop (receive, rewrite both MACs, transmit,
//     recycle) on the same port, called directly as xskfwd calls its socket.
//   - Loop/OneFlow: Worker.iterate with one flow, everything in L1: the
//     worker's own overhead plus the engine's floor.
//   - Loop/Established1M: 1M established flows, association slots from DRAM.
//
// BenchmarkProcess has the engine alone for the same flows, so Loop minus
// Process is the loop's overhead and Loop minus Floor the whole overhead.
func BenchmarkWorker(b *testing.B) {
	b.Run("Floor", func(b *testing.B) {
		frames := make([][]byte, benchBatch)
		for i := range frames {
			frames[i] = encode(b, benchSpec(0, packet.TCPFlagACK|packet.TCPFlagPSH, make([]byte, benchPayload)))
		}
		p := newBenchPort(frames)
		descs := make([]xsk.Desc, benchBatch)
		dst, src := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
		b.ReportAllocs()
		for b.Loop() {
			n := p.Receive(descs)
			batch := descs[:n]
			for _, d := range batch {
				fr := p.Frame(d)
				if len(fr) < 12 {
					continue
				}
				copy(fr[0:6], dst[:])
				copy(fr[6:12], src[:])
			}
			sent := p.Transmit(batch)
			for _, d := range batch[sent:] {
				p.Release(d.Addr)
			}
			p.Recycle()
		}
		reportPerPacket(b, p)
	})
	b.Run("Loop/OneFlow", func(b *testing.B) {
		frames := make([][]byte, benchBatch)
		for i := range frames {
			frames[i] = encode(b, benchSpec(0, packet.TCPFlagACK|packet.TCPFlagPSH, make([]byte, benchPayload)))
		}
		benchLoop(b, newEngine(b, 1024, benchTables(b)), frames)
	})
	b.Run("Loop/Established1M", func(b *testing.B) {
		e, ar := benchEstablished(b, benchFlows)
		benchLoop(b, e, ar.frames)
	})
	// Idle: ns per loop iteration that finds the RX ring empty (busy_poll
	// true, a 1M-flow shard to sweep): how long a frame that arrives just
	// after the worker looked waits for the next look, at most.
	b.Run("Idle", func(b *testing.B) {
		e, _ := benchEstablished(b, benchFlows)
		p := newBenchPort(nil)
		var tabs atomic.Pointer[Tables]
		tabs.Store(e.tables)
		w := newWorker(p, e, &tabs, workerConfig{iface: "bench0", cpu: -1, busyPoll: true, batch: benchBatch, slotSize: 2048})
		var st loopState
		b.ReportAllocs()
		for b.Loop() {
			w.iterate(&st)
		}
	})
}

// benchLoop runs Worker.iterate on a benchPort over frames with e's tables
// and reports ns/pkt.
func benchLoop(b *testing.B, e *Engine, frames [][]byte) {
	p := newBenchPort(frames)
	var tabs atomic.Pointer[Tables]
	tabs.Store(e.tables)
	w := newWorker(p, e, &tabs, workerConfig{iface: "bench0", cpu: -1, busyPoll: true, batch: benchBatch, slotSize: 2048})
	var st loopState
	b.ReportAllocs()
	for b.Loop() {
		w.iterate(&st)
	}
	if p.received != p.sent {
		b.Fatalf("received %d frames, transmitted %d: not the path measured", p.received, p.sent)
	}
	reportPerPacket(b, p)
}

func reportPerPacket(b *testing.B, p *benchPort) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(p.received), "ns/pkt")
}

// benchPort is a Port whose RX ring always holds a full batch: the next
// frames of a fixed set, round and round. Every frame offered for
// transmission is taken, and completes at once. Frames live in one arena (the
// UMEM); a descriptor's address is the frame's offset in it.
type benchPort struct {
	umem     []byte
	descs    []xsk.Desc // one per frame, in order
	pos      int
	received uint64
	sent     uint64
}

// newBenchPort copies frames into an arena of 2048-byte frames, 256 bytes
// into each as AF_XDP copy mode places them. For more than a few thousand
// frames the arena is large; the 1M-flow case keeps them 64 bytes apart
// instead (frame size then 64), as BenchmarkProcess's arena does.
func newBenchPort(frames [][]byte) *benchPort {
	stride, head := 2048, 256
	if len(frames) > 4096 {
		stride, head = benchStride, 0
	}
	p := &benchPort{umem: make([]byte, len(frames)*stride)}
	for i, f := range frames {
		off := i*stride + head
		copy(p.umem[off:], f)
		p.descs = append(p.descs, xsk.Desc{Addr: uint64(off), Len: uint32(len(f))})
	}
	return p
}

func (p *benchPort) Receive(out []xsk.Desc) int {
	if len(p.descs) == 0 {
		return 0
	}
	n := min(len(out), len(p.descs)-p.pos)
	copy(out, p.descs[p.pos:p.pos+n])
	if p.pos += n; p.pos == len(p.descs) {
		p.pos = 0
	}
	p.received += uint64(n)
	return n
}

func (p *benchPort) Frame(d xsk.Desc) []byte {
	return p.umem[d.Addr : d.Addr+uint64(d.Len) : d.Addr+uint64(d.Len)]
}

func (p *benchPort) Transmit(in []xsk.Desc) int {
	p.sent += uint64(len(in))
	return len(in)
}

func (p *benchPort) Release(addr uint64)        {}
func (p *benchPort) Recycle()                   {}
func (p *benchPort) AllocTx(out []xsk.Desc) int { return 0 }
func (p *benchPort) Wait(timeoutMs int) error   { return nil }
func (p *benchPort) Wake()                      {}
func (p *benchPort) Stats() (xsk.Stats, error)  { return xsk.Stats{}, nil }
