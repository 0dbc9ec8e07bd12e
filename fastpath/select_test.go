package fastpath

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// fair is the score of a server carrying exactly its weight share, as
// slowpath/balance computes it; the fast path only compares scores.
const fair = 1 << 20

// selectTables is buildTables of one set on vip4 that uses method, reads its
// load from cell (nil for none) and has the given peer groups.
func selectTables(tb testing.TB, gen uint64, method uint8, cell *LoadCell, groups []PeerPrefix, servers []srv) *Tables {
	tb.Helper()
	t := buildTables(tb, gen, setSpec{id: 3, vip: vip4, servers: servers})
	ts := t.Set(3)
	ts.Method, ts.Load, ts.PeerGroups = method, cell, groups
	if err := ts.prepareSelection(); err != nil {
		tb.Fatalf("fixture: prepareSelection() = %v", err)
	}
	return t
}

// snapshot returns a snapshot with the given scores and the same penalty
// for every server.
func snapshot(penalty uint32, scores ...uint32) *LoadSnapshot {
	s := &LoadSnapshot{}
	copy(s.Score[:], scores)
	for i := range s.NewPenalty {
		s.NewPenalty[i] = penalty
	}
	return s
}

// peer is a PeerPrefix of an IPv4 or IPv6 prefix in the form workers match.
func peer(prefix string, group uint8) PeerPrefix {
	return PeerPrefix{Prefix: MappedPrefix(netip.MustParsePrefix(prefix)), Group: group}
}

// syns routes one SYN each from c, ports from port on, and returns the
// server of each; a dropped SYN fails the test.
func syns(tb testing.TB, e *Engine, c netip.Addr, port uint16, n int) []int {
	tb.Helper()
	out := make([]int, n)
	for i := range out {
		if out[i] = route(tb, e, 1, tcp(tb, c, port+uint16(i), packet.TCPFlagSYN)); out[i] < 0 {
			tb.Fatalf("SYN from %v:%d dropped", c, port+uint16(i))
		}
	}
	return out
}

// perServer counts the slots in got.
func perServer(got []int) [MaxServers]int {
	var n [MaxServers]int
	for _, s := range got {
		n[s]++
	}
	return n
}

// TestLeastLoad: new associations go to the server with the lowest score,
// and the penalty of the associations a worker made since the snapshot
// levels them over the equally loaded servers instead of all going to one.
func TestLeastLoad(t *testing.T) {
	const p = 1024 // score one association adds
	for _, tc := range []struct {
		name   string
		snap   *LoadSnapshot
		flows  int
		want   [MaxServers]int
		spread int // largest allowed difference to want per server
	}{
		{"server 0 heavily loaded", snapshot(p, 400*p, 100*p, 100*p), 100, [MaxServers]int{0, 50, 50}, 1},
		{"equal load", snapshot(p, 100*p, 100*p, 100*p), 300, [MaxServers]int{100, 100, 100}, 1},
		{"equal load, no penalty given", snapshot(0, fair, fair, fair), 300, [MaxServers]int{100, 100, 100}, 1},
		// Server 2 is 50 associations short of server 1 and 100 of server
		// 0: it takes the first 50 alone, the next 100 with server 1, and
		// the last 250 are shared by all three.
		{"levelling", snapshot(p, 200*p, 150*p, 100*p), 400, [MaxServers]int{83, 133, 184}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cell := new(LoadCell)
			cell.Store(tc.snap)
			e := newEngine(t, 4096, selectTables(t, 1, MethodLeastLoad, cell, nil, weighted(1, 1, 1)))
			got := perServer(syns(t, e, client(false, 1), 1024, tc.flows))
			for s := range got {
				if d := got[s] - tc.want[s]; d > tc.spread || d < -tc.spread {
					t.Fatalf("associations per server got %v, want %v ± %d", got[:3], tc.want[:3], tc.spread)
				}
			}
		})
	}
}

// TestLeastLoadNewSeq: a worker counts its new associations until it sees a
// new snapshot, which is taken to count them.
func TestLeastLoadNewSeq(t *testing.T) {
	const p = fair / 100
	cell := new(LoadCell)
	cell.Store(snapshot(p, 0, 10*p, 10*p)) // server 0 is ten associations short
	e := newEngine(t, 4096, selectTables(t, 1, MethodLeastLoad, cell, nil, weighted(1, 1, 1)))
	c := client(false, 2)
	if got := perServer(syns(t, e, c, 1000, 10)); got[0] != 10 {
		t.Fatalf("first 10 flows: per server %v, want all on server 0", got[:3])
	}
	// Same snapshot: server 0 has caught up, the three tie.
	if got := perServer(syns(t, e, c, 2000, 3)); got != [MaxServers]int{1, 1, 1} {
		t.Fatalf("next 3 flows, same snapshot: per server %v, want one each", got[:3])
	}
	// A new snapshot (the slow path has not seen the load move yet) resets
	// the worker's count.
	cell.Store(snapshot(p, 0, 10*p, 10*p))
	if got := perServer(syns(t, e, c, 3000, 10)); got[0] != 10 {
		t.Fatalf("10 flows after a new snapshot: per server %v, want all on server 0", got[:3])
	}
	// A set that takes over the id (a removed set's) has a cell of its
	// own, whose Seq may well be the one the worker last saw.
	other := new(LoadCell)
	for other.Load() == nil || other.Load().Seq != cell.Load().Seq {
		other.Store(snapshot(p, 0, 10*p, 10*p))
	}
	e.SetTables(selectTables(t, 2, MethodLeastLoad, other, nil, weighted(1, 1, 1)))
	if got := perServer(syns(t, e, c, 4000, 10)); got[0] != 10 {
		t.Fatalf("10 flows to a new set on the id: per server %v, want all on server 0", got[:3])
	}
}

// TestPeerAwareNewSeq: the per-group counts of a worker reset with a new
// snapshot as well.
func TestPeerAwareNewSeq(t *testing.T) {
	const p = 1024
	cell := new(LoadCell)
	cell.Store(snapshot(p, 0, 50*p, 100*p))
	e := newEngine(t, 16, selectTables(t, 1, MethodPeerAware, cell, []PeerPrefix{peer("198.51.100.0/24", 0)}, weighted(1, 1, 1)))
	c := netip.MustParseAddr("198.51.100.1")
	if got := syns(t, e, c, 1000, 2); got[0] != 0 || got[1] != 1 {
		t.Fatalf("two connections: servers %v, want [0 1]", got)
	}
	s := snapshot(p, 0, 50*p, 100*p)
	s.GroupAssoc = [][MaxServers]uint32{{0, 0, 0}}
	cell.Store(s)
	if got := syns(t, e, c, 2000, 1); got[0] != 0 {
		t.Fatalf("connection after a new snapshot counting none: server %d, want 0", got[0])
	}
}

// TestSelectTiesSpread: equal servers share the first new associations of
// a snapshot period by flow hash. Every worker starts each period afresh, so
// breaking ties by slot number would send each worker's first association
// to the same server.
func TestSelectTiesSpread(t *testing.T) {
	cell := new(LoadCell)
	e := newEngine(t, 4096, selectTables(t, 1, MethodLeastLoad, cell, nil, weighted(1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)))
	var got []int
	for i := range 320 {
		cell.Store(snapshot(1, fair, fair, fair, fair, fair, fair, fair, fair, fair, fair, fair, fair, fair, fair, fair, fair))
		got = append(got, syns(t, e, client(false, i), 1000, 1)...)
	}
	for _, n := range perServer(got) {
		if n < 5 || n > 40 {
			t.Fatalf("first flows of 320 periods per server: %v, want about 20 each", perServer(got))
		}
	}
}

// TestSelectEligible: a drained (weight 0), Reselect, unresolved or absent
// server is never chosen, however low its score or group count; with no
// eligible server left the set hashes, and the drop is counted as for
// MethodHash.
func TestSelectEligible(t *testing.T) {
	servers := []srv{{weight: 0}, {weight: 1, reselect: true}, {weight: 1, noMAC: true}, {absent: true}, {weight: 1}, {weight: 1}}
	for _, method := range []uint8{MethodLeastLoad, MethodPeerAware} {
		cell := new(LoadCell)
		s := snapshot(fair/100, 0, 0, 0, 0, fair, fair)
		s.GroupAssoc = [][MaxServers]uint32{{0, 0, 0, 0, 5, 5}}
		cell.Store(s)
		e := newEngine(t, 4096, selectTables(t, 1, method, cell, []PeerPrefix{peer("100.64.0.0/10", 0)}, servers))
		got := perServer(syns(t, e, client(false, 3), 1000, 100))
		if got[4]+got[5] != 100 || got[4] != got[5] {
			t.Errorf("method %d: per server %v, want 50 each on servers 4 and 5", method, got[:6])
		}
	}

	for _, tc := range []struct {
		name    string
		servers []srv
		want    Reason
	}{
		{"every server drained", []srv{{weight: 0}, {weight: 0}}, DropNoServer},
		{"every server unresolved", []srv{{weight: 1, noMAC: true}, {weight: 1, noMAC: true}}, DropNeighborUnresolved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cell := new(LoadCell)
			cell.Store(snapshot(1, fair, fair))
			e := newEngine(t, 16, selectTables(t, 1, MethodLeastLoad, cell, nil, tc.servers))
			if a := send(e, 1, tcp(t, client(false, 4), 1000, packet.TCPFlagSYN))[0]; a != Drop {
				t.Fatalf("verdict %d, want Drop", a)
			}
			if c := published(e); c.Drops[tc.want] != 1 || c.Dropped() != 1 {
				t.Errorf("Drops[%s] = %d of %d, want 1 of 1", tc.want, c.Drops[tc.want], c.Dropped())
			}
		})
	}
}

// TestSelectFallsBackToHash: without a snapshot a least-load set hashes, as
// does a flow the full shard cannot record (its next packet must find the
// same server); a hash set ignores a snapshot.
func TestSelectFallsBackToHash(t *testing.T) {
	loaded := new(LoadCell)
	loaded.Store(snapshot(fair, 0, 9*fair, 9*fair, 9*fair)) // everything would go to server 0
	for _, tc := range []struct {
		name   string
		method uint8
		cell   *LoadCell
		limit  int
	}{
		{"least_load, no cell", MethodLeastLoad, nil, 4096},
		{"least_load, empty cell", MethodLeastLoad, new(LoadCell), 4096},
		{"peer aware, empty cell", MethodPeerAware, new(LoadCell), 4096},
		{"hash with a snapshot", MethodHash, loaded, 4096},
		{"least_load, shard full", MethodLeastLoad, loaded, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab := selectTables(t, 1, tc.method, tc.cell, []PeerPrefix{peer("100.64.0.0/10", 0)}, weighted(1, 1, 1, 1))
			e := newEngine(t, tc.limit, tab)
			if tc.limit == 1 {
				send(e, 1, tcp(t, client(false, 9999), 1, packet.TCPFlagSYN)) // fills the shard
			}
			for i := range 1000 {
				c := client(false, i)
				if got, want := route(t, e, 1, tcp(t, c, 5000, packet.TCPFlagSYN)), maglevSlot(tab.Set(3), c, 5000, packet.ProtoTCP); got != want {
					t.Fatalf("flow %d: got server %d, want %d (Maglev's)", i, got, want)
				}
			}
		})
	}
}

// TestSelectKeepsAssociations: a new snapshot showing a flow's server as the
// most loaded does not move the flow.
func TestSelectKeepsAssociations(t *testing.T) {
	cell := new(LoadCell)
	cell.Store(snapshot(fair/100, 0, fair, fair))
	e := newEngine(t, 4096, selectTables(t, 1, MethodLeastLoad, cell, nil, weighted(1, 1, 1)))
	c := client(false, 5)
	was := syns(t, e, c, 1000, 20)
	if got := perServer(was); got[0] != 20 {
		t.Fatalf("fixture: per server %v, want all on server 0", got[:3])
	}
	cell.Store(snapshot(fair/100, 10*fair, 0, 0))
	for i := range was {
		if got := route(t, e, 2, tcp(t, c, 1000+uint16(i), packet.TCPFlagACK)); got != 0 {
			t.Fatalf("flow %d: ACK went to server %d, want 0 (its association)", i, got)
		}
	}
	if got := route(t, e, 2, tcp(t, c, 999, packet.TCPFlagSYN)); got == 0 {
		t.Errorf("new flow went to server 0, the most loaded")
	}
}

// TestPeerAware: each peer group's associations spread over the servers
// whatever the overall load; when a server fails only its associations
// move, and each group stays spread.
func TestPeerAware(t *testing.T) {
	groups := []PeerPrefix{peer("198.51.100.0/28", 0), peer("203.0.113.0/28", 1), peer("192.0.2.128/25", 2)}
	peers := []netip.Addr{
		netip.MustParseAddr("198.51.100.5"),
		netip.MustParseAddr("203.0.113.9"),
		netip.MustParseAddr("192.0.2.200"),
	}
	// By load alone all nine connections would go to server 0.
	const p = 1024
	cell := new(LoadCell)
	cell.Store(snapshot(p, 0, 50*p, 100*p))
	tabA := selectTables(t, 1, MethodPeerAware, cell, groups, weighted(1, 1, 1))
	e := newEngine(t, 4096, tabA)
	was := make([][]int, len(peers))
	for p, c := range peers {
		was[p] = syns(t, e, c, 3868, 3)
		if got := perServer(was[p]); got != [MaxServers]int{1, 1, 1} {
			t.Fatalf("peer %d: connections per server %v, want one each", p, got[:3])
		}
	}
	if got := CountAssociations(tabA, []*assoc.Shard{e.Shard()})[3]; got.Server != [MaxServers]uint64{3, 3, 3} ||
		!slices.Equal(got.Group, [][MaxServers]uint32{{1, 1, 1}, {1, 1, 1}, {1, 1, 1}}) {
		t.Fatalf("CountAssociations = %+v, want 3 per server, 1 per group and server", got)
	}

	// Server 1 fails; the cell carries over to the new generation.
	tabB := selectTables(t, 2, MethodPeerAware, cell, groups, []srv{{weight: 1}, {weight: 1, reselect: true}, {weight: 1}})
	e.SetTables(tabB)
	var total [MaxServers]int
	for p, c := range peers {
		now := make([]int, len(was[p]))
		for i, s := range was[p] {
			now[i] = route(t, e, 2, tcp(t, c, 3868+uint16(i), packet.TCPFlagACK))
			if s != 1 && now[i] != s {
				t.Errorf("peer %d connection %d moved from server %d to %d", p, i, s, now[i])
			}
		}
		got := perServer(now)
		if got[1] != 0 || got[0] == 0 || got[2] == 0 {
			t.Errorf("peer %d after server 1 failed: connections per server %v, want both servers used", p, got[:3])
		}
		for s, n := range got {
			total[s] += n
		}
	}
	got := CountAssociations(tabB, []*assoc.Shard{e.Shard()})[3]
	var want [MaxServers]uint64
	for s, n := range total {
		want[s] = uint64(n)
	}
	if got.Server != want {
		t.Errorf("CountAssociations after the failure: %v, want %v", got.Server, want)
	}
}

// TestPeerAwareChoice: the snapshot's group counts per unit weight decide
// first, the load breaks ties, clients in no group go by load alone.
func TestPeerAwareChoice(t *testing.T) {
	groups := []PeerPrefix{peer("198.51.100.0/24", 0), peer("2001:db8:c::/48", 1), peer("198.51.100.0/28", 2)}
	inGroup0 := netip.MustParseAddr("198.51.100.7") // also in group 2's prefix: the first match wins
	for _, tc := range []struct {
		name    string
		client  netip.Addr
		weights []uint32
		scores  []uint32
		group   [][MaxServers]uint32
		want    int
	}{
		{"fewest of the group beats least load", inGroup0, []uint32{1, 1, 1}, []uint32{0, fair, 2 * fair},
			[][MaxServers]uint32{{4, 3, 3}}, 1},
		{"group tie broken by load", inGroup0, []uint32{1, 1, 1}, []uint32{fair, 2 * fair, fair / 2},
			[][MaxServers]uint32{{3, 3, 3}}, 2},
		{"per unit weight", inGroup0, []uint32{1, 3}, []uint32{0, fair},
			[][MaxServers]uint32{{1, 2}}, 1},
		{"other groups' counts do not matter", inGroup0, []uint32{1, 1}, []uint32{fair, 0},
			[][MaxServers]uint32{{0, 1}, {9, 0}}, 0},
		{"group beyond the snapshot's counts", client(true, 1), []uint32{1, 1}, []uint32{fair, 0},
			[][MaxServers]uint32{{0, 9}}, 1},
		{"IPv6 peer", client(true, 1), []uint32{1, 1}, []uint32{0, fair},
			[][MaxServers]uint32{{0, 0}, {2, 1}}, 1},
		{"no group: least load", client(false, 1), []uint32{1, 1}, []uint32{fair, 0},
			[][MaxServers]uint32{{0, 9}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cell := new(LoadCell)
			s := snapshot(1, tc.scores...)
			s.GroupAssoc = tc.group
			cell.Store(s)
			tab := selectTables(t, 1, MethodPeerAware, cell, groups, weighted(tc.weights...))
			if tc.client.Is6() {
				tab = buildTables(t, 1, setSpec{id: 3, vip: vip6, servers: weighted(tc.weights...)})
				tab.Set(3).Method, tab.Set(3).Load, tab.Set(3).PeerGroups = MethodPeerAware, cell, groups
			}
			e := newEngine(t, 16, tab)
			if got := route(t, e, 1, tcp(t, tc.client, 3868, packet.TCPFlagSYN)); got != tc.want {
				t.Errorf("new connection of %v: got server %d, want %d", tc.client, got, tc.want)
			}
		})
	}
}

// TestPeerGroupClassify: prefixes of both families match the 16-byte client
// addresses of packet.Flow, first match first.
func TestPeerGroupClassify(t *testing.T) {
	ts := &TargetSet{PeerGroups: []PeerPrefix{peer("198.51.100.0/28", 4), peer("198.51.100.0/24", 5), peer("2001:db8::/32", 63)}}
	for _, tc := range []struct {
		addr  string
		group uint8
		ok    bool
	}{
		{"198.51.100.1", 4, true},
		{"198.51.100.16", 5, true},
		{"198.51.101.1", 0, false},
		{"2001:db8::1", 63, true},
		{"::ffff:198.51.100.1", 4, true}, // the form it arrives in anyway
		{"2001:db9::1", 0, false},
	} {
		a := netip.MustParseAddr(tc.addr).As16()
		if g, ok := ts.PeerGroup(&a); g != tc.group || ok != tc.ok {
			t.Errorf("PeerGroup(%s) = %d, %v, want %d, %v", tc.addr, g, ok, tc.group, tc.ok)
		}
	}
	if got, want := MappedPrefix(netip.MustParsePrefix("10.0.0.0/8")), netip.MustParsePrefix("::ffff:10.0.0.0/104"); got != want {
		t.Errorf("MappedPrefix(10.0.0.0/8) = %v, want %v", got, want)
	}
	if got := ts.NumPeerGroups(); got != 64 {
		t.Errorf("NumPeerGroups() = %d, want 64", got)
	}
}

// TestNewTablesChecksSelection: NewTables refuses what workers would get
// wrong silently.
func TestNewTablesChecksSelection(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method uint8
		groups []PeerPrefix
	}{
		{"unknown method", MethodPeerAware + 1, nil},
		{"group 64", MethodPeerAware, []PeerPrefix{peer("10.0.0.0/8", MaxPeerGroups)}},
		{"IPv4 prefix not mapped", MethodPeerAware, []PeerPrefix{{Prefix: netip.MustParsePrefix("10.0.0.0/8")}}},
		{"invalid prefix", MethodPeerAware, []PeerPrefix{{}}},
	} {
		ts := buildTables(t, 1, setSpec{id: 1, vip: vip4, servers: weighted(1)}).Set(1)
		ts.Method, ts.PeerGroups = tc.method, tc.groups
		if _, err := NewTables(2, []*TargetSet{ts}); !errors.Is(err, ErrBadTables) {
			t.Errorf("%s: NewTables error = %v, want ErrBadTables", tc.name, err)
		}
	}
}

// TestSelectConcurrentStore: the slow path stores snapshots while a worker
// makes associations (run with -race).
func TestSelectConcurrentStore(t *testing.T) {
	cell := new(LoadCell)
	cell.Store(snapshot(fair/100, fair, fair, fair))
	e := newEngine(t, 1<<16, selectTables(t, 1, MethodPeerAware, cell, []PeerPrefix{peer("100.64.0.0/10", 0)}, weighted(1, 1, 1)))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := uint32(0); ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			s := snapshot(fair/100, fair+i%3, fair, fair+i%5)
			s.GroupAssoc = [][MaxServers]uint32{{i % 7, i % 3, 0}}
			cell.Store(s)
		}
	})
	for i := range 20000 {
		if route(t, e, 1, tcp(t, client(false, i), 1000, packet.TCPFlagSYN)) < 0 {
			t.Fatalf("flow %d dropped", i)
		}
	}
	close(stop)
	wg.Wait()
}

// TestSelectZeroAllocs: a batch of new flows to least-load and peer-aware
// sets, with snapshots changing between batches, allocates nothing.
func TestSelectZeroAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation changes allocation behaviour")
	}
	ll, pa := new(LoadCell), new(LoadCell)
	tabs := buildTables(t, 1,
		setSpec{id: 1, vip: vip4, servers: weighted(1, 2, 3)},
		setSpec{id: 2, vip: vip6, servers: weighted(1, 1, 1, 1)},
	)
	tabs.Set(1).Method, tabs.Set(1).Load = MethodLeastLoad, ll
	tabs.Set(2).Method, tabs.Set(2).Load = MethodPeerAware, pa
	tabs.Set(2).PeerGroups = []PeerPrefix{peer("2001:db8:d::/48", 0), peer("2001:db8:c::/48", 1)}
	e := newEngine(t, 1<<16, tabs)
	const runs = 100
	snaps := make([]*LoadSnapshot, 2*(runs+2)) // AllocsPerRun makes one warm-up run
	for i := range snaps {
		snaps[i] = snapshot(fair/50, fair, fair+uint32(i), fair-uint32(i), fair)
		snaps[i].GroupAssoc = [][MaxServers]uint32{{1, 2, 3, uint32(i)}, {3, 2, 1, 0}}
	}
	var batch [][]byte
	for i := range 32 {
		batch = append(batch, tcp(t, client(false, i), 0, packet.TCPFlagSYN), tcp(t, client(true, i<<16|i), 0, packet.TCPFlagSYN))
	}
	acts := make([]Action, len(batch))
	const tcpSrcPort4, tcpSrcPort6 = packet.EthernetHeaderLen + packet.IPv4MinHeaderLen, packet.EthernetHeaderLen + packet.IPv6HeaderLen
	var run uint32
	allocs := testing.AllocsPerRun(runs, func() {
		run++
		if run%4 == 0 {
			ll.Store(snaps[2*run])
			pa.Store(snaps[2*run+1])
		}
		for i, f := range batch { // fresh flows every run
			off := tcpSrcPort4
			if i%2 == 1 {
				off = tcpSrcPort6
			}
			binary.BigEndian.PutUint16(f[off:], uint16(run))
		}
		e.Process(batch, acts, 1)
		e.Sweep(64, 1)
		e.Publish()
	})
	if allocs != 0 {
		t.Errorf("Process+Sweep+Publish of a 64-frame batch of new flows: got %v allocations per run, want 0", allocs)
	}
	if c := published(e); c.NewAssociations != uint64(run)*64 || c.Dropped() != 0 {
		t.Errorf("fixture: NewAssociations %d, Dropped %d, want %d, 0", c.NewAssociations, c.Dropped(), run*64)
	}
}

// BenchmarkSelectNewFlows is BenchmarkProcess/NewFlows with the set's method
// changed: the cost of choosing by load instead of by hash, for a SYN flood
// of 1M flows from one peer group.
func BenchmarkSelectNewFlows(b *testing.B) {
	for _, bc := range []struct {
		name   string
		method uint8
	}{
		{"Hash", MethodHash},
		{"LeastLoad", MethodLeastLoad},
		{"PeerAware", MethodPeerAware},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tabs := benchTables(b)
			cell := new(LoadCell)
			s := snapshot(1024)
			for i := range s.Score {
				s.Score[i] = fair + uint32(i)*1024
			}
			s.GroupAssoc = [][MaxServers]uint32{{}, {}}
			cell.Store(s)
			ts := tabs.Set(1)
			ts.Method, ts.Load = bc.method, cell
			ts.PeerGroups = []PeerPrefix{peer("192.168.0.0/16", 0), peer("10.0.0.0/8", 1)}
			e := newEngine(b, benchFlows, tabs)
			ar := newArena(b, benchFlows)
			ar.fill(b, packet.TCPFlagSYN, nil)
			runBatches(b, e, ar.frames, func(now uint32) uint32 {
				now += benchAge + 1
				e.Sweep(2*benchFlows, now)
				e.Publish()
				next := *s // a new period
				cell.Store(&next)
				return now
			})
			checkCounters(b, e, func(c *Counters) bool {
				return c.NewAssociations == c.RxPackets && c.Stateless == 0
			})
		})
	}
}

// BenchmarkCountAssociations is the slow path's per-period walk of a worker
// shard holding 1M associations of a peer-aware set.
func BenchmarkCountAssociations(b *testing.B) {
	e, _ := benchEstablished(b, benchFlows)
	ts := e.Tables().Set(1)
	ts.Method, ts.PeerGroups = MethodPeerAware, []PeerPrefix{peer("10.0.0.0/9", 0), peer("10.128.0.0/9", 1)}
	shards := []*assoc.Shard{e.Shard()}
	b.ReportAllocs()
	for b.Loop() {
		if got := CountAssociations(e.Tables(), shards)[1]; got.Group[0][0]+got.Group[1][0] != uint32(got.Server[0]) {
			b.Fatalf("group counts %v do not add up to %v", got.Group, got.Server)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchFlows), "ns/assoc")
}
