package fastpath

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
)

var vip4b = netip.MustParseAddr("192.0.2.99") // the signalling set's secondary address

// sctpTo is an SCTP packet from c:port to vip:sctpPort with one chunk; DATA
// chunks carry PPID ppid and payload.
func sctpTo(tb testing.TB, c netip.Addr, port uint16, vip netip.Addr, chunk uint8, tag, ppid uint32, payload []byte) []byte {
	tb.Helper()
	fixed := make([]byte, 16) // INIT's fixed fields
	if chunk == packet.SCTPChunkData {
		fixed = make([]byte, 12) // TSN, stream, SSN, PPID
		binary.BigEndian.PutUint32(fixed[8:], ppid)
	}
	return encode(tb, packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c, Dst: vip, Proto: packet.ProtoSCTP,
		SrcPort: port, DstPort: sctpPort, SCTPTag: tag, SCTPChunk: chunk, Payload: append(fixed, payload...)})
}

// diameterMsg is a Diameter header with command code code.
func diameterMsg(code uint32) []byte {
	h := make([]byte, diameterHeaderLen)
	h[0] = 1
	binary.BigEndian.PutUint32(h[:4], 1<<24|diameterHeaderLen)
	binary.BigEndian.PutUint32(h[4:8], 0x80<<24|code)
	return h
}

// signallingTables is a multihomed SCTP set (VIP and secondary) of four
// servers, Diameter on.
func signallingTables(t *testing.T, noIndex bool) *Tables {
	tab := buildTables(t, 1, setSpec{id: 5, vip: vip4, protos: ProtoBitSCTP | ProtoBitTCP,
		ports: []PortRange{{sctpPort, sctpPort}}, servers: weighted(1, 1, 1, 1)})
	ts := tab.Set(5)
	ts.SecondaryVIP, ts.HasSecondary, ts.Diameter, ts.NoTagIndex = vip4b.As16(), true, true, noIndex
	out, err := NewTables(2, tab.Sets())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMultihomedSCTP: an association's packets from the peer's second
// address, to either of the set's addresses, reach the server its INIT
// chose, on any worker, through the tag index; with the index off the
// second path lands by the hash on another server (the test proves the
// index).
func TestMultihomedSCTP(t *testing.T) {
	const tag = 0x5eed1234
	p1, p2 := client(false, 1), client(false, 2)
	for _, noIndex := range []bool{false, true} {
		tab := signallingTables(t, noIndex)
		ts := tab.Set(5)
		a, b := newEngine(t, 64, tab), newEngine(t, 64, tab)
		for _, e := range []*Engine{a, b} {
			e.SetPeers([]*assoc.Shard{a.Shard(), b.Shard()})
		}
		// A port whose second path the hash sends elsewhere.
		port := uint16(3868)
		for maglevSlot(ts, p1, port, packet.ProtoSCTP) == maglevSlot(ts, p2, port, packet.ProtoSCTP) {
			port++
		}
		s := route(t, a, 1, sctpTo(t, p1, port, vip4, packet.SCTPChunkInit, 0, 0, nil))
		route(t, a, 1, sctpTo(t, p1, port, vip4, packet.SCTPChunkCookieEcho, tag, 0, nil))
		second := []struct {
			e   *Engine
			dst netip.Addr
		}{{a, vip4b}, {b, vip4}, {b, vip4b}}
		for _, p := range second {
			got := route(t, p.e, 2, sctpTo(t, p2, port, p.dst, packet.SCTPChunkData, tag, 0, nil))
			if noIndex {
				if want := maglevSlot(ts, p2, port, packet.ProtoSCTP); got != want {
					t.Errorf("index off, second path to %s: server %d, want the hash's %d", p.dst, got, want)
				}
				continue
			}
			if got != s {
				t.Errorf("second path to %s: server %d, want the association's %d", p.dst, got, s)
			}
		}
		if !noIndex && published(a).TagIndexHits+published(b).TagIndexHits != 2 {
			t.Errorf("TagIndexHits = %d + %d, want 2 (the first packet of each unknown path per worker)",
				published(a).TagIndexHits, published(b).TagIndexHits)
		}
	}
}

// TestSCTPTagCollision: a second association that learns a tag another one
// already indexed for another server keeps its address key and is counted;
// the first keeps the index.
func TestSCTPTagCollision(t *testing.T) {
	const tag = 0x0badcafe
	tab := signallingTables(t, false)
	ts := tab.Set(5)
	e := newEngine(t, 64, tab)
	p1, p2 := client(false, 11), client(false, 12)
	port := uint16(4000)
	for maglevSlot(ts, p1, port, packet.ProtoSCTP) == maglevSlot(ts, p2, port, packet.ProtoSCTP) {
		port++
	}
	s1 := route(t, e, 1, sctpTo(t, p1, port, vip4, packet.SCTPChunkInit, 0, 0, nil))
	route(t, e, 1, sctpTo(t, p1, port, vip4, packet.SCTPChunkCookieEcho, tag, 0, nil))
	route(t, e, 1, sctpTo(t, p2, port, vip4, packet.SCTPChunkInit, 0, 0, nil))
	route(t, e, 1, sctpTo(t, p2, port, vip4, packet.SCTPChunkCookieEcho, tag, 0, nil))
	if n := published(e).TagCollisions; n != 1 {
		t.Errorf("TagCollisions = %d, want 1", n)
	}
	if got := route(t, e, 1, sctpTo(t, client(false, 13), port, vip4b, packet.SCTPChunkData, tag, 0, nil)); got != s1 {
		t.Errorf("a third path with the tag: server %d, want the first association's %d", got, s1)
	}
}

// TestDiameterStale: a Diameter flow that carried only capabilities
// exchange is stale delete_age after it was made, however many packets it
// sent since; one that carried an application message is kept.
func TestDiameterStale(t *testing.T) {
	const age = 30
	spec := setSpec{id: 5, vip: vip4, protos: ProtoBitTCP | ProtoBitSCTP, ports: []PortRange{{sctpPort, sctpPort}}, deleteAge: age}
	c := client(false, 21)
	tcpMsg := func(port uint16, code uint32) []byte {
		return encode(t, packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c, Dst: vip4, Proto: packet.ProtoTCP,
			SrcPort: port, DstPort: sctpPort, TCPFlags: packet.TCPFlagACK | packet.TCPFlagPSH, Seq: 1000, Ack: 1, Payload: diameterMsg(code)})
	}
	for _, tc := range []struct {
		name  string
		code  uint32
		stale bool
	}{
		{"CER only", diameterCER, true},
		{"DPR only", diameterDPR, true},
		{"a Credit-Control request", 272, false},
		{"a watchdog", 280, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec.servers = weighted(1, 1, 1)
			tabA := buildTables(t, 1, spec)
			spec.servers = weighted(1, 2, 4)
			tabB := buildTables(t, 2, spec)
			for _, tab := range []*Tables{tabA, tabB} {
				tab.Set(5).Diameter = true
			}
			port, slotA, slotB := mover(t, tabA.Set(5), tabB.Set(5), c, packet.ProtoTCP, 1024)
			e := newEngine(t, 64, tabA)
			route(t, e, 1, encode(t, packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c, Dst: vip4, Proto: packet.ProtoTCP,
				SrcPort: port, DstPort: sctpPort, TCPFlags: packet.TCPFlagSYN, Seq: 999}))
			for now := uint32(1); now <= age; now += 5 {
				route(t, e, now, tcpMsg(port, tc.code))
			}
			e.SetTables(tabB)
			want := slotA
			if tc.stale {
				want = slotB
			}
			if got := route(t, e, age+2, tcpMsg(port, tc.code)); got != want {
				t.Errorf("delete_age+1 after it was made: server %d, want %d", got, want)
			}
			if got, want := published(e).DiameterStale, map[bool]uint64{true: 1}[tc.stale]; got != want {
				t.Errorf("DiameterStale = %d, want %d", got, want)
			}
		})
	}
}

// TestDiameterCommand reads the command code from TCP and from SCTP DATA
// with PPID 46, and nothing from other payloads.
func TestDiameterCommand(t *testing.T) {
	c := client(false, 31)
	tcpFrame := func(payload []byte) []byte {
		return encode(t, packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c, Dst: vip4, Proto: packet.ProtoTCP,
			SrcPort: 1, DstPort: 3868, TCPFlags: packet.TCPFlagACK, Payload: payload})
	}
	for _, tc := range []struct {
		name  string
		frame []byte
		code  uint32
		ok    bool
	}{
		{"TCP CER", tcpFrame(diameterMsg(257)), 257, true},
		{"TCP with no payload", tcpFrame(nil), 0, false},
		{"TCP with a short payload", tcpFrame(diameterMsg(272)[:10]), 0, false},
		{"TCP, version 2", tcpFrame(append([]byte{2}, diameterMsg(272)[1:]...)), 0, false},
		{"SCTP DATA PPID 46", sctpTo(t, c, 1, vip4, packet.SCTPChunkData, 7, diameterPPID, diameterMsg(272)), 272, true},
		{"SCTP DATA PPID 0", sctpTo(t, c, 1, vip4, packet.SCTPChunkData, 7, 0, diameterMsg(272)), 0, false},
		{"SCTP INIT", sctpTo(t, c, 1, vip4, packet.SCTPChunkInit, 0, diameterPPID, diameterMsg(272)), 0, false},
	} {
		var f packet.Flow
		if r := packet.Parse(tc.frame, &f); r != packet.OK {
			t.Fatalf("%s: Parse = %v", tc.name, r)
		}
		if code, ok := diameterCommand(tc.frame, &f); code != tc.code || ok != tc.ok {
			t.Errorf("%s: diameterCommand = %d, %v, want %d, %v", tc.name, code, ok, tc.code, tc.ok)
		}
	}
}

// TestOwnedPortsOutsideListening: a set matches its owned ports (the ports
// its servers open connections from) as it matches its listening ports, and
// a peer's reply to one reaches the owner.
func TestOwnedPortsOutsideListening(t *testing.T) {
	tab := buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1, 1, 1)})
	tab.Set(1).Owned = []OwnedRange{{First: 40000, Last: 40099, Slot: 2}}
	tab, err := NewTables(2, tab.Sets())
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, 64, tab)
	for i := range 10 {
		synack := tcpTo(t, client(false, 40+i), 3868, vip4, 40000+uint16(i), packet.TCPFlagSYN|packet.TCPFlagACK)
		if got := route(t, e, 1, synack); got != 2 {
			t.Errorf("a peer's SYN-ACK to owned port %d: server %d, want the owner 2", 40000+i, got)
		}
	}
	if acts := send(e, 1, tcpTo(t, client(false, 60), 3868, vip4, 40100, packet.TCPFlagSYN|packet.TCPFlagACK)); acts[0] != Drop {
		t.Errorf("a port neither listening nor owned: verdict %d, want Drop", acts[0])
	}
}

// TestOwnedPortsOnePeerPort: one peer answers connections that several
// servers opened from their own ranges, all from its one listening port
// (a Diameter peer on 3868), while it also has a connection of its own to
// the set's listening port: every packet goes to the server that owns its
// destination port, the peer's own connection keeps its association, and
// nothing flips on later packets.
func TestOwnedPortsOnePeerPort(t *testing.T) {
	tab := buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1, 1, 1)})
	tab.Set(1).Owned = []OwnedRange{{First: 40000, Last: 40099, Slot: 0}, {First: 41000, Last: 41099, Slot: 1}, {First: 42000, Last: 42099, Slot: 2}}
	tab, err := NewTables(2, tab.Sets())
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, 64, tab)
	peer := client(false, 70)
	own := route(t, e, 1, tcpTo(t, peer, 3868, vip4, vipPort, packet.TCPFlagSYN)) // the peer's own connection
	for round := range 3 {
		for owner, port := range []uint16{40007, 41007, 42007} {
			flags := uint8(packet.TCPFlagSYN | packet.TCPFlagACK)
			if round > 0 {
				flags = packet.TCPFlagACK
			}
			if got := route(t, e, 1, tcpTo(t, peer, 3868, vip4, port, flags)); got != owner {
				t.Errorf("round %d: the peer's answer to VIP:%d went to server %d, want its owner %d", round, port, got, owner)
			}
		}
		if got := route(t, e, 1, tcpTo(t, peer, 3868, vip4, vipPort, packet.TCPFlagACK)); got != own {
			t.Errorf("round %d: the peer's own connection went to server %d, want %d", round, got, own)
		}
	}
	if n := e.Shard().Live(); n != 1 {
		t.Errorf("Live() = %d, want 1 (the peer's own connection; owned ports need no association)", n)
	}
}
