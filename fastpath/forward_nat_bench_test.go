package fastpath

import (
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// BenchmarkNATPath is BenchmarkProcess for a NAT set: the same 1M (and
// 64Ki) established flows of ACK+payload frames, translated to their
// servers (ToServer), and the servers' replies, translated back to the VIP
// and routed to the clients' next hop (Reply). The arena is restored after
// every pass, timer stopped. Replies are found in the
// engine's own shard (one RX queue; across shards see BenchmarkLookup in
// fastpath/assoc) and do not go through the batch prefetch, which only
// knows the client's direction.
func BenchmarkNATPath(b *testing.B) {
	for _, bc := range []struct {
		name  string
		flows int
	}{
		{"Established1M", benchFlows},
		{"Established64K", 1 << 16},
	} {
		b.Run("ToServer"+bc.name, func(b *testing.B) {
			e, ar := benchNATEstablished(b, bc.flows)
			runBatches(b, e, ar.frames, ar.restore())
			checkNATCounters(b, e)
		})
		b.Run("Reply"+bc.name, func(b *testing.B) {
			e, ar := benchNATEstablished(b, bc.flows)
			ar.fillReplies(b, e)
			runBatches(b, e, ar.frames, ar.restore())
			checkNATCounters(b, e)
		})
	}
}

// restore returns runBatches' wrap function that puts the arena's frames
// back as they are now: translation rewrites addresses, which unlike the MAC
// rewrite of DSR is not idempotent. The copy runs with the timer stopped.
func (a *arena) restore() func(now uint32) uint32 {
	pristine := append([]byte(nil), a.buf...)
	return func(now uint32) uint32 {
		copy(a.buf, pristine)
		return now
	}
}

// benchNATTables is benchTables with NAT forwarding, servers on
// 198.51.100.0/24 and the clients (10/8) routed through routerMAC.
func benchNATTables(b *testing.B) *Tables {
	t := benchTables(b)
	sets := t.Sets()
	for _, ts := range sets {
		ts.Forwarding = FwdNAT
		for s := range ts.Servers {
			ts.Servers[s].Addr = natServer(ts.ID, s, false)
			ts.Servers[s].Egress = testIface
		}
	}
	nt, err := NewTables(2, sets)
	if err != nil {
		b.Fatal(err)
	}
	r, err := NewRoutes([]Route{{Prefix: MappedPrefix(netip.MustParsePrefix("10.0.0.0/8")), Iface: testIface,
		MAC: routerMAC, HasMAC: true}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	nt.Routes = new(RouteCell)
	nt.Routes.Store(r)
	return nt
}

// benchNATEstablished is benchEstablished on benchNATTables.
func benchNATEstablished(b *testing.B, n int) (*Engine, *arena) {
	return benchEstablishedOn(b, n, benchNATTables(b))
}

// fillReplies rewrites the arena with each flow's reply from the server its
// association names.
func (a *arena) fillReplies(b *testing.B, e *Engine) {
	for k, flow := range a.order {
		s := benchSpec(flow, packet.TCPFlagACK|packet.TCPFlagPSH, make([]byte, benchPayload))
		key := assoc.Key{Addr: s.Src.As16(), Port: s.SrcPort, Proto: packet.ProtoTCP, Set: 1}
		v, ok := e.Shard().Get(&key)
		if !ok {
			b.Fatalf("flow %d has no association", flow)
		}
		s.Src, s.Dst = natServer(1, int(v.Server), false), s.Src
		s.SrcPort, s.DstPort = s.DstPort, s.SrcPort
		slot := a.buf[k*benchStride : (k+1)*benchStride : (k+1)*benchStride]
		n, err := packet.Encode(slot, &s)
		if err != nil {
			b.Fatal(err)
		}
		a.frames[k] = slot[:n]
	}
}

// checkNATCounters fails the benchmark unless every frame was translated.
func checkNATCounters(b *testing.B, e *Engine) {
	b.Helper()
	c := published(e)
	if c.Dropped() != 0 || c.Forwarded[FwdNAT] != c.RxPackets || c.Stateless != 0 {
		b.Fatalf("counters: RxPackets %d, Forwarded[nat] %d, Dropped %d (%v), Stateless %d: not the path measured",
			c.RxPackets, c.Forwarded[FwdNAT], c.Dropped(), c.Drops, c.Stateless)
	}
}
