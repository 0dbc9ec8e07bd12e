package fastpath

import (
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// Benchmark shape: what a worker does per received batch (see Worker.loop).
const (
	benchBatch   = 64
	benchFlows   = 1 << 20 // 1,048,576 flows
	benchServers = 16
	benchPayload = 10  // bytes of TCP payload: a 64-byte frame
	benchStride  = 64  // bytes per frame in the arena: one cache line each
	benchAge     = 300 // DeleteAge; the clock stands still, nothing expires by itself
)

// BenchmarkProcess measures the engine per packet as a worker drives it:
// Process of a 64-frame batch, then Sweep(sweepBudget) and MaybePublish, as
// the worker loop does after every batch, so their cost is spread over the
// batch.
// Receiving and transmitting (the AF_XDP rings) are not included.
//
// Frames are built before the timed loop and never rewritten inside it.
// Process rewrites their MACs in place; that is idempotent, and the engine
// reads nothing the rewrite changes, so every pass sees the same input.
func BenchmarkProcess(b *testing.B) {
	// 1M established flows: ACK+payload frames, each flow once per pass over
	// the arena, in a fixed pseudo-random order. The arena (64 MiB of frames)
	// and the shard (64 MiB) are far larger than any cache, so this is the
	// cache-missing case: every packet's association slot comes from DRAM.
	// The frames themselves are read in arena order, which the hardware
	// prefetcher follows; a NIC writing frames into the LLC (DDIO) is
	// similar, a cold UMEM would be slower.
	//
	// Established64K is the same with 64Ki flows, whose 4 MiB of shard (and
	// 4 MiB of frames) fit in the last-level cache: the difference to
	// Established1M is what going to DRAM costs per packet.
	for _, bc := range []struct {
		name  string
		flows int
	}{
		{"Established1M", benchFlows},
		{"Established64K", 1 << 16},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e, ar := benchEstablished(b, bc.flows)
			runBatches(b, e, ar.frames, nil)
			checkCounters(b, e, func(c *Counters) bool {
				return c.NewAssociations == uint64(bc.flows) && c.Stateless == 0 && c.Reselected == 0
			})
		})
	}

	// New flows: SYNs of 1M flows none of which has an association. Each
	// pass over the arena fills the empty shard to 1M associations (load
	// factor 0 to 1/2); between passes, with the timer stopped, the clock
	// jumps past the delete age and a full Sweep empties the shard again.
	//
	// SYNs make unproven associations, which may hold half of a shard
	// (engine_guard.go): the shard holds 2M so that all 1M are recorded,
	// which puts its load factor at 1/4 by the end of a pass, not 1/2 as in
	// the base of the A/B (whose shard held 1M).
	b.Run("NewFlows", func(b *testing.B) {
		tabs := benchTables(b)
		e := newEngine(b, 2*benchFlows, tabs)
		ar := newArena(b, benchFlows)
		ar.fill(b, packet.TCPFlagSYN, nil)
		runBatches(b, e, ar.frames, func(now uint32) uint32 {
			now += benchAge + 1
			e.Sweep(4*benchFlows, now) // every slot: two per record of the 2M shard
			if live := e.Shard().Live(); live != 0 {
				b.Fatalf("Live() after a full sweep got %d, want 0", live)
			}
			e.Publish()
			return now
		})
		checkCounters(b, e, func(c *Counters) bool {
			return c.NewAssociations == c.RxPackets && c.Stateless == 0 && c.Reselected == 0
		})
	})

	// One flow, 64 copies of its ACK per batch: everything stays in L1, the
	// floor under the two cases above.
	b.Run("OneFlow", func(b *testing.B) {
		tabs := benchTables(b)
		e := newEngine(b, 1024, tabs)
		frames := make([][]byte, benchBatch)
		for i := range frames {
			frames[i] = encode(b, benchSpec(0, packet.TCPFlagACK|packet.TCPFlagPSH, make([]byte, benchPayload)))
		}
		runBatches(b, e, frames, nil)
		checkCounters(b, e, func(c *Counters) bool { return c.NewAssociations == 1 && c.Stateless == 0 })
	})
}

// runBatches processes frames in batches of benchBatch, in order and round
// and round, until the benchmark has run long enough, and reports ns/pkt.
// wrap, if not nil, runs with the timer stopped after every full pass and
// returns the clock reading to go on with.
func runBatches(b *testing.B, e *Engine, frames [][]byte, wrap func(now uint32) uint32) {
	if len(frames)%benchBatch != 0 {
		b.Fatalf("%d frames are not whole batches of %d", len(frames), benchBatch)
	}
	acts := make([]Action, benchBatch)
	now := uint32(1)
	pos := 0
	b.ReportAllocs()
	for b.Loop() {
		e.Process(frames[pos:pos+benchBatch], acts, now)
		e.Sweep(sweepBudget, now)
		e.MaybePublish()
		if pos += benchBatch; pos == len(frames) {
			pos = 0
			if wrap != nil {
				b.StopTimer()
				now = wrap(now)
				b.StartTimer()
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchBatch), "ns/pkt")
}

// checkCounters fails the benchmark unless every frame was transmitted and ok
// holds: a benchmark that drops or takes a different path measures nothing.
func checkCounters(b *testing.B, e *Engine, ok func(*Counters) bool) {
	b.Helper()
	var c Counters
	e.Publish()
	e.Snapshot(&c)
	var toServers uint64
	for _, n := range c.ServerPackets {
		toServers += n
	}
	if c.Dropped() != 0 || toServers != c.RxPackets || !ok(&c) {
		b.Fatalf("counters: RxPackets %d, to servers %d, Dropped %d, NewAssociations %d, Stateless %d, Reselected %d: not the path measured",
			c.RxPackets, toServers, c.Dropped(), c.NewAssociations, c.Stateless, c.Reselected)
	}
}

// benchTables is one IPv4 VIP, TCP port 80, with benchServers equal servers.
func benchTables(b *testing.B) *Tables {
	servers := make([]uint32, benchServers)
	for i := range servers {
		servers[i] = 1
	}
	return buildTables(b, 1, setSpec{id: 1, vip: vip4, deleteAge: benchAge, servers: weighted(servers...)})
}

// benchSpec is a frame of flow i of 1M: 2^18 client addresses in 10/8, four
// ports each.
func benchSpec(i int, flags uint8, payload []byte) packet.FrameSpec {
	return packet.FrameSpec{
		SrcMAC: routerMAC, DstMAC: lbMAC,
		Src: netip.AddrFrom4([4]byte{10, byte(i >> 18), byte(i >> 10), byte(i >> 2)}), Dst: vip4,
		Proto: packet.ProtoTCP, SrcPort: 1024 + uint16(i&3)*16001, DstPort: vipPort,
		TCPFlags: flags, Seq: uint32(i), Ack: 1, Payload: payload,
	}
}

// arena holds one frame per flow, benchStride bytes apart, in a fixed
// pseudo-random order of the flows.
type arena struct {
	buf    []byte
	order  []int // flow of each frame
	frames [][]byte
}

func newArena(b *testing.B, n int) *arena {
	r := rand.New(rand.NewPCG(1, 2))
	return &arena{buf: make([]byte, n*benchStride), order: r.Perm(n), frames: make([][]byte, n)}
}

// fill writes every flow's frame with the given flags and payload.
func (a *arena) fill(b *testing.B, flags uint8, payload []byte) {
	a.fillRange(b, 0, len(a.order), flags, payload)
}

// fillRange is fill of frames from..to-1 only.
func (a *arena) fillRange(b *testing.B, from, to int, flags uint8, payload []byte) {
	for k := from; k < to; k++ {
		flow := a.order[k]
		s := benchSpec(flow, flags, payload)
		slot := a.buf[k*benchStride : (k+1)*benchStride : (k+1)*benchStride]
		n, err := packet.Encode(slot, &s)
		if err != nil {
			b.Fatalf("Encode(flow %d) error: %v", flow, err)
		}
		a.frames[k] = slot[:n]
	}
}

// benchEstablished returns an engine whose shard holds a proven
// association for each of n flows (made by a SYN each, proven by the
// flow's ACK in the same round, as a handshake would; n a multiple of
// benchBatch), and the arena of those flows' ACK+payload frames.
func benchEstablished(b *testing.B, n int) (*Engine, *arena) {
	return benchEstablishedOn(b, n, benchTables(b))
}

// benchEstablishedOn is benchEstablished on tables tabs.
func benchEstablishedOn(b *testing.B, n int, tabs *Tables) (*Engine, *arena) {
	e := newEngine(b, n, tabs)
	ar := newArena(b, n)
	acts := make([]Action, benchBatch)
	for pos := 0; pos < n; pos += benchBatch {
		for _, flags := range []uint8{packet.TCPFlagSYN, packet.TCPFlagACK} {
			ar.fillRange(b, pos, pos+benchBatch, flags, nil) // a NAT engine rewrites what it forwards: fresh frames
			e.Process(ar.frames[pos:pos+benchBatch], acts, 1)
		}
		e.Publish()
	}
	ar.fill(b, packet.TCPFlagACK|packet.TCPFlagPSH, make([]byte, benchPayload))
	if live, unproven := e.Shard().Live(), e.Shard().Unproven(); live != n || unproven != 0 {
		b.Fatalf("Live(), Unproven() after a SYN and an ACK per flow got %d, %d, want %d, 0", live, unproven, n)
	}
	return e, ar
}
