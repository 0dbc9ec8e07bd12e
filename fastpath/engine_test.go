package fastpath

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/maglev"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// TestDistribution sends one SYN for each of 30000 flows to a set weighted
// 1:2:3 and checks every server's share of the published packet counters
// against its weight share.
func TestDistribution(t *testing.T) {
	const setID, flows = 7, 30000
	weights := []uint32{1, 2, 3}
	for _, tc := range []struct {
		name string
		vip  netip.Addr
	}{
		{"IPv4", vip4},
		{"IPv6", vip6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, 2*flows, buildTables(t, 1, setSpec{id: setID, vip: tc.vip, servers: weighted(weights...)}))
			frames := make([][]byte, flows)
			for i := range frames {
				frames[i] = tcp(t, client(tc.vip.Is6(), i/100), uint16(20000+i%100), packet.TCPFlagSYN)
			}
			for i, a := range send(e, 1, frames...) {
				if a != Transmit {
					t.Fatalf("flow %d: verdict %d, want Transmit", i, a)
				}
			}
			c := published(e)
			if c.RxPackets != flows || c.NewAssociations != flows || c.Stateless != 0 {
				t.Fatalf("RxPackets, NewAssociations, Stateless = %d, %d, %d, want %d, %d, 0",
					c.RxPackets, c.NewAssociations, c.Stateless, flows, flows)
			}
			var sum, total uint64
			for _, w := range weights {
				sum += uint64(w)
			}
			for j, n := range c.ServerPackets {
				total += n
				if n != 0 && j/MaxServers != setID {
					t.Errorf("ServerPackets[%d] = %d, want 0 (not set %d)", j, n, setID)
				}
			}
			if total != flows {
				t.Fatalf("ServerPackets sum = %d, want %d", total, flows)
			}
			for slot, w := range weights {
				got := float64(c.ServerPackets[setID*MaxServers+slot]) / flows
				want := float64(w) / float64(sum)
				if math.Abs(got-want) > 0.01 {
					t.Errorf("server %d (weight %d): share got %.4f, want %.4f ± 0.01", slot, w, got, want)
				}
			}
		})
	}
}

// TestStickiness replaces the tables under established flows. Flows keep
// their server while it keeps its slot and generation, whatever Maglev now
// says; they move on their next packet, once, when it was replaced, removed
// or marked Reselect. New flows always follow the new tables.
func TestStickiness(t *testing.T) {
	const setID, n = 2, 3000
	tabA := buildTables(t, 1, setSpec{id: setID, vip: vip4, servers: weighted(1, 1, 1)})
	for _, tc := range []struct {
		name    string
		servers []srv
		gone    int // slot whose flows must move, -1 for none
	}{
		{"weights changed", weighted(4, 2, 1), -1},
		{"slot 1 replaced (new Gen)", []srv{{weight: 1}, {weight: 1, gen: 2, key: "10.99.0.1:80"}, {weight: 1}}, 1},
		{"slot 1 not present", []srv{{weight: 1}, {absent: true}, {weight: 1}}, 1},
		{"slot 1 reselect", []srv{{weight: 1}, {reselect: true}, {weight: 1}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, 4*n, tabA)
			was := make([]int, n)
			for i := range was {
				if was[i] = route(t, e, 1, tcp(t, client(false, i), 40000, packet.TCPFlagSYN)); was[i] < 0 {
					t.Fatalf("flow %d: SYN dropped", i)
				}
			}
			tabB := buildTables(t, 2, setSpec{id: setID, vip: vip4, servers: tc.servers})
			tsB := tabB.Set(setID)
			e.SetTables(tabB)

			var disagree, moved int
			for i := range was {
				c := client(false, i)
				want := was[i]
				if maglevSlot(tsB, c, 40000, packet.ProtoTCP) != want {
					disagree++
				}
				if want == tc.gone {
					want = maglevSlot(tsB, c, 40000, packet.ProtoTCP)
					moved++
				}
				for pkt := range 2 { // the second packet finds the new association
					if got := route(t, e, 2, tcp(t, c, 40000, packet.TCPFlagACK)); got != want {
						t.Fatalf("flow %d on server %d, packet %d: got server %d, want %d", i, was[i], pkt, got, want)
					}
				}
				if tc.gone >= 0 && was[i] == tc.gone {
					k := key(c, 40000, packet.ProtoTCP, setID)
					if v, ok := e.Shard().Get(&k); !ok || int(v.Server) != want || v.Gen != tsB.Servers[want].Gen {
						t.Fatalf("flow %d: association %+v, %v, want server %d gen %d", i, v, ok, want, tsB.Servers[want].Gen)
					}
				}
			}
			if disagree < n/10 {
				t.Fatalf("fixture: new tables move only %d of %d flows, too few to tell", disagree, n)
			}
			if moved == 0 && tc.gone >= 0 {
				t.Fatalf("fixture: no flow was on server %d", tc.gone)
			}
			if c := published(e); c.Reselected != uint64(moved) {
				t.Errorf("Reselected got %d, want %d", c.Reselected, moved)
			}
			for i := range 1000 {
				c := client(false, n+i)
				if got, want := route(t, e, 2, tcp(t, c, 40000, packet.TCPFlagSYN)), maglevSlot(tsB, c, 40000, packet.ProtoTCP); got != want {
					t.Fatalf("new flow %d: got server %d, want %d", i, got, want)
				}
			}
		})
	}
}

// twoTables returns the tables of one set before and after a weight change,
// with a flow from c that Maglev moves between them.
func twoTables(t *testing.T, s setSpec, c netip.Addr, proto uint8) (a, b *Tables, port uint16, slotA, slotB int) {
	t.Helper()
	s.servers = weighted(1, 1, 1)
	a = buildTables(t, 1, s)
	s.servers = weighted(1, 2, 4)
	b = buildTables(t, 2, s)
	port, slotA, slotB = mover(t, a.Set(s.id), b.Set(s.id), c, proto, 1024)
	return a, b, port, slotA, slotB
}

// TestIdleExpiry: an association idle for longer than DeleteAge is stale and
// the flow is balanced afresh; one idle for exactly DeleteAge is kept.
func TestIdleExpiry(t *testing.T) {
	c := client(false, 1)
	for _, tc := range []struct {
		name        string
		start, idle uint32
		expired     bool
	}{
		{"idle 0", 100, 0, false},
		{"idle DeleteAge", 100, testAge, false},
		{"idle DeleteAge+1", 100, testAge + 1, true},
		{"idle one hour", 100, 3600, true},
		{"idle DeleteAge across clock wrap", clockMask - 4, testAge, false},
		{"idle DeleteAge+1 across clock wrap", clockMask - 4, testAge + 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tabA, tabB, port, slotA, slotB := twoTables(t, setSpec{id: 1, vip: vip4}, c, packet.ProtoTCP)
			e := newEngine(t, 16, tabA)
			if got := route(t, e, tc.start, tcp(t, c, port, packet.TCPFlagSYN)); got != slotA {
				t.Fatalf("SYN: got server %d, want %d", got, slotA)
			}
			e.SetTables(tabB)
			now := (tc.start + tc.idle) & clockMask
			want, wantExpired := slotA, uint64(0)
			if tc.expired {
				want, wantExpired = slotB, 1
			}
			if got := route(t, e, now, tcp(t, c, port, packet.TCPFlagACK)); got != want {
				t.Errorf("ACK after %ds idle: got server %d, want %d", tc.idle, got, want)
			}
			if got := published(e).Expired; got != wantExpired {
				t.Errorf("Expired got %d, want %d", got, wantExpired)
			}
			k := key(c, port, packet.ProtoTCP, 1)
			if v, ok := e.Shard().Get(&k); !ok || int(v.Server) != want || v.LastSeen != now {
				t.Errorf("association got %+v, %v, want server %d last seen %d", v, ok, want, now)
			}
		})
	}
}

// TestTCPTeardown: a SYN (without ACK) from a client port whose connection
// was seen closing (FIN or RST from the client) starts a new connection and
// is balanced afresh; nothing else re-selects.
func TestTCPTeardown(t *testing.T) {
	const (
		fin = packet.TCPFlagFIN
		syn = packet.TCPFlagSYN
		rst = packet.TCPFlagRST
		ack = packet.TCPFlagACK
	)
	c := client(false, 2)
	for _, tc := range []struct {
		name       string
		flags      []uint8 // packets after SYN, ACK and the weight change
		want       string  // per packet: A the old server, B the one Maglev now gives
		reselected uint64
		assoc      uint8 // flags of the association afterwards
	}{
		{"FIN then SYN", []uint8{fin, syn}, "AB", 1, 0},
		{"FIN+ACK then SYN", []uint8{fin | ack, syn}, "AB", 1, 0},
		{"RST then SYN", []uint8{rst, syn}, "AB", 1, 0},
		{"RST+ACK then SYN", []uint8{rst | ack, syn}, "AB", 1, 0},
		{"FIN, ACK, then SYN", []uint8{fin | ack, ack, syn}, "AAB", 1, 0},
		{"SYN after FIN re-selects once", []uint8{fin, syn, syn, ack}, "ABBB", 1, assoc.FlagProven},
		{"FIN then SYN-ACK", []uint8{fin | ack, syn | ack}, "AA", 0, assoc.FlagFIN | assoc.FlagProven},
		{"FIN then ACK", []uint8{fin | ack, ack}, "AA", 0, assoc.FlagFIN | assoc.FlagProven},
		{"RST then ACK", []uint8{rst, ack}, "AA", 0, assoc.FlagRST | assoc.FlagProven},
		{"SYN without FIN or RST", []uint8{syn}, "A", 0, assoc.FlagProven},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tabA, tabB, port, slotA, slotB := twoTables(t, setSpec{id: 1, vip: vip4}, c, packet.ProtoTCP)
			e := newEngine(t, 16, tabA)
			for _, fl := range []uint8{syn, ack} {
				if got := route(t, e, 1, tcp(t, c, port, fl)); got != slotA {
					t.Fatalf("handshake: got server %d, want %d", got, slotA)
				}
			}
			e.SetTables(tabB)
			for i, fl := range tc.flags {
				want := slotA
				if tc.want[i] == 'B' {
					want = slotB
				}
				if got := route(t, e, 2, tcp(t, c, port, fl)); got != want {
					t.Fatalf("packet %d (flags %#x): got server %d, want %d", i, fl, got, want)
				}
			}
			if got := published(e).Reselected; got != tc.reselected {
				t.Errorf("Reselected got %d, want %d", got, tc.reselected)
			}
			k := key(c, port, packet.ProtoTCP, 1)
			if v, ok := e.Shard().Get(&k); !ok || v.Flags != tc.assoc {
				t.Errorf("association flags got %#x (found %v), want %#x", v.Flags, ok, tc.assoc)
			}
		})
	}
}

// TestSCTPTeardown: the first chunk after INIT teaches the association the
// client's verification tag; a SHUTDOWN, SHUTDOWN ACK or ABORT carrying that
// tag is recorded, and an INIT after it starts a new association, balanced
// afresh. A teardown chunk before the tag is known or with another tag, and
// an INIT alone, change nothing (anyone can forge them).
func TestSCTPTeardown(t *testing.T) {
	const tag, tag2 = 0x7a6b5c4d, 0x11223344
	type chunk struct {
		typ uint8
		tag uint32
	}
	var (
		initC   = chunk{packet.SCTPChunkInit, 0}
		data    = chunk{packet.SCTPChunkData, tag}
		data2   = chunk{packet.SCTPChunkData, tag2}
		cookie  = chunk{packet.SCTPChunkCookieEcho, tag}
		shut    = chunk{packet.SCTPChunkShutdown, tag}
		shut0   = chunk{packet.SCTPChunkShutdown, 0}    // before the tag is known
		shut2   = chunk{packet.SCTPChunkShutdown, tag2} // another tag than the learned one
		shutAck = chunk{packet.SCTPChunkShutdownAck, tag}
		abort   = chunk{packet.SCTPChunkAbort, tag}
	)
	c := client(false, 3)
	for _, tc := range []struct {
		name       string
		chunks     []chunk // packets after INIT and the weight change
		want       string  // per packet: A the old server, B the one Maglev now gives
		reselected uint64
		flags      uint8  // of the association afterwards
		tag        uint32 // of the association afterwards
	}{
		{"INIT retransmitted before the tag is known", []chunk{initC}, "A", 0, 0, 0},
		{"COOKIE ECHO learns the tag", []chunk{cookie}, "A", 0, assoc.FlagTagLearned, tag},
		{"DATA learns the tag", []chunk{data, data}, "AA", 0, assoc.FlagTagLearned, tag},
		{"learned tag is kept", []chunk{data, data2}, "AA", 0, assoc.FlagTagLearned, tag},
		{"SHUTDOWN is recorded", []chunk{data, shut}, "AA", 0, assoc.FlagShutdown | assoc.FlagTagLearned, tag},
		{"SHUTDOWN ACK is recorded", []chunk{data, shutAck}, "AA", 0, assoc.FlagShutdown | assoc.FlagTagLearned, tag},
		{"SHUTDOWN before the tag is known is not recorded", []chunk{shut0}, "A", 0, 0, 0},
		{"SHUTDOWN before the tag is known then INIT", []chunk{shut0, initC}, "AA", 0, 0, 0},
		{"SHUTDOWN with another tag is not recorded", []chunk{data, shut2, initC}, "AAA", 0, assoc.FlagTagLearned, tag},
		{"ABORT first after INIT only teaches the tag", []chunk{abort}, "A", 0, assoc.FlagTagLearned, tag},
		{"SHUTDOWN then INIT", []chunk{data, shut, initC}, "AAB", 1, 0, 0},
		{"SHUTDOWN ACK then INIT", []chunk{data, shutAck, initC}, "AAB", 1, 0, 0},
		{"ABORT then INIT", []chunk{data, abort, initC}, "AAB", 1, 0, 0},
		{"ABORT first after INIT then INIT", []chunk{abort, initC}, "AA", 0, assoc.FlagTagLearned, tag},
		{"INIT alone does not move a known association", []chunk{data, initC}, "AA", 0, assoc.FlagTagLearned, tag},
		{"new association learns its tag", []chunk{data, shut, initC, data2}, "AABB", 1, assoc.FlagTagLearned, tag2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := setSpec{id: 5, vip: vip4, protos: ProtoBitSCTP, ports: []PortRange{{sctpPort, sctpPort}}}
			tabA, tabB, port, slotA, slotB := twoTables(t, s, c, packet.ProtoSCTP)
			e := newEngine(t, 16, tabA)
			if got := route(t, e, 1, sctp(t, c, port, initC.typ, initC.tag)); got != slotA {
				t.Fatalf("INIT: got server %d, want %d", got, slotA)
			}
			e.SetTables(tabB)
			for i, ch := range tc.chunks {
				want := slotA
				if tc.want[i] == 'B' {
					want = slotB
				}
				if got := route(t, e, 2, sctp(t, c, port, ch.typ, ch.tag)); got != want {
					t.Fatalf("packet %d (chunk %d tag %#x): got server %d, want %d", i, ch.typ, ch.tag, got, want)
				}
			}
			if got := published(e).Reselected; got != tc.reselected {
				t.Errorf("Reselected got %d, want %d", got, tc.reselected)
			}
			k := key(c, port, packet.ProtoSCTP, 5)
			if v, ok := e.Shard().Get(&k); !ok || v.Flags != tc.flags || v.Tag != tc.tag {
				t.Errorf("association got flags %#x tag %#x (found %v), want flags %#x tag %#x", v.Flags, v.Tag, ok, tc.flags, tc.tag)
			}
		})
	}
}

// TestSweep: Sweep turns associations idle for longer than DeleteAge into
// free slots and counts them; a flow that comes back is new, not re-selected.
func TestSweep(t *testing.T) {
	const limit, old, young = 1000, 100, 50
	tab := buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1, 1, 1)})
	e := newEngine(t, limit, tab)
	flow := func(i int) []byte { return tcp(t, client(false, i), 5000, packet.TCPFlagSYN) }
	for i := range old {
		send(e, 10, flow(i))
	}
	for i := range young {
		send(e, 25, flow(old+i))
	}
	for _, step := range []struct {
		now           uint32
		live, expired int
	}{
		{40, old + young, 0}, // old flows idle exactly DeleteAge
		{41, young, old},
		{55, young, old},
		{56, 0, old + young},
	} {
		e.Sweep(2*limit, step.now) // every slot
		c := published(e)
		if got := e.Shard().Live(); got != step.live {
			t.Errorf("at %d: Live() got %d, want %d", step.now, got, step.live)
		}
		if c.Expired != uint64(step.expired) {
			t.Errorf("at %d: Expired got %d, want %d", step.now, c.Expired, step.expired)
		}
	}
	k := key(client(false, 0), 5000, packet.ProtoTCP, 1)
	if v, ok := e.Shard().Get(&k); ok {
		t.Errorf("swept association still there: %+v", v)
	}
	send(e, 60, flow(0))
	if c := published(e); c.NewAssociations != old+young+1 || c.Reselected != 0 || e.Shard().Live() != 1 {
		t.Errorf("returning flow: NewAssociations, Reselected, Live got %d, %d, %d, want %d, 0, 1",
			c.NewAssociations, c.Reselected, e.Shard().Live(), old+young+1)
	}

	// Without tables there are no delete ages, and nothing to sweep for.
	e.SetTables(nil)
	e.Sweep(2*limit, 1000)
	if got := e.Shard().Live(); got != 1 {
		t.Errorf("Sweep without tables: Live() got %d, want 1", got)
	}
}

// TestFullShard: once the shard holds its limit, new flows are forwarded
// statelessly and counted, and the associations it holds keep working. The
// flows start mid-connection (ACK): SYNs would stop at the unproven share,
// half the shard (TestSYNFlood).
func TestFullShard(t *testing.T) {
	const limit, flows = 100, 150
	c := func(i int) netip.Addr { return client(false, i) }
	tabA := buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1, 1, 1)})
	tabB := buildTables(t, 2, setSpec{id: 1, vip: vip4, servers: weighted(1, 2, 4)})
	e := newEngine(t, limit, tabA)
	frames := make([][]byte, flows)
	for i := range frames {
		frames[i] = tcp(t, c(i), 6000, packet.TCPFlagACK)
	}
	for i, a := range send(e, 1, frames...) {
		if a != Transmit {
			t.Fatalf("ACK %d: verdict %d, want Transmit", i, a)
		}
	}
	was := make([]int, flows)
	for i, f := range frames {
		was[i] = slotOf(t, e, f)
	}
	cnt := published(e)
	if cnt.NewAssociations != limit || cnt.Stateless != flows-limit || e.Shard().Live() != limit {
		t.Fatalf("NewAssociations, Stateless, Live got %d, %d, %d, want %d, %d, %d",
			cnt.NewAssociations, cnt.Stateless, e.Shard().Live(), limit, flows-limit, limit)
	}
	for i := range flows {
		k := key(c(i), 6000, packet.ProtoTCP, 1)
		if _, ok := e.Shard().Get(&k); ok != (i < limit) {
			t.Errorf("flow %d: association found %v, want %v", i, ok, i < limit)
		}
	}

	// After a weight change, the recorded flows stay; the others follow Maglev.
	e.SetTables(tabB)
	disagree := 0
	for i := range flows {
		want := maglevSlot(tabB.Set(1), c(i), 6000, packet.ProtoTCP)
		if i < limit {
			if want != was[i] {
				disagree++
			}
			want = was[i]
		}
		if got := route(t, e, 2, tcp(t, c(i), 6000, packet.TCPFlagACK)); got != want {
			t.Errorf("ACK %d: got server %d, want %d", i, got, want)
		}
	}
	if disagree == 0 {
		t.Fatal("fixture: the weight change moves none of the recorded flows")
	}
	if cnt = published(e); cnt.Stateless != 2*(flows-limit) || cnt.NewAssociations != limit || cnt.Dropped() != 0 {
		t.Errorf("Stateless, NewAssociations, Dropped got %d, %d, %d, want %d, %d, 0",
			cnt.Stateless, cnt.NewAssociations, cnt.Dropped(), 2*(flows-limit), limit)
	}
}

// TestICMPErrors: an ICMP error about a flow's reply goes to the server of the
// flow's association, or where Maglev sends the flow if it has none; ICMP
// that is not an error is dropped.
func TestICMPErrors(t *testing.T) {
	for _, tc := range []struct {
		name            string
		v6              bool
		typ, code, echo uint8
		rest            uint32
	}{
		{"ICMPv4 fragmentation needed", false, packet.ICMPv4DestUnreachable, packet.ICMPv4CodeFragNeeded, packet.ICMPv4EchoRequest, 1400},
		{"ICMPv6 packet too big", true, packet.ICMPv6PacketTooBig, 0, packet.ICMPv6EchoRequest, 1280},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vip := vip4
			if tc.v6 {
				vip = vip6
			}
			c := client(tc.v6, 4)
			tabA, tabB, port, slotA, _ := twoTables(t, setSpec{id: 3, vip: vip}, c, packet.ProtoTCP)
			e := newEngine(t, 16, tabA)
			if got := route(t, e, 1, tcp(t, c, port, packet.TCPFlagSYN)); got != slotA {
				t.Fatalf("SYN: got server %d, want %d", got, slotA)
			}
			e.SetTables(tabB)
			if got := route(t, e, 2, icmpError(t, c, port, tc.typ, tc.code, tc.rest)); got != slotA {
				t.Errorf("error about an associated flow: got server %d, want %d (its association)", got, slotA)
			}
			other, _, slotB := mover(t, tabA.Set(3), tabB.Set(3), c, packet.ProtoTCP, port+1)
			if got := route(t, e, 2, icmpError(t, c, other, tc.typ, tc.code, tc.rest)); got != slotB {
				t.Errorf("error about a flow without association: got server %d, want %d (Maglev's)", got, slotB)
			}
			if got := e.Shard().Live(); got != 1 {
				t.Errorf("Live() got %d, want 1: ICMP errors make no associations", got)
			}
			if a := send(e, 2, echo(t, c))[0]; a != Drop {
				t.Errorf("echo request: verdict %d, want Drop", a)
			}
			cnt := published(e)
			if cnt.ICMPForwarded != 2 || cnt.NewAssociations != 1 {
				t.Errorf("ICMPForwarded, NewAssociations got %d, %d, want 2, 1", cnt.ICMPForwarded, cnt.NewAssociations)
			}
			r := Reason(packet.ICMPNotError)
			if cnt.Drops[r] != 1 || cnt.Dropped() != 1 || r.String() != "icmp_not_error" {
				t.Errorf("Drops[%s] = %d of %d, want Drops[icmp_not_error] = 1 of 1", r, cnt.Drops[r], cnt.Dropped())
			}
		})
	}

	// The association's server is being left (failed with reselect, or
	// removed): the error goes where the flow's next packet will, not to
	// the server it is leaving.
	t.Run("server being left", func(t *testing.T) {
		c := client(false, 6)
		const port = 4000
		tabA := buildTables(t, 1, setSpec{id: 3, vip: vip4, servers: weighted(1, 1, 1)})
		e := newEngine(t, 16, tabA)
		slotA := route(t, e, 1, tcp(t, c, port, packet.TCPFlagSYN))
		servers := weighted(1, 1, 1)
		servers[slotA] = srv{weight: 0, reselect: true}
		tabC := buildTables(t, 2, setSpec{id: 3, vip: vip4, servers: servers})
		e.SetTables(tabC)
		want := int(tabC.Set(3).Maglev.Lookup(maglev.Hash(c.As16(), port, packet.ProtoTCP)))
		if want == slotA {
			t.Fatalf("Maglev still gives server %d, which is being left", slotA)
		}
		if got := route(t, e, 2, icmpError(t, c, port, packet.ICMPv4DestUnreachable, packet.ICMPv4CodeFragNeeded, 1400)); got != want {
			t.Errorf("error about a flow whose server is being left: got server %d, want %d (not %d)", got, want, slotA)
		}
	})

	// An ICMP error that cannot be sent on is a drop, not a forward.
	t.Run("server unresolved", func(t *testing.T) {
		e := newEngine(t, 16, buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: []srv{{weight: 1, noMAC: true}}}))
		if a := send(e, 1, icmpError(t, client(false, 5), 7000, packet.ICMPv4DestUnreachable, packet.ICMPv4CodeFragNeeded, 1400))[0]; a != Drop {
			t.Fatalf("verdict %d, want Drop", a)
		}
		cnt := published(e)
		if cnt.ICMPForwarded != 0 || cnt.Drops[DropNeighborUnresolved] != 1 {
			t.Errorf("ICMPForwarded, Drops[neighbor_unresolved] got %d, %d, want 0, 1", cnt.ICMPForwarded, cnt.Drops[DropNeighborUnresolved])
		}
	})
}

// TestDrops: every frame the engine refuses is counted under exactly one
// named reason and left unmodified.
func TestDrops(t *testing.T) {
	tabs := buildTables(t, 1,
		setSpec{id: 1, vip: vip4, servers: weighted(1, 1, 1)},
		setSpec{id: 2, vip: netip.MustParseAddr("192.0.2.20"), servers: weighted(0, 0)},
		setSpec{id: 3, vip: netip.MustParseAddr("192.0.2.30"), servers: []srv{{weight: 1, noMAC: true}}},
	)
	c := client(false, 9)
	ok := func() []byte { return tcp(t, c, 8000, packet.TCPFlagSYN) }
	mod := func(b []byte, f func(b []byte)) []byte { f(b); return b }
	const l3, l4 = packet.EthernetHeaderLen, packet.EthernetHeaderLen + packet.IPv4MinHeaderLen
	udp := encode(t, packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c, Dst: vip4,
		Proto: packet.ProtoUDP, SrcPort: 8000, DstPort: vipPort})
	cutQuote := encode(t, packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: router4, Dst: vip4,
		Proto: packet.ProtoICMP, ICMPType: packet.ICMPv4DestUnreachable, ICMPCode: packet.ICMPv4CodeFragNeeded,
		Quote: quote(t, vip4, c, 8000)[:packet.IPv4MinHeaderLen]})
	vlan := encode(t, packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, VLAN: 100, Src: c, Dst: vip4,
		Proto: packet.ProtoTCP, SrcPort: 8000, DstPort: vipPort, TCPFlags: packet.TCPFlagSYN})
	tripleTagged := append(append(vlan[:12:12], 0x81, 0x00, 0x00, 0x65, 0x81, 0x00, 0x00, 0x66), vlan[12:]...)

	for _, tc := range []struct {
		name     string
		frame    []byte
		noTables bool
		want     Reason
		label    string
	}{
		{"wrong port on the VIP", tcpTo(t, c, 8000, vip4, 81, packet.TCPFlagSYN), false, DropNoTargetSet, "no_target_set"},
		{"wrong protocol on the VIP", udp, false, DropNoTargetSet, "no_target_set"},
		{"not a VIP", tcpTo(t, c, 8000, netip.MustParseAddr("192.0.2.99"), vipPort, packet.TCPFlagSYN), false, DropNoTargetSet, "no_target_set"},
		{"no tables yet", ok(), true, DropNoTargetSet, "no_target_set"},
		{"every weight 0", tcpTo(t, c, 8000, netip.MustParseAddr("192.0.2.20"), vipPort, packet.TCPFlagSYN), false, DropNoServer, "no_server"},
		{"server MAC unresolved", tcpTo(t, c, 8000, netip.MustParseAddr("192.0.2.30"), vipPort, packet.TCPFlagSYN), false, DropNeighborUnresolved, "neighbor_unresolved"},
		{"shorter than Ethernet", ok()[:10], false, Reason(packet.Truncated), "truncated"},
		{"IPv4 header cut", ok()[:30], false, Reason(packet.Truncated), "truncated"},
		{"IP packet longer than the frame", func() []byte { b := ok(); return b[:len(b)-1] }(), false, Reason(packet.Truncated), "truncated"},
		{"not IP", mod(ok(), func(b []byte) { binary.BigEndian.PutUint16(b[12:], 0x0806) }), false, Reason(packet.NotIP), "not_ip"},
		{"IP version 5", mod(ok(), func(b []byte) { b[l3] = 0x55 }), false, Reason(packet.BadIPHeader), "bad_ip_header"},
		{"IPv4 fragment", mod(ok(), func(b []byte) { b[l3+6] |= 0x20 }), false, Reason(packet.IPFragment), "ip_fragment"},
		{"GRE", mod(ok(), func(b []byte) { b[l3+9] = 47 }), false, Reason(packet.UnsupportedProto), "unsupported_proto"},
		{"TCP data offset 4", mod(ok(), func(b []byte) { b[l4+12] = 4 << 4 }), false, Reason(packet.BadL4Header), "bad_l4_header"},
		{"ICMP echo", echo(t, c), false, Reason(packet.ICMPNotError), "icmp_not_error"},
		{"ICMP error quoting no L4 header", cutQuote, false, Reason(packet.ICMPQuoteTruncated), "icmp_quote_truncated"},
		{"three VLAN tags", tripleTagged, false, Reason(packet.VLANTooDeep), "vlan_too_deep"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, 16, tabs)
			if tc.noTables {
				e.SetTables(nil)
			}
			in := bytes.Clone(tc.frame)
			if a := send(e, 1, tc.frame)[0]; a != Drop {
				t.Fatalf("verdict got %d, want Drop", a)
			}
			if !bytes.Equal(tc.frame, in) {
				t.Errorf("dropped frame modified: got %x, want %x", tc.frame, in)
			}
			cnt := published(e)
			if cnt.Drops[tc.want] != 1 || cnt.Dropped() != 1 || cnt.RxPackets != 1 {
				var got []string
				for r, n := range cnt.Drops {
					if n != 0 {
						got = append(got, fmt.Sprintf("%s=%d", Reason(r), n))
					}
				}
				t.Errorf("drops got %v, want [%s=1]", got, tc.label)
			}
			if got := tc.want.String(); got != tc.label {
				t.Errorf("Reason(%d).String() got %q, want %q", tc.want, got, tc.label)
			}
			// A server waiting for its MAC is still chosen, so the
			// retransmitted SYN goes to it once the MAC is known.
			want := 0
			if tc.want == DropNeighborUnresolved {
				want = 1
			}
			if cnt.NewAssociations != uint64(want) || e.Shard().Live() != want {
				t.Errorf("NewAssociations, Live got %d, %d, want %d, %d", cnt.NewAssociations, e.Shard().Live(), want, want)
			}
		})
	}
}

// TestReasonNames: every reason has its own metric label.
func TestReasonNames(t *testing.T) {
	for _, tc := range []struct {
		r    Reason
		want string
	}{
		{Reason(packet.OK), "ok"},
		{Reason(packet.VLANTooDeep), "vlan_too_deep"},
		{DropNoTargetSet, "no_target_set"},
		{DropNoServer, "no_server"},
		{DropNeighborUnresolved, "neighbor_unresolved"},
		{DropTxRingFull, "tx_ring_full"},
		{DropKernelRx, "kernel_rx_dropped"},
		{NumReasons, "unknown"},
		{255, "unknown"},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("Reason(%d).String() got %q, want %q", tc.r, got, tc.want)
		}
	}
	seen := map[string]Reason{}
	for r := range NumReasons {
		s := r.String()
		if prev, dup := seen[s]; dup || s == "unknown" {
			t.Errorf("Reason(%d).String() got %q, also Reason(%d)'s or unknown", r, s, prev)
		}
		seen[s] = r
	}
}

// TestRewrite: a transmitted frame leaves with the chosen server's MAC on the
// engine's interface as destination, the engine's MAC as source, and every
// other byte as it came.
func TestRewrite(t *testing.T) {
	tabs := buildTables(t, 1,
		setSpec{id: 1, vip: vip4, protos: ProtoBitTCP | ProtoBitUDP, servers: weighted(1, 1, 1, 1)},
		setSpec{id: 2, vip: vip6, protos: ProtoBitTCP | ProtoBitUDP, servers: weighted(1, 1, 1, 1)},
		setSpec{id: 5, vip: vip4, protos: ProtoBitSCTP, ports: []PortRange{{sctpPort, sctpPort}}, servers: weighted(1, 1, 1, 1)},
	)
	tabs.AllowVLANs([]uint16{100})
	c4, c6 := client(false, 11), client(true, 11)
	spec := func(c, vip netip.Addr, proto uint8) packet.FrameSpec {
		return packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c, Dst: vip, Proto: proto,
			SrcPort: 9000, DstPort: vipPort, TCPFlags: packet.TCPFlagACK | packet.TCPFlagPSH,
			Payload: []byte("GET / HTTP/1.1\r\n\r\n")}
	}
	vlan := spec(c4, vip4, packet.ProtoTCP)
	vlan.VLAN = 100
	for _, tc := range []struct {
		name   string
		frame  []byte
		set    uint16
		client netip.Addr
		proto  uint8
	}{
		{"IPv4 TCP", encode(t, spec(c4, vip4, packet.ProtoTCP)), 1, c4, packet.ProtoTCP},
		{"IPv4 UDP", encode(t, spec(c4, vip4, packet.ProtoUDP)), 1, c4, packet.ProtoUDP},
		{"IPv6 TCP", encode(t, spec(c6, vip6, packet.ProtoTCP)), 2, c6, packet.ProtoTCP},
		{"IPv6 UDP", encode(t, spec(c6, vip6, packet.ProtoUDP)), 2, c6, packet.ProtoUDP},
		{"VLAN IPv4 TCP", encode(t, vlan), 1, c4, packet.ProtoTCP},
		{"IPv4 SCTP", sctp(t, c4, 9000, packet.SCTPChunkData, 0x1234), 5, c4, packet.ProtoSCTP},
		{"ICMPv4 error", icmpError(t, c4, 9000, packet.ICMPv4DestUnreachable, packet.ICMPv4CodeFragNeeded, 1400), 1, c4, packet.ProtoTCP},
		{"ICMPv6 error", icmpError(t, c6, 9000, packet.ICMPv6PacketTooBig, 0, 1280), 2, c6, packet.ProtoTCP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, 16, tabs)
			in := bytes.Clone(tc.frame)
			if a := send(e, 1, tc.frame)[0]; a != Transmit {
				t.Fatalf("verdict got %d, want Transmit", a)
			}
			ts := tabs.Set(tc.set)
			slot := maglevSlot(ts, tc.client, 9000, tc.proto)
			out := tc.frame
			if got, want := packet.Ethernet(out).Dst(), ts.Servers[slot].MAC[testIface]; got != want {
				t.Errorf("destination MAC got %x, want %x (server %d on interface %d)", got, want, slot, testIface)
			}
			if got := packet.Ethernet(out).Src(); got != lbMAC {
				t.Errorf("source MAC got %x, want %x", got, lbMAC)
			}
			if !bytes.Equal(out[12:], in[12:]) {
				t.Errorf("bytes after the MACs got %x, want %x", out[12:], in[12:])
			}
			cnt := published(e)
			j := int(tc.set)*MaxServers + slot
			if cnt.ServerPackets[j] != 1 || cnt.ServerBytes[j] != uint64(len(in)) {
				t.Errorf("ServerPackets, ServerBytes[%d] got %d, %d, want 1, %d", j, cnt.ServerPackets[j], cnt.ServerBytes[j], len(in))
			}
		})
	}
}

// TestPublish: counters reach Snapshot at Publish and not before.
func TestPublish(t *testing.T) {
	tab := buildTables(t, 1, setSpec{id: 4, vip: vip4, servers: weighted(1, 1, 1)})
	e := newEngine(t, 64, tab)
	var frames [][]byte
	var bytesIn, bytesOut uint64
	for i := range 10 {
		f := tcp(t, client(false, i), 1234, packet.TCPFlagSYN)
		frames = append(frames, f)
		bytesIn += uint64(len(f))
		bytesOut += uint64(len(f))
	}
	for range 2 {
		f := echo(t, client(false, 0))
		frames = append(frames, f)
		bytesIn += uint64(len(f))
	}
	var zero, got Counters
	want := Counters{RxPackets: 12, RxBytes: bytesIn, NewAssociations: 10}
	want.Drops[packet.ICMPNotError] = 2
	want.Forwarded[FwdDSR] = 10
	servers := func(c *Counters) (p, b uint64) {
		for j := range c.ServerPackets {
			p, b = p+c.ServerPackets[j], b+c.ServerBytes[j]
		}
		return p, b
	}
	check := func(when string, want *Counters, wantServer uint64) {
		t.Helper()
		e.Snapshot(&got)
		p, b := servers(&got)
		var assocs int64
		for _, n := range got.ServerAssociations {
			assocs += n
		}
		got.ServerPackets, got.ServerBytes, got.ServerAssociations = zero.ServerPackets, zero.ServerBytes, zero.ServerAssociations
		if got != *want || p != wantServer || b != wantServer*bytesOut/10 || uint64(assocs) != want.NewAssociations {
			t.Errorf("%s: Snapshot scalars got rx %d tx %d new %d drops %v with %d server packets, %d bytes, %d associations; want rx %d new %d drops %v, %d, %d, %d",
				when, got.RxPackets, got.TxPackets, got.NewAssociations, got.Drops, p, b, assocs,
				want.RxPackets, want.NewAssociations, want.Drops, wantServer, wantServer*bytesOut/10, want.NewAssociations)
		}
	}

	send(e, 1, frames...)
	check("before Publish", &zero, 0)
	want.Unproven = 10 // SYNs only: no connection proved
	e.Publish()
	check("after Publish", &want, 10)
	send(e, 1, frames...)
	check("second batch before Publish", &want, 10)
	e.Publish()
	want.RxPackets, want.RxBytes, want.Drops[packet.ICMPNotError] = 24, 2*bytesIn, 4
	want.Forwarded[FwdDSR] = 20
	check("second batch after Publish", &want, 20)
}

// TestPublishEpochWrap: Publish copies only the server counters touched since
// the last Publish, found by a per-batch mark. The marks must not go wrong
// when the batch counter wraps, which a busy-polling worker, publishing on
// every loop even when idle, reaches in minutes.
func TestPublishEpochWrap(t *testing.T) {
	tab := buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1, 1, 1)})
	for _, tc := range []struct {
		name   string
		start  uint32 // batch counter to begin with
		before bool   // traffic at start, then jump to the last value before the wrap
		idle   int    // idle publishes (the wrap among them) before the checked traffic
	}{
		{"first packets after the wrap", math.MaxUint32, false, 1},
		// The servers were marked at batch 5; five publishes from the last
		// value before the wrap bring the counter back to 5 (it skips 0), so
		// without clearing the marks at the wrap their traffic would look
		// already queued and never be published.
		{"servers last touched 2^32 publishes earlier", 5, true, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t, 1024, tab)
			traffic := func(when string) {
				t.Helper()
				for i := range 10 {
					send(e, 1, tcp(t, client(false, i), 1000, packet.TCPFlagSYN))
				}
				e.Publish()
				var got Counters
				e.Snapshot(&got)
				for j := range got.ServerPackets {
					if got.ServerPackets[j] != e.local.ServerPackets[j] {
						t.Errorf("%s: published ServerPackets[%d] got %d, want %d", when, j, got.ServerPackets[j], e.local.ServerPackets[j])
					}
				}
			}
			e.epoch = tc.start
			if tc.before {
				traffic("before the wrap")
				e.epoch = math.MaxUint32
			}
			for range tc.idle {
				e.Publish()
			}
			traffic("after the wrap")
		})
	}
}

// TestSnapshotConcurrent runs a worker (Process, Sweep, Publish) while
// another goroutine takes snapshots: no data race under -race, and every
// counter only grows.
func TestSnapshotConcurrent(t *testing.T) {
	const batches = 2000
	tabs := buildTables(t, 1,
		setSpec{id: 1, vip: vip4, servers: weighted(1, 2, 3)},
		setSpec{id: 2, vip: vip6, servers: weighted(1, 1)},
	)
	e := newEngine(t, 1<<14, tabs)
	frames := make([][]byte, 64)
	for i := range frames {
		switch i % 4 {
		case 0:
			frames[i] = tcp(t, client(true, i), 2000, packet.TCPFlagACK)
		case 1:
			frames[i] = echo(t, client(false, i))
		default:
			frames[i] = tcp(t, client(false, i), 2000, packet.TCPFlagACK)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		acts := make([]Action, len(frames))
		for i := range batches {
			now := uint32(i / 50)
			e.Process(frames, acts, now)
			e.Sweep(64, now)
			e.Publish()
		}
	}()
	prev, cur := new(Counters), new(Counters)
	check := func() {
		e.Snapshot(cur)
		_ = e.Shard().Live()
		if err := nondecreasing(prev, cur); err != nil {
			t.Fatal(err)
		}
		prev, cur = cur, prev
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		check()
	}
	check()
	if want := uint64(batches * len(frames)); prev.RxPackets != want {
		t.Errorf("final RxPackets got %d, want %d", prev.RxPackets, want)
	}
}

// nondecreasing reports the first counter that is smaller in cur than in prev.
func nondecreasing(prev, cur *Counters) error {
	ps, cs := prev.scalars(), cur.scalars()
	for i := range ps {
		if ps[i] == &prev.Unproven {
			continue // a gauge
		}
		if *cs[i] < *ps[i] {
			return fmt.Errorf("scalar counter %d went from %d to %d", i, *ps[i], *cs[i])
		}
	}
	for i := range prev.Drops {
		if cur.Drops[i] < prev.Drops[i] {
			return fmt.Errorf("Drops[%s] went from %d to %d", Reason(i), prev.Drops[i], cur.Drops[i])
		}
	}
	for j := range prev.ServerPackets {
		if cur.ServerPackets[j] < prev.ServerPackets[j] || cur.ServerBytes[j] < prev.ServerBytes[j] {
			return fmt.Errorf("server counter %d went from %d/%d to %d/%d", j,
				prev.ServerPackets[j], prev.ServerBytes[j], cur.ServerPackets[j], cur.ServerBytes[j])
		}
	}
	return nil
}

// TestZeroAllocs holds the engine to its budget: a worker iteration (Process
// of a mixed batch, Sweep, Publish) allocates nothing.
func TestZeroAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation changes allocation behaviour")
	}
	tabs := buildTables(t, 1,
		setSpec{id: 1, vip: vip4, protos: ProtoBitTCP | ProtoBitUDP, servers: weighted(1, 2, 3)},
		setSpec{id: 2, vip: vip6, servers: weighted(1, 1)},
		setSpec{id: 5, vip: vip4, protos: ProtoBitSCTP, ports: []PortRange{{sctpPort, sctpPort}}, servers: weighted(1, 1)},
	)
	e := newEngine(t, 1<<14, tabs)
	const newFlows = 16
	var batch, established [][]byte
	for i := range newFlows {
		batch = append(batch, tcp(t, client(false, 1000+i), 0, packet.TCPFlagSYN))
	}
	for i := range 12 {
		established = append(established, tcp(t, client(false, i), 3000, packet.TCPFlagACK))
	}
	for i := range 8 {
		established = append(established, tcp(t, client(true, i), 3000, packet.TCPFlagACK))
	}
	for i := range 4 {
		established = append(established,
			sctp(t, client(false, i), 3000, packet.SCTPChunkData, 0x1000+uint32(i)),
			encode(t, packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: client(false, 100+i), Dst: vip4,
				Proto: packet.ProtoUDP, SrcPort: 3000, DstPort: vipPort, Payload: make([]byte, 20)}),
			icmpError(t, client(false, i), 3000, packet.ICMPv4DestUnreachable, packet.ICMPv4CodeFragNeeded, 1400))
	}
	batch = append(batch, established...)
	const dropped = 16
	for i := range 4 {
		batch = append(batch,
			echo(t, client(false, i)),
			tcpTo(t, client(false, i), 3000, vip4, 81, packet.TCPFlagSYN),
			tcpTo(t, client(false, i), 3000, netip.MustParseAddr("192.0.2.99"), vipPort, packet.TCPFlagSYN),
			tcp(t, client(false, i), 3000, packet.TCPFlagACK)[:30])
	}
	if len(batch) != 64 {
		t.Fatalf("fixture: batch of %d frames, want 64", len(batch))
	}
	send(e, 0, established...)
	before := published(e)

	acts := make([]Action, len(batch))
	const tcpSrcPort = packet.EthernetHeaderLen + packet.IPv4MinHeaderLen
	var run uint32
	allocs := testing.AllocsPerRun(100, func() {
		run++
		for _, f := range batch[:newFlows] { // fresh flows every run; Parse does not check checksums
			binary.BigEndian.PutUint16(f[tcpSrcPort:], uint16(run))
		}
		now := run / 10
		e.Process(batch, acts, now)
		e.Sweep(64, now)
		e.Publish()
	})
	if allocs != 0 {
		t.Errorf("Process+Sweep+Publish of a 64-frame batch: got %v allocations per run, want 0", allocs)
	}
	after := published(e)
	runs := uint64(run)
	if got, want := after.NewAssociations-before.NewAssociations, runs*newFlows; got != want {
		t.Errorf("fixture: NewAssociations grew by %d, want %d", got, want)
	}
	if got, want := after.Dropped()-before.Dropped(), runs*dropped; got != want {
		t.Errorf("fixture: Dropped grew by %d, want %d", got, want)
	}
	if got, want := after.ICMPForwarded-before.ICMPForwarded, runs*4; got != want {
		t.Errorf("fixture: ICMPForwarded grew by %d, want %d", got, want)
	}
}

// The per-server association gauge follows creation, re-selection and
// expiry, and always sums to the shard's live count.
func TestServerAssociationGauge(t *testing.T) {
	tab := buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1, 1, 1)})
	e := newEngine(t, 1000, tab)
	sum := func() int64 {
		c := published(e)
		var n int64
		for slot := 0; slot < MaxServers; slot++ {
			g := c.ServerAssociations[1*MaxServers+slot]
			if g < 0 {
				t.Fatalf("server %d gauge is negative: %d", slot, g)
			}
			n += g
		}
		return n
	}
	for i := 0; i < 300; i++ {
		send(e, 10, tcp(t, client(false, i), 5000, packet.TCPFlagSYN))
	}
	if got := sum(); got != 300 || int(got) != e.Shard().Live() {
		t.Fatalf("after 300 new flows: gauge sum %d, Live %d, want 300", got, e.Shard().Live())
	}
	// FIN then SYN re-selects: the gauge moves, the total stays.
	send(e, 11, tcp(t, client(false, 7), 5000, packet.TCPFlagFIN|packet.TCPFlagACK))
	send(e, 11, tcp(t, client(false, 7), 5000, packet.TCPFlagSYN))
	if c := published(e); c.Reselected != 1 || sum() != 300 {
		t.Fatalf("after a reconnect: Reselected %d, gauge sum %d, want 1, 300", c.Reselected, sum())
	}
	e.Sweep(2000, 10+tab.Set(1).DeleteAge+2)
	e.Publish()
	if got := sum(); got != 0 || e.Shard().Live() != 0 {
		t.Fatalf("after expiry: gauge sum %d, Live %d, want 0", got, e.Shard().Live())
	}
}

// A server given the slot of a removed one starts from zero packets.
func TestReassignedSlotStartsFromZero(t *testing.T) {
	tab := buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1, 1, 1)})
	e := newEngine(t, 1000, tab)
	for i := 0; i < 300; i++ {
		send(e, 10, tcp(t, client(false, i), 5000, packet.TCPFlagSYN))
	}
	before := published(e)
	if before.ServerPackets[1*MaxServers+1] == 0 {
		t.Fatal("slot 1 got no traffic; the test needs it to")
	}
	// Slot 1 goes to a different server (new generation); slot 0 keeps its own.
	next := buildTables(t, 2, setSpec{id: 1, vip: vip4, servers: weighted(1, 1, 1)})
	next.Set(1).Servers[1].Gen++
	next.Set(1).Servers[1].Addr = netip.MustParseAddr("198.51.100.99")
	e.SetTables(next)
	e.Publish()
	after := published(e)
	if got := after.ServerPackets[1*MaxServers+1]; got != 0 {
		t.Errorf("new server in slot 1 inherited %d packets, want 0", got)
	}
	if got, want := after.ServerPackets[1*MaxServers+0], before.ServerPackets[1*MaxServers+0]; got != want {
		t.Errorf("unchanged slot 0: %d packets, want %d kept", got, want)
	}
}
