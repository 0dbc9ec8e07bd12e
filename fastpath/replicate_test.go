package fastpath

import (
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// drainChanges takes every change e reported so far.
func drainChanges(e *Engine) []Change {
	var out []Change
	buf := make([]Change, 64)
	for {
		n := e.replica.changes.PopBatch(buf)
		if n == 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}

// TestChangesReported: a replicating engine reports what its packets do to
// its shard (a record made, proven, torn down, expired), and nothing for what
// the slow path writes through the control ring.
func TestChangesReported(t *testing.T) {
	tab := buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1, 1), synAge: 5})
	e := newEngine(t, 64, tab)
	e.enableChanges()
	c := client(false, 1)
	k := key(c, 4000, packet.ProtoTCP, 1)
	route(t, e, 1, tcpSeqFrame(t, c, 4000, packet.TCPFlagSYN, 100))
	route(t, e, 1, tcpSeqFrame(t, c, 4000, packet.TCPFlagACK, 101))
	route(t, e, 1, tcpSeqFrame(t, c, 4000, packet.TCPFlagACK, 101)) // nothing new
	route(t, e, 1, tcpSeqFrame(t, c, 4000, packet.TCPFlagFIN|packet.TCPFlagACK, 101))
	got := drainChanges(e)
	wantFlags := []uint8{0, assoc.FlagProven, assoc.FlagProven | assoc.FlagFIN}
	if len(got) != len(wantFlags) {
		t.Fatalf("changes = %+v, want %d upserts (made, proven, FIN)", got, len(wantFlags))
	}
	for i, ch := range got {
		if ch.Op != ChangeUpsert || ch.Key != k || ch.Value.Flags != wantFlags[i] {
			t.Errorf("change %d = %+v, want an upsert of %+v with flags %#x", i, ch, k, wantFlags[i])
		}
	}
	// A record the slow path imports is not reported back.
	imported := key(client(false, 2), 4000, packet.ProtoTCP, 1)
	if r := e.ApplyControl(&ControlMsg{Op: ControlImport, Key: imported, Value: assoc.Value{Server: 1, Gen: 1, LastSeen: 1}}); r != ControlApplied {
		t.Fatalf("ControlImport = %d, want applied", r)
	}
	if got := drainChanges(e); len(got) != 0 {
		t.Errorf("an import was reported: %+v", got)
	}
	// Past delete_age the flow expires and is reported deleted; the
	// import, never proven, expires after syn_age, also reported.
	e.Sweep(1024, 1+testAge+1)
	got = drainChanges(e)
	deleted := map[assoc.Key]bool{}
	for _, ch := range got {
		if ch.Op == ChangeDelete {
			deleted[ch.Key] = true
		}
	}
	if !deleted[k] || !deleted[imported] || len(got) != 2 {
		t.Errorf("after expiry: changes %+v, want deletes of the flow and the import", got)
	}
}

// TestControlImport: an import adds a record or replaces an earlier import,
// never a record this instance made; an unimport removes imports only.
func TestControlImport(t *testing.T) {
	e := newEngine(t, 64, buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1, 1)}))
	c := client(false, 3)
	k := key(c, 4000, packet.ProtoTCP, 1)
	apply := func(op ControlOp, server uint8) ControlResult {
		return e.ApplyControl(&ControlMsg{Op: op, Key: k, Value: assoc.Value{Server: server, Gen: 1, LastSeen: 1}})
	}
	if r := apply(ControlImport, 0); r != ControlApplied {
		t.Fatalf("import into an empty shard = %d", r)
	}
	if r := apply(ControlImport, 1); r != ControlApplied {
		t.Fatalf("import over an import = %d", r)
	}
	if v, _ := e.Shard().Get(&k); v.Server != 1 || v.Origin != assoc.OriginImported {
		t.Errorf("record after two imports = %+v, want server 1, imported", v)
	}
	if r := apply(ControlUnimport, 0); r != ControlApplied {
		t.Fatalf("unimport = %d", r)
	}
	local := route(t, e, 1, tcp(t, c, 4000, packet.TCPFlagSYN))
	if r := apply(ControlImport, uint8(1-local)); r != ControlExists {
		t.Errorf("import over a local record = %d, want ControlExists", r)
	}
	if r := apply(ControlUnimport, 0); r != ControlExists {
		t.Errorf("unimport of a local record = %d, want ControlExists", r)
	}
	if got := route(t, e, 1, tcp(t, c, 4000, packet.TCPFlagACK)); got != local {
		t.Errorf("local flow moved to server %d, want %d", got, local)
	}
}

// TestAdoptImported: after a failover a mate's flow arrives on whichever
// worker RSS gives it; the worker finds the import in another worker's
// shard and takes it as its own, so the flow keeps its server even where
// the hash (and least-load) would choose another.
func TestAdoptImported(t *testing.T) {
	_, tabB, port, slotA, slotB := twoTables(t, setSpec{id: 1, vip: vip4}, client(false, 4), packet.ProtoTCP)
	c := client(false, 4)
	owner, other := newEngine(t, 64, tabB), newEngine(t, 64, tabB)
	for _, e := range []*Engine{owner, other} {
		e.enableChanges()
		e.SetPeers([]*assoc.Shard{owner.Shard(), other.Shard()})
	}
	k := key(c, port, packet.ProtoTCP, 1)
	// The mate chose slotA (under its tables); here the hash says slotB.
	if r := owner.ApplyControl(&ControlMsg{Op: ControlImport, Key: k,
		Value: assoc.Value{Server: uint8(slotA), Gen: 1, Flags: assoc.FlagProven, LastSeen: 1}}); r != ControlApplied {
		t.Fatalf("import = %d", r)
	}
	if got := route(t, other, 2, tcp(t, c, port, packet.TCPFlagACK)); got != slotA {
		t.Fatalf("the mate's flow on another worker: server %d, want the imported %d (the hash says %d)", got, slotA, slotB)
	}
	if v, ok := other.Shard().Get(&k); !ok || v.Origin != assoc.OriginLocal || int(v.Server) != slotA {
		t.Errorf("adopted record = %+v, %v; want a local copy naming server %d", v, ok, slotA)
	}
	if n := published(other).Adopted; n != 1 {
		t.Errorf("Adopted = %d, want 1", n)
	}
	// Without replication a worker does not look.
	plain := newEngine(t, 64, tabB)
	plain.SetPeers([]*assoc.Shard{owner.Shard()})
	if got := route(t, plain, 2, tcp(t, c, port, packet.TCPFlagACK)); got != slotB {
		t.Errorf("without replication: server %d, want the hash's %d", got, slotB)
	}
}

// TestRefreshReported: a flow that keeps sending is reported again within
// refreshEvery seconds, so its mate's copy outlives its delete age.
func TestRefreshReported(t *testing.T) {
	e := newEngine(t, 64, buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1)}))
	e.enableChanges()
	c := client(false, 5)
	route(t, e, 1, tcp(t, c, 4000, packet.TCPFlagSYN))
	route(t, e, 1, tcp(t, c, 4000, packet.TCPFlagACK))
	drainChanges(e)
	refreshes := 0
	for now := uint32(2); now < 2+2*refreshEvery; now++ {
		route(t, e, now, tcp(t, c, 4000, packet.TCPFlagACK))
		route(t, e, now, tcp(t, c, 4000, packet.TCPFlagACK)) // the second packet of a second moves nothing
		refreshes += len(drainChanges(e))
	}
	if refreshes != 2 {
		t.Errorf("%d refreshes in %d seconds of traffic, want 2 (one per %d s)", refreshes, 2*refreshEvery, refreshEvery)
	}
}

// TestChangesZeroAllocs: reporting changes allocates nothing per packet.
func TestChangesZeroAllocs(t *testing.T) {
	e := newEngine(t, 4096, buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1, 1)}))
	e.enableChanges()
	frames := make([][]byte, 64)
	for i := range frames {
		frames[i] = tcp(t, client(false, i), 4000, packet.TCPFlagSYN)
	}
	acts := make([]Action, len(frames))
	buf := make([]Change, 128)
	now := uint32(1)
	allocs := testing.AllocsPerRun(50, func() {
		e.Process(frames, acts, now)
		e.replica.changes.PopBatch(buf)
		now += testAge + 1
		e.Sweep(8192, now)
		e.replica.changes.PopBatch(buf)
	})
	if allocs != 0 {
		t.Errorf("AllocsPerRun = %v, want 0", allocs)
	}
}
