package fastpath

import (
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/maglev"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// tcpSeqFrame is tcp with the client's sequence number seq.
func tcpSeqFrame(tb testing.TB, c netip.Addr, port uint16, flags uint8, seq uint32) []byte {
	tb.Helper()
	return encode(tb, packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c, Dst: vip4, Proto: packet.ProtoTCP,
		SrcPort: port, DstPort: vipPort, TCPFlags: flags, Seq: seq, Ack: 2000})
}

// TestSYNFlood: spoofed SYNs hold at most half the shard, and only for
// syn_age; past that share they go by the hash without an association.
// Established connections keep their server through a table change, a real
// connection opened during the flood gets a (proven) association from its
// handshake's ACK on the server its SYN went to, and when the flood's
// associations age out the share is free again.
func TestSYNFlood(t *testing.T) {
	const limit, established, spoofed, synAge = 100, 20, 500, 5
	spec := setSpec{id: 1, vip: vip4, servers: weighted(1, 1, 1), synAge: synAge}
	tabA := buildTables(t, 1, spec)
	spec.servers = weighted(1, 2, 4)
	tabB := buildTables(t, 2, spec)
	e := newEngine(t, limit, tabA)

	real := func(i int) netip.Addr { return client(false, i) }
	was := make([]int, established)
	for i := range established {
		route(t, e, 1, tcp(t, real(i), 7000, packet.TCPFlagSYN))
		was[i] = route(t, e, 1, tcp(t, real(i), 7000, packet.TCPFlagACK))
	}
	if n := e.Shard().Unproven(); n != 0 {
		t.Fatalf("after %d handshakes: Unproven() = %d, want 0", established, n)
	}
	for i := range spoofed {
		send(e, 2, tcp(t, client(false, 10000+i), uint16(1024+i), packet.TCPFlagSYN))
	}
	c := published(e)
	if n := e.Shard().Unproven(); n != limit/2 {
		t.Errorf("after %d spoofed SYNs: Unproven() = %d, want the share %d", spoofed, n, limit/2)
	}
	if want := uint64(spoofed - limit/2); c.FloodStateless != want {
		t.Errorf("FloodStateless = %d, want %d", c.FloodStateless, want)
	}
	if c.Unproven != uint64(limit/2) {
		t.Errorf("published Unproven = %d, want %d", c.Unproven, limit/2)
	}

	e.SetTables(tabB) // a weight change during the flood
	for i := range established {
		if got := route(t, e, 3, tcp(t, real(i), 7000, packet.TCPFlagACK)); got != was[i] {
			t.Errorf("established connection %d moved from server %d to %d during the flood", i, was[i], got)
		}
	}
	// A real connection during the flood: SYN by the hash, its ACK then
	// records it proven, on the same server.
	newc := real(established)
	hashed := maglevSlot(tabB.Set(1), newc, 7000, packet.ProtoTCP)
	if got := route(t, e, 3, tcp(t, newc, 7000, packet.TCPFlagSYN)); got != hashed {
		t.Fatalf("SYN during the flood: server %d, want the hash's %d", got, hashed)
	}
	if got := route(t, e, 3, tcp(t, newc, 7000, packet.TCPFlagACK)); got != hashed {
		t.Fatalf("its ACK: server %d, want %d", got, hashed)
	}
	k := key(newc, 7000, packet.ProtoTCP, 1)
	if v, ok := e.Shard().Get(&k); !ok || v.Flags&assoc.FlagProven == 0 || int(v.Server) != hashed {
		t.Errorf("the new connection's association = %+v, %v; want proven, server %d", v, ok, hashed)
	}
	if live := e.Shard().Live(); live > limit {
		t.Errorf("Live() = %d, beyond the limit %d", live, limit)
	}

	// syn_age later the flood's associations are gone, the others stay.
	e.Sweep(4*limit, 3+synAge+1)
	if n := e.Shard().Unproven(); n != 0 {
		t.Errorf("syn_age after the flood: Unproven() = %d, want 0", n)
	}
	if live := e.Shard().Live(); live != established+1 {
		t.Errorf("syn_age after the flood: Live() = %d, want the %d proven connections", live, established+1)
	}
	if got := route(t, e, 10, tcp(t, client(false, 90000), 1, packet.TCPFlagSYN)); got >= MaxServers {
		t.Fatalf("a SYN after the flood: no server")
	}
	k = key(client(false, 90000), 1, packet.ProtoTCP, 1)
	if _, ok := e.Shard().Get(&k); !ok {
		t.Errorf("a SYN after the flood got no association: the share should be free")
	}
}

// TestUnprovenAge: an association that never proved its connection is stale
// after syn_age, a proven one only after delete_age; UDP proves by a second
// datagram.
func TestUnprovenAge(t *testing.T) {
	const synAge, deleteAge = 5, 50
	spec := setSpec{id: 1, vip: vip4, protos: ProtoBitTCP | ProtoBitUDP, servers: weighted(1, 1, 1), synAge: synAge, deleteAge: deleteAge}
	tabA := buildTables(t, 1, spec)
	spec.servers = weighted(1, 2, 4)
	tabB := buildTables(t, 2, spec)
	c := client(false, 7)
	for _, tc := range []struct {
		name    string
		frames  func(port uint16) [][]byte // at time 1
		idle    uint32
		expired bool
	}{
		{"SYN only, idle syn_age", func(p uint16) [][]byte { return [][]byte{tcp(t, c, p, packet.TCPFlagSYN)} }, synAge, false},
		{"SYN only, idle syn_age+1", func(p uint16) [][]byte { return [][]byte{tcp(t, c, p, packet.TCPFlagSYN)} }, synAge + 1, true},
		{"SYN, ACK, idle syn_age+1", func(p uint16) [][]byte {
			return [][]byte{tcp(t, c, p, packet.TCPFlagSYN), tcp(t, c, p, packet.TCPFlagACK)}
		}, synAge + 1, false},
		{"SYN, ACK, idle delete_age+1", func(p uint16) [][]byte {
			return [][]byte{tcp(t, c, p, packet.TCPFlagSYN), tcp(t, c, p, packet.TCPFlagACK)}
		}, deleteAge + 1, true},
		{"mid-stream ACK only, idle syn_age+1", func(p uint16) [][]byte { return [][]byte{tcp(t, c, p, packet.TCPFlagACK)} }, synAge + 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			port, slotA, slotB := mover(t, tabA.Set(1), tabB.Set(1), c, packet.ProtoTCP, 1024)
			e := newEngine(t, 64, tabA)
			send(e, 1, tc.frames(port)...)
			e.SetTables(tabB)
			want := slotA
			if tc.expired {
				want = slotB
			}
			if got := route(t, e, 1+tc.idle, tcp(t, c, port, packet.TCPFlagACK)); got != want {
				t.Errorf("ACK after %d s idle: server %d, want %d", tc.idle, got, want)
			}
		})
	}
	t.Run("UDP proves by a second datagram", func(t *testing.T) {
		port, slotA, _ := mover(t, tabA.Set(1), tabB.Set(1), c, packet.ProtoUDP, 1024)
		e := newEngine(t, 64, tabA)
		udp := encode(t, packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c, Dst: vip4, Proto: packet.ProtoUDP,
			SrcPort: port, DstPort: vipPort})
		send(e, 1, udp, udp)
		e.SetTables(tabB)
		if got := route(t, e, 1+synAge+1, udp); got != slotA {
			t.Errorf("UDP flow of two datagrams after syn_age+1: server %d, want %d", got, slotA)
		}
	})
}

// TestSpoofedTCPTeardown: a RST or FIN far from the client's sequence
// numbers is forwarded but not taken as a teardown, so a SYN after it keeps
// the victim's server; one near them is. The mark follows the client's
// data.
func TestSpoofedTCPTeardown(t *testing.T) {
	const isn = 0x10000000
	c := client(false, 4)
	for _, tc := range []struct {
		name    string
		flags   uint8
		seq     uint32
		sent    uint32 // client bytes sent before the teardown, in segments of 60000
		moves   bool
		ignored uint64
	}{
		{"RST at the client's sequence number", packet.TCPFlagRST, isn + 1, 0, true, 0},
		{"RST a little behind (reordering)", packet.TCPFlagRST, isn - 1000, 0, true, 0},
		{"RST half the sequence space away", packet.TCPFlagRST, isn + 1<<31, 0, false, 1},
		{"RST 16 MiB ahead", packet.TCPFlagRST, isn + 16<<20, 0, false, 1},
		{"FIN 16 MiB ahead", packet.TCPFlagFIN | packet.TCPFlagACK, isn + 16<<20, 0, false, 1},
		{"FIN after 30 MB of client data", packet.TCPFlagFIN | packet.TCPFlagACK, isn + 1 + 500*60000, 500, true, 0},
		{"RST at the ISN after 30 MB of client data", packet.TCPFlagRST, isn + 1, 500, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tabA, tabB, port, slotA, slotB := twoTables(t, setSpec{id: 1, vip: vip4}, c, packet.ProtoTCP)
			e := newEngine(t, 16, tabA)
			route(t, e, 1, tcpSeqFrame(t, c, port, packet.TCPFlagSYN, isn))
			seq := uint32(isn + 1)
			route(t, e, 1, tcpSeqFrame(t, c, port, packet.TCPFlagACK, seq))
			for range tc.sent {
				seq += 60000
				route(t, e, 1, tcpSeqFrame(t, c, port, packet.TCPFlagACK, seq))
			}
			e.SetTables(tabB)
			if got := route(t, e, 2, tcpSeqFrame(t, c, port, tc.flags, tc.seq)); got != slotA {
				t.Fatalf("the teardown itself: server %d, want the flow's %d", got, slotA)
			}
			want := slotA
			if tc.moves {
				want = slotB
			}
			if got := route(t, e, 2, tcpSeqFrame(t, c, port, packet.TCPFlagSYN, 0x55555555)); got != want {
				t.Errorf("SYN after it: server %d, want %d", got, want)
			}
			if got := published(e).TeardownIgnored; got != tc.ignored {
				t.Errorf("TeardownIgnored = %d, want %d", got, tc.ignored)
			}
		})
	}
}

// TestSCTPTeardownTBit: an ABORT with the T bit carries the sender's own
// tag, which a one-direction observer never learned: not a teardown, so an
// INIT after it keeps the association's server.
func TestSCTPTeardownTBit(t *testing.T) {
	const tag = 0x7a6b5c4d
	c := client(false, 5)
	s := setSpec{id: 5, vip: vip4, protos: ProtoBitSCTP, ports: []PortRange{{sctpPort, sctpPort}}}
	tabA, tabB, port, slotA, _ := twoTables(t, s, c, packet.ProtoSCTP)
	e := newEngine(t, 16, tabA)
	route(t, e, 1, sctp(t, c, port, packet.SCTPChunkInit, 0))
	route(t, e, 1, sctp(t, c, port, packet.SCTPChunkCookieEcho, tag))
	e.SetTables(tabB)
	abort := sctp(t, c, port, packet.SCTPChunkAbort, tag)
	var f packet.Flow
	if packet.Parse(abort, &f) != packet.OK {
		t.Fatal("fixture does not parse")
	}
	abort[int(f.L4Off)+packet.SCTPHeaderLen+1] |= 1 // T bit; the checksum is not checked here
	route(t, e, 2, abort)
	if got := route(t, e, 2, sctp(t, c, port, packet.SCTPChunkInit, 0)); got != slotA {
		t.Errorf("INIT after an ABORT with the T bit: server %d, want the association's %d", got, slotA)
	}
	if got := published(e).SCTPTagMismatch; got != 1 {
		t.Errorf("SCTPTagMismatch = %d, want 1", got)
	}
}

// TestHashSeedChoosesServer: the engine's choice for a flow without an
// association follows its set's Seed: flows picked to land on one server
// under the unkeyed hash spread under a keyed seed.
func TestHashSeedChoosesServer(t *testing.T) {
	spec := setSpec{id: 1, vip: vip4, servers: weighted(1, 1, 1, 1)}
	tab := buildTables(t, 1, spec)
	keyed := buildTables(t, 1, spec)
	keyed.Set(1).Seed = maglev.NewSeed(42)
	var picked []netip.Addr
	for i := 0; len(picked) < 100; i++ {
		if c := client(false, i); maglevSlot(tab.Set(1), c, 5000, packet.ProtoTCP) == 0 {
			picked = append(picked, c)
		}
	}
	e, ek := newEngine(t, 1024, tab), newEngine(t, 1024, keyed)
	var per [4]int
	for _, c := range picked {
		if got := route(t, e, 1, tcp(t, c, 5000, packet.TCPFlagSYN)); got != 0 {
			t.Fatalf("unkeyed: %s went to server %d, want 0", c, got)
		}
		per[route(t, ek, 1, tcp(t, c, 5000, packet.TCPFlagSYN))]++
	}
	for s, n := range per {
		if n == 0 {
			t.Errorf("keyed seed: server %d got none of the %d flows chosen against the unkeyed hash (%v)", s, len(picked), per)
		}
	}
}

// TestPartialChecksumCounted: a new flow whose first packet carries only
// the pseudo-header sum (a local sender's offload) is counted, once per
// flow; a complete checksum is not.
func TestPartialChecksumCounted(t *testing.T) {
	e := newEngine(t, 64, buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1)}))
	good := tcp(t, client(false, 1), 5000, packet.TCPFlagSYN)
	partial := tcp(t, client(false, 2), 5000, packet.TCPFlagSYN)
	var f packet.Flow
	if packet.Parse(partial, &f) != packet.OK {
		t.Fatal("fixture does not parse")
	}
	// Replace the checksum by the pseudo-header sum, as a sender with
	// checksum offload leaves it.
	l4Len := int(f.L3Off) + int(f.Len) - int(f.L4Off)
	sum := packet.Checksum(nil, packet.PseudoHeaderSum4([4]byte(f.Src[12:]), [4]byte(f.Dst[12:]), packet.ProtoTCP, uint16(l4Len)))
	off := int(f.L4Off) + 16
	partial[off], partial[off+1] = byte(sum>>8), byte(sum)
	if !packet.PartialChecksum(partial, &f) {
		t.Fatal("fixture: packet.PartialChecksum does not see the partial sum")
	}
	send(e, 1, good, partial, partial)
	if got := published(e).PartialChecksum; got != 1 {
		t.Errorf("PartialChecksum = %d, want 1 (one flow, counted at its first packet)", got)
	}
}

// TestFlowLimit: flows cannot take the room a shard keeps for persistence
// records: past the flow limit (max_associations' share), new flows go by
// the hash without an association, even when the shard has room.
func TestFlowLimit(t *testing.T) {
	const flows, persist = 40, 20
	e := newEngine(t, flows+persist, buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1, 1)}))
	e.SetFlowLimit(flows)
	for i := range 2 * flows {
		// Mid-stream ACKs: past the unproven share they are recorded
		// proven, so only the flow limit stops them.
		send(e, 1, tcp(t, client(false, i), 5000, packet.TCPFlagACK))
	}
	c := published(e)
	if live := e.Shard().Live(); live != flows || c.NewAssociations != flows || c.Stateless != flows {
		t.Errorf("Live, NewAssociations, Stateless = %d, %d, %d; want %d, %d, %d", live, c.NewAssociations, c.Stateless, flows, flows, flows)
	}
	// Expired flows free their places.
	e.Sweep(4*(flows+persist), 2*testAge)
	send(e, 2*testAge, tcp(t, client(false, 1000), 5000, packet.TCPFlagACK))
	if live := e.Shard().Live(); live != 1 {
		t.Errorf("after expiry and one new flow: Live() = %d, want 1", live)
	}
}
