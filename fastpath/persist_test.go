package fastpath

import (
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// persistTables builds one set per id, on 192.0.2.10, .11, ..., that share
// persistence group 7, TCP and UDP on ports 33001-33004, servers of the given
// weights. Server k has address id k+1 in every set: the same machine.
func persistTables(tb testing.TB, gen uint64, timeout uint32, servers []srv, ids ...uint16) *Tables {
	tb.Helper()
	var specs []setSpec
	for n, id := range ids {
		specs = append(specs, setSpec{id: id, vip: netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + n)}),
			protos: ProtoBitTCP | ProtoBitUDP, ports: []PortRange{{33001, 33004}}, deleteAge: 2, servers: servers})
	}
	t := buildTables(tb, gen, specs...)
	sets := t.Sets()
	for _, ts := range sets {
		ts.Persist = &Persistence{Group: 7, Timeout: timeout, V4Bits: 32, V6Bits: 128}
		for s := range ts.Servers {
			if ts.Servers[s].Present {
				ts.Servers[s].AddrID = uint32(s + 1)
			}
		}
	}
	t, err := NewTables(gen, sets)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// to returns a frame of client c from port sport to vip:dport.
func to(tb testing.TB, c netip.Addr, sport uint16, proto uint8, vip netip.Addr, dport uint16, flags uint8) []byte {
	tb.Helper()
	return encode(tb, packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c, Dst: vip, Proto: proto,
		SrcPort: sport, DstPort: dport, TCPFlags: flags, Payload: []byte("x")})
}

var vipB = netip.MustParseAddr("192.0.2.11")

// TestPersistenceTiesAClientsFlows: the first flow of a client chooses a
// server; its TCP and UDP flows from other source ports to other VIP ports,
// and to the other VIP of its group, all reach that server; clients spread.
func TestPersistenceTiesAClientsFlows(t *testing.T) {
	for _, method := range []uint8{MethodHash, MethodLeastLoad} {
		tab := persistTables(t, 1, 60, weighted(1, 1, 1, 1), 1, 2)
		for _, ts := range tab.Sets() {
			ts.Method = method
		}
		e := newEngine(t, 1024, tab)
		e.SetPersistLimit(64)
		var used [MaxServers]int
		for i := range 32 {
			c := client(false, i)
			first := route(t, e, 1, to(t, c, 40000, packet.ProtoTCP, vip4, 33001, packet.TCPFlagSYN))
			if first < 0 {
				t.Fatalf("client %d: control SYN dropped", i)
			}
			used[first]++
			for p := range uint16(4) {
				if got := route(t, e, 1, to(t, c, 50000+p, packet.ProtoUDP, vip4, 33001+p, 0)); got != first {
					t.Fatalf("method %d client %d: UDP to port %d went to server %d, control to %d", method, i, 33001+p, got, first)
				}
				if got := route(t, e, 1, to(t, c, 51000+p, packet.ProtoUDP, vipB, 33001+p, 0)); got != first {
					t.Fatalf("method %d client %d: UDP to the other VIP went to server %d, control to %d", method, i, got, first)
				}
			}
		}
		for s := range 4 {
			if used[s] == 0 {
				t.Errorf("method %d: server %d got no client of 32: %v", method, s, used[:4])
			}
		}
		if c := published(e); c.PersistMade != 32 || c.PersistFound != 32*8 {
			t.Errorf("method %d: PersistMade %d, PersistFound %d; want 32, %d", method, c.PersistMade, c.PersistFound, 32*8)
		}
	}
}

// TestPersistenceAcrossWorkers: a record made by one worker decides the
// client's flows that arrive on another worker's queue, which copies it.
func TestPersistenceAcrossWorkers(t *testing.T) {
	tab := persistTables(t, 1, 60, weighted(1, 1, 1, 1), 1)
	a, b := newEngine(t, 256, tab), newEngine(t, 256, tab)
	for _, e := range []*Engine{a, b} {
		e.SetPersistLimit(64)
		e.SetPeers([]*assoc.Shard{a.Shard(), b.Shard()})
	}
	for i := range 16 {
		c := client(false, i)
		first := route(t, a, 1, to(t, c, 40000, packet.ProtoTCP, vip4, 33001, packet.TCPFlagSYN))
		for p := range uint16(4) {
			if got := route(t, b, 2, to(t, c, 50000+p, packet.ProtoUDP, vip4, 33001+p, 0)); got != first {
				t.Fatalf("client %d: UDP on the other worker went to server %d, control to %d", i, got, first)
			}
		}
	}
	if got := b.persist.live; got != 16 {
		t.Errorf("the second worker holds %d copies of records, want 16", got)
	}
}

// TestOwnedPorts: an owned destination port goes to its owner for every
// client, before persistence; an owner being left does not take new flows.
func TestOwnedPorts(t *testing.T) {
	tab := persistTables(t, 1, 60, weighted(1, 1, 1, 1), 1)
	ts := tab.Set(1)
	ts.Owned = []OwnedRange{{33002, 33002, 1}, {33003, 33004, 3}}
	e := newEngine(t, 1024, tab)
	e.SetPersistLimit(64)
	for i := range 20 {
		c := client(false, i)
		route(t, e, 1, to(t, c, 40000, packet.ProtoTCP, vip4, 33001, packet.TCPFlagSYN))
		for port, want := range map[uint16]int{33002: 1, 33003: 3, 33004: 3} {
			if got := route(t, e, 1, to(t, c, 50000+port, packet.ProtoUDP, vip4, port, 0)); got != want {
				t.Fatalf("client %d: UDP to owned port %d went to server %d, want its owner %d", i, port, got, want)
			}
		}
	}
	// The owner of 33002 fails with reselect: its port is balanced again.
	servers := weighted(1, 1, 1, 1)
	servers[1] = srv{weight: 0, reselect: true}
	tab2 := persistTables(t, 2, 60, servers, 1)
	tab2.Set(1).Owned = ts.Owned
	e.SetTables(tab2)
	if got := route(t, e, 2, to(t, client(false, 99), 40000, packet.ProtoUDP, vip4, 33002, 0)); got == 1 || got < 0 {
		t.Errorf("UDP to the port of a failed owner went to server %d, want another", got)
	}
	if c := published(e); c.OwnedPort != 60 {
		t.Errorf("OwnedPort = %d, want 60", c.OwnedPort)
	}
}

// TestPersistenceKeepsControlAlive: a control connection idle for longer
// than the delete age while its client's UDP data flows still reaches the
// same server when it speaks again; without persistence it is re-chosen.
func TestPersistenceKeepsControlAlive(t *testing.T) {
	c := client(false, 5)
	for _, persist := range []bool{true, false} {
		// Records live 3 s after the client's last packet: only the data
		// flow's traffic can keep the first one alive until second 8.
		tab := persistTables(t, 1, 3, weighted(1, 1, 1, 1), 1)
		if !persist {
			tab.Set(1).Persist = nil
		}
		e := newEngine(t, 1024, tab)
		e.SetPersistLimit(64)
		ctl := route(t, e, 1, to(t, c, 40000, packet.ProtoTCP, vip4, 33001, packet.TCPFlagSYN))
		for now := uint32(1); now <= 7; now++ { // data for 6 s, delete age 2 s
			route(t, e, now, to(t, c, 50000, packet.ProtoUDP, vip4, 33002, 0))
		}
		got := route(t, e, 8, to(t, c, 40000, packet.ProtoTCP, vip4, 33001, packet.TCPFlagACK))
		cnt := published(e)
		expired := cnt.Expired
		if persist && (got != ctl || cnt.PersistMade != 1) {
			t.Errorf("with persistence: control went to server %d after the data, first to %d; %d records made, want 1 (the first, kept alive)",
				got, ctl, cnt.PersistMade)
		}
		if expired == 0 {
			t.Errorf("persistence %v: the control association did not expire (Expired = 0): the test proves nothing", persist)
		}
	}
}

// TestPersistenceDrainAndFailure: a drained server keeps its recorded
// clients and gets no new one; a failed server with reselect loses them.
func TestPersistenceDrainAndFailure(t *testing.T) {
	tab := persistTables(t, 1, 60, weighted(1, 1), 1)
	e := newEngine(t, 1024, tab)
	e.SetPersistLimit(64)
	clients := map[int]int{}
	for i := range 16 {
		clients[i] = route(t, e, 1, to(t, client(false, i), 40000, packet.ProtoTCP, vip4, 33001, packet.TCPFlagSYN))
	}
	drained := weighted(1, 0)
	e.SetTables(persistTables(t, 2, 60, drained, 1))
	for i, s := range clients {
		if got := route(t, e, 2, to(t, client(false, i), 41000, packet.ProtoUDP, vip4, 33003, 0)); got != s {
			t.Errorf("drained: client %d's new flow went to %d, its record says %d", i, got, s)
		}
	}
	if got := route(t, e, 2, to(t, client(false, 100), 41000, packet.ProtoUDP, vip4, 33003, 0)); got != 0 {
		t.Errorf("drained: a new client went to server %d, want 0", got)
	}
	failed := []srv{{weight: 1}, {weight: 0, reselect: true}}
	e.SetTables(persistTables(t, 3, 60, failed, 1))
	for i := range clients {
		if got := route(t, e, 3, to(t, client(false, i), 42000, packet.ProtoUDP, vip4, 33004, 0)); got != 0 {
			t.Errorf("failed: client %d's new flow went to server %d, want 0", i, got)
		}
	}
}

// TestPersistenceRecordsBounded: beyond its share of records a worker still
// forwards by the set's method and counts what it could not record.
func TestPersistenceRecordsBounded(t *testing.T) {
	tab := persistTables(t, 1, 60, weighted(1, 1, 1), 1)
	e := newEngine(t, 1024, tab)
	e.SetPersistLimit(4)
	for i := range 10 {
		if route(t, e, 1, to(t, client(false, i), 40000, packet.ProtoTCP, vip4, 33001, packet.TCPFlagSYN)) < 0 {
			t.Fatalf("client %d dropped", i)
		}
	}
	if c := published(e); c.PersistMade != 4 || c.PersistFull != 6 {
		t.Errorf("PersistMade %d, PersistFull %d; want 4, 6", c.PersistMade, c.PersistFull)
	}
	// Records expire after their timeout and free their room.
	e.Sweep(1<<20, 62)
	if c := published(e); c.PersistExpired != 4 || e.persist.live != 0 {
		t.Errorf("after the timeout: PersistExpired %d, live %d; want 4, 0", c.PersistExpired, e.persist.live)
	}
}

// TestPersistencePrefix: clients in one /24 share a record with V4Bits 24.
func TestPersistencePrefix(t *testing.T) {
	tab := persistTables(t, 1, 60, weighted(1, 1, 1, 1, 1, 1, 1, 1), 1)
	tab.Set(1).Persist.V4Bits = 24
	e := newEngine(t, 1024, tab)
	e.SetPersistLimit(64)
	first := route(t, e, 1, to(t, netip.MustParseAddr("203.0.113.1"), 40000, packet.ProtoTCP, vip4, 33001, packet.TCPFlagSYN))
	for i := 2; i < 40; i++ {
		c := netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
		if got := route(t, e, 1, to(t, c, 40000, packet.ProtoTCP, vip4, 33001, packet.TCPFlagSYN)); got != first {
			t.Fatalf("client %v of the same /24 went to server %d, the first to %d", c, got, first)
		}
	}
}

// TestPersistenceZeroAllocs: port ownership, persistence lookups across
// workers, record copies and refreshes allocate nothing per packet.
func TestPersistenceZeroAllocs(t *testing.T) {
	tab := persistTables(t, 1, 60, weighted(1, 1, 1, 1), 1)
	tab.Set(1).Owned = []OwnedRange{{33004, 33004, 2}}
	a, b := newEngine(t, 4096, tab), newEngine(t, 4096, tab)
	for _, e := range []*Engine{a, b} {
		e.SetPersistLimit(1024)
		e.SetPeers([]*assoc.Shard{a.Shard(), b.Shard()})
	}
	var frames [][]byte
	for i := range 64 {
		c := client(false, i)
		frames = append(frames, to(t, c, 40000, packet.ProtoTCP, vip4, 33001, packet.TCPFlagSYN),
			to(t, c, 50000, packet.ProtoUDP, vip4, 33002+uint16(i%3), 0))
	}
	acts := make([]Action, 64)
	now := uint32(1)
	allocs := testing.AllocsPerRun(50, func() {
		now++
		a.Process(frames[:64], acts, now)
		b.Process(frames[64:], acts, now)
	})
	if allocs != 0 {
		t.Errorf("Process with persistence: %v allocations per run, want 0", allocs)
	}
	if c := published(b); c.PersistFound == 0 || c.OwnedPort == 0 {
		t.Errorf("fixture: PersistFound %d, OwnedPort %d; want both used", c.PersistFound, c.OwnedPort)
	}
}
