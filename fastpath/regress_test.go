package fastpath

import (
	"testing"

	"github.com/ipfront/ipfront/fastpath/maglev"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// TestLeastLoadMidStreamFollowsHash: on a least-load set, a connection whose
// first packet ipfront sees is not its opening one (it predates a restart, or
// went statelessly while the table was full) must stay where the stateless
// hash sent it, not be re-chosen by load and moved mid-connection. Opening
// packets (SYN, INIT, any UDP datagram) still go by load.
func TestLeastLoadMidStreamFollowsHash(t *testing.T) {
	const p = 1024
	for _, method := range []uint8{MethodLeastLoad, MethodPeerAware} {
		cell := new(LoadCell)
		cell.Store(snapshot(p, 0, 100*p, 100*p)) // by load, everything goes to server 0
		tab := selectTables(t, 1, method, cell, nil, weighted(1, 1, 1))
		tab.Set(3).Protos = ProtoBitTCP | ProtoBitUDP | ProtoBitSCTP
		e := newEngine(t, 64, tab)
		c := client(false, 7)
		// A port Maglev gives to another server than load would.
		port := uint16(2000)
		for ; tab.Set(3).Maglev.Lookup(maglev.Hash(c.As16(), port, packet.ProtoTCP)) == 0; port++ {
		}
		hashed := int(tab.Set(3).Maglev.Lookup(maglev.Hash(c.As16(), port, packet.ProtoTCP)))
		if got := route(t, e, 1, tcp(t, c, port, packet.TCPFlagACK)); got != hashed {
			t.Errorf("method %d: ACK of an unknown connection went to server %d, want %d (the hash's)", method, got, hashed)
		}
		if got := route(t, e, 2, tcp(t, c, port, packet.TCPFlagACK|packet.TCPFlagPSH)); got != hashed {
			t.Errorf("method %d: its next packet went to server %d, want %d", method, got, hashed)
		}
		if got := route(t, e, 1, tcp(t, c, port+1000, packet.TCPFlagSYN)); got != 0 {
			t.Errorf("method %d: SYN went to server %d, want 0 (least loaded)", method, got)
		}
	}
}

// TestGaugeSurvivesServerlessReselection: an association whose server is
// being left while no other server can take it must not be counted off its
// server again on every packet; the per-server gauge feeds least-load and the
// balance alarm, so it must be exact again once a server is back.
func TestGaugeSurvivesServerlessReselection(t *testing.T) {
	c := client(false, 8)
	tabA := buildTables(t, 1, setSpec{id: 2, vip: vip4, servers: weighted(1)})
	e := newEngine(t, 64, tabA)
	if got := route(t, e, 1, tcp(t, c, 3000, packet.TCPFlagSYN)); got != 0 {
		t.Fatalf("SYN went to server %d, want 0", got)
	}
	gauge := func() int64 { return published(e).ServerAssociations[2*MaxServers] }
	// The only server fails with reselect: nothing can take the flow.
	tabB := buildTables(t, 2, setSpec{id: 2, vip: vip4, servers: []srv{{weight: 0, reselect: true}}})
	e.SetTables(tabB)
	for i := range 3 {
		if got := route(t, e, 2, tcp(t, c, 3000, packet.TCPFlagACK)); got != -1 {
			t.Fatalf("packet %d while no server is eligible went to server %d, want a drop", i, got)
		}
		if g := gauge(); g != 0 {
			t.Fatalf("after packet %d with no server: gauge %d, want 0", i, g)
		}
	}
	// The server recovers (same slot, same generation).
	e.SetTables(tabA)
	if got := route(t, e, 3, tcp(t, c, 3001, packet.TCPFlagSYN)); got != 0 {
		t.Fatalf("SYN after recovery went to server %d, want 0", got)
	}
	if g, live := gauge(), e.Shard().Live(); g != 1 || live != 1 {
		t.Errorf("after recovery: gauge %d, live associations %d; want 1, 1", g, live)
	}
}
