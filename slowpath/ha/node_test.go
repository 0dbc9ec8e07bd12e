package ha

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/maglev"
)

var testKey = []byte("ipfront-ha-test-key-32-bytes....")

// fakePlane is a data plane of two workers whose shards are maps: the
// records the test makes are local and reported as changes; control
// messages are applied at once with the fast path's import rules.
type fakePlane struct {
	mu      sync.Mutex
	tables  *fastpath.Tables
	shards  [2]map[assoc.Key]assoc.Value
	changes [2][]fastpath.Change
	dropped atomic.Uint64
}

func newFakePlane(t *fastpath.Tables) *fakePlane {
	return &fakePlane{tables: t, shards: [2]map[assoc.Key]assoc.Value{{}, {}}}
}

func (p *fakePlane) NumWorkers() int { return 2 }

func (p *fakePlane) DrainChanges(w int, out []fastpath.Change) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := copy(out, p.changes[w])
	p.changes[w] = p.changes[w][n:]
	return n
}

func (p *fakePlane) PushControl(w int, m fastpath.ControlMsg) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	old, found := p.shards[w][m.Key]
	switch m.Op {
	case fastpath.ControlImport:
		if found && old.Origin != assoc.OriginImported {
			return true // a local record stays (ControlExists)
		}
		m.Value.Origin = assoc.OriginImported
		p.shards[w][m.Key] = m.Value
	case fastpath.ControlUnimport:
		if found && old.Origin == assoc.OriginImported {
			delete(p.shards[w], m.Key)
		}
	}
	return true
}

func (p *fakePlane) Owner(k *assoc.Key) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, s := range p.shards {
		if _, ok := s[*k]; ok {
			return i
		}
	}
	return int(k.Port) % 2
}

func (p *fakePlane) Tables() *fastpath.Tables { return p.tables }

func (p *fakePlane) Range(w int, fn func(assoc.Key, assoc.Value) bool) {
	p.mu.Lock()
	recs := make(map[assoc.Key]assoc.Value, len(p.shards[w]))
	for k, v := range p.shards[w] {
		recs[k] = v
	}
	p.mu.Unlock()
	for k, v := range recs {
		if !fn(k, v) {
			return
		}
	}
}

func (p *fakePlane) ChangesDropped() uint64 { return p.dropped.Load() }

// put makes (or changes) a local record on worker w and reports it, unless
// silent.
func (p *fakePlane) put(w int, k assoc.Key, v assoc.Value, silent bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.shards[w][k] = v
	if !silent {
		p.changes[w] = append(p.changes[w], fastpath.Change{Op: fastpath.ChangeUpsert, Key: k, Value: v})
	}
}

// del deletes a local record of worker w and reports it.
func (p *fakePlane) del(w int, k assoc.Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.shards[w], k)
	p.changes[w] = append(p.changes[w], fastpath.Change{Op: fastpath.ChangeDelete, Key: k})
}

// records returns every record of origin o in any shard.
func (p *fakePlane) records(o assoc.Origin) map[assoc.Key]assoc.Value {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[assoc.Key]assoc.Value{}
	for _, s := range p.shards {
		for k, v := range s {
			if v.Origin == o {
				out[k] = v
			}
		}
	}
	return out
}

// testServers are the lab's servers; instances put them in different slots
// with different generations, as two daemons with their own histories do.
var testServers = []netip.Addr{
	netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12"), netip.MustParseAddr("198.51.100.13"),
}

// testTables is one set "web" with id setID and testServers in the order
// given by slots (slots[i] is the slot of testServers[i]), generations
// from gen0 on.
func testTables(t *testing.T, setID uint16, slots []int, gen0 uint32) *fastpath.Tables {
	t.Helper()
	ts := &fastpath.TargetSet{ID: setID, Name: "web", VIP: netip.MustParseAddr("::ffff:192.0.2.10").As16(),
		Protos: fastpath.ProtoBitTCP, Ports: []fastpath.PortRange{{First: 80, Last: 80}}, DeleteAge: 600}
	backends := make([]maglev.Backend, len(testServers))
	for i, a := range testServers {
		s := slots[i]
		ts.Servers[s] = fastpath.Server{Addr: a, Gen: gen0 + uint32(i), Weight: 1, Present: true, AddrID: uint32(i + 1)}
		backends[s] = maglev.Backend{Key: a.String(), Weight: 1}
	}
	mt, err := maglev.New(backends, 251)
	if err != nil {
		t.Fatal(err)
	}
	ts.Maglev = mt
	tab, err := fastpath.NewTables(1, []*fastpath.TargetSet{ts})
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

// lossyConn drops outgoing datagrams with probability loss, and can record
// what it sends.
type lossyConn struct {
	*net.UDPConn
	mu      sync.Mutex
	rng     *rand.Rand
	loss    float64
	dropped int
	record  bool
	sent    [][]byte
	// drop, if set, is asked about every datagram by its message type
	// (wire.go) and drops it when it says so.
	drop func(typ byte) bool
}

func (c *lossyConn) WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	c.mu.Lock()
	if c.record {
		c.sent = append(c.sent, append([]byte(nil), b...))
	}
	if c.rng.Float64() < c.loss || c.drop != nil && len(b) > 5 && c.drop(b[5]) {
		c.dropped++
		c.mu.Unlock()
		return len(b), nil
	}
	c.mu.Unlock()
	return c.UDPConn.WriteToUDPAddrPort(b, addr)
}

func (c *lossyConn) setLoss(p float64) {
	c.mu.Lock()
	c.loss = p
	c.mu.Unlock()
}

func listenLoopback(t *testing.T, seed uint64) *lossyConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	return &lossyConn{UDPConn: c, rng: rand.New(rand.NewPCG(seed, seed+1))}
}

func addrOf(c *lossyConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// pair is two mated instances on loopback: a's tables put the servers in
// slots 0,1,2 (gens 1..3), b's in 2,0,1 (gens 7..9), with another set id.
type pair struct {
	a, b     *Node
	pa, pb   *fakePlane
	ca, cb   *lossyConn
	joinWait time.Duration
}

func newPair(t *testing.T, startB bool) *pair {
	t.Helper()
	p := &pair{pa: newFakePlane(testTables(t, 1, []int{0, 1, 2}, 1)), pb: newFakePlane(testTables(t, 4, []int{2, 0, 1}, 7)),
		ca: listenLoopback(t, 1), cb: listenLoopback(t, 2), joinWait: 300 * time.Millisecond}
	t.Cleanup(func() {
		p.ca.Close()
		p.cb.Close()
	})
	var err error
	p.a, err = Start(Config{Mates: []netip.AddrPort{addrOf(p.cb)}, Key: testKey, Log: zerolog.Nop(), Conn: p.ca,
		JoinTimeout: p.joinWait}, p.pa)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.a.Close() })
	if startB {
		p.startB(t)
	}
	return p
}

func (p *pair) startB(t *testing.T) {
	t.Helper()
	var err error
	p.b, err = Start(Config{Mates: []netip.AddrPort{addrOf(p.ca)}, Key: testKey, Log: zerolog.Nop(), Conn: p.cb,
		JoinTimeout: p.joinWait}, p.pb)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.b.Close() })
}

// flowKey is client 203.0.113.x:port's TCP flow to set.
func flowKey(set uint16, i int) assoc.Key {
	return assoc.Key{Addr: netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 250)}).As16(), Port: uint16(1024 + i), Proto: 6, Set: set}
}

// eventually polls cond until it holds or 15 s passed.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within 15 s: %s", what, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// mirrored reports whether b holds exactly a's local flow records as
// imports, each naming the same server address (in b's slot and
// generation) with the same flags.
func mirrored(t *testing.T, pa, pb *fakePlane, setA, setB uint16) (bool, string) {
	local, imported := pa.records(assoc.OriginLocal), pb.records(assoc.OriginImported)
	ta, tb := pa.Tables().Set(setA), pb.Tables().Set(setB)
	if len(local) != len(imported) {
		return false, fmt.Sprintf("%d local records, %d imported", len(local), len(imported))
	}
	for k, v := range local {
		kb := k
		kb.Set = setB
		got, ok := imported[kb]
		if !ok {
			return false, fmt.Sprintf("%+v not imported", k)
		}
		want := ta.Servers[v.Server].Addr
		if s := tb.Servers[got.Server]; !s.Present || s.Addr != want || s.Gen != got.Gen || got.Flags != v.Flags {
			return false, fmt.Sprintf("%+v imported as %+v (server %s gen %d), want server %s with flags %#x", k, got, s.Addr, s.Gen, want, v.Flags)
		}
	}
	return true, ""
}

// TestReplicates: records made, changed and deleted on one instance appear,
// change and disappear on its mate, naming the same servers in the mate's
// own slots and generations.
func TestReplicates(t *testing.T) {
	p := newPair(t, true)
	eventually(t, "both joined", func() (bool, string) { return p.a.Joined() && p.b.Joined(), "" })
	for i := range 100 {
		p.pa.put(i%2, flowKey(1, i), assoc.Value{Server: uint8(i % 3), Gen: uint32(i%3 + 1), LastSeen: assoc.Now()}, false)
	}
	eventually(t, "100 flows mirrored", func() (bool, string) { return mirrored(t, p.pa, p.pb, 1, 4) })
	for i := range 50 {
		p.pa.put(i%2, flowKey(1, i), assoc.Value{Server: uint8(i % 3), Gen: uint32(i%3 + 1), Flags: assoc.FlagProven | assoc.FlagFIN,
			LastSeen: assoc.Now()}, false)
	}
	for i := 50; i < 80; i++ {
		p.pa.del(i%2, flowKey(1, i))
	}
	eventually(t, "changes and deletes mirrored", func() (bool, string) { return mirrored(t, p.pa, p.pb, 1, 4) })
	// A record naming a server generation the tables no longer hold is
	// not sent.
	p.pa.put(0, flowKey(1, 200), assoc.Value{Server: 0, Gen: 99}, false)
	eventually(t, "stale record skipped", func() (bool, string) {
		return p.a.Stats().ExportSkipped == 1, fmt.Sprint(p.a.Stats().ExportSkipped)
	})
	if st := p.b.Stats().Mates[0]; st.Forged+st.Replayed+st.Stale+st.Malformed != 0 || st.Unresolved != 0 {
		t.Errorf("b rejected or failed to resolve messages on a clean link: %+v", st)
	}
}

// TestJoinPullsTable: an instance that starts next to a running mate has
// the mate's whole table imported before it reports itself joined.
func TestJoinPullsTable(t *testing.T) {
	p := newPair(t, false)
	for i := range 3000 {
		p.pa.put(i%2, flowKey(1, i), assoc.Value{Server: uint8(i % 3), Gen: uint32(i%3 + 1), Flags: assoc.FlagProven}, true)
	}
	eventually(t, "a joins alone", func() (bool, string) { return p.a.Joined(), "" })
	if st := p.a.Stats(); st.Mates[0].Pulled {
		t.Errorf("a pulled a table from a mate that was not running: %+v", st.Mates[0])
	}
	p.startB(t)
	eventually(t, "b joined", func() (bool, string) { return p.b.Joined(), "" })
	if ok, why := mirrored(t, p.pa, p.pb, 1, 4); !ok {
		t.Errorf("b joined before it held a's table: %s", why)
	}
	if st := p.b.Stats().Mates[0]; !st.Pulled || st.ResyncsCompleted == 0 {
		t.Errorf("b's mate: %+v, want a completed pull", st)
	}
}

// TestJoinPullMissingItsStart: a starting instance whose first message from
// its mate comes after the mate began answering its pull (the beginning and
// the first records lost before the node had a window to notice) does not
// take the pull's end for a whole table: it asks again and joins holding
// everything.
func TestJoinPullMissingItsStart(t *testing.T) {
	p := newPair(t, false)
	for i := range 3000 {
		p.pa.put(i%2, flowKey(1, i), assoc.Value{Server: uint8(i % 3), Gen: uint32(i%3 + 1), Flags: assoc.FlagProven}, true)
	}
	eventually(t, "a joins alone", func() (bool, string) { return p.a.Joined(), "" })
	// Everything a sends is lost until it has sent the beginning of a
	// resync and one message of records.
	var lostBegin, lostRecords bool
	p.ca.mu.Lock()
	p.ca.drop = func(typ byte) bool {
		switch {
		case lostRecords:
			return false
		case typ == msgResyncBegin:
			lostBegin = true
		case typ == msgResync && lostBegin:
			lostRecords = true
		}
		return true
	}
	p.ca.mu.Unlock()
	// What a sent before lies in b's socket buffer: b must not see it.
	buf := make([]byte, 2048)
	for {
		_ = p.cb.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, _, err := p.cb.ReadFromUDPAddrPort(buf); err != nil {
			break
		}
	}
	_ = p.cb.SetReadDeadline(time.Time{})
	p.startB(t)
	eventually(t, "b joined", func() (bool, string) { return p.b.Joined(), "" })
	p.ca.mu.Lock()
	lost := lostRecords
	p.ca.mu.Unlock()
	if !lost {
		t.Fatal("the test's loss never took a resync's first records")
	}
	t.Logf("DEBUG b %+v", p.b.Stats().Mates[0])
	if ok, why := mirrored(t, p.pa, p.pb, 1, 4); !ok {
		t.Errorf("b joined without a's whole table: %s", why)
	}
	if st := p.b.Stats().Mates[0]; !st.Pulled || st.ResyncsCompleted == 0 {
		t.Errorf("b's mate: %+v, want a completed pull", st)
	}
}

// TestLossConverges: with 10 % of the datagrams lost each way, a stream of
// changes still ends with the mate holding exactly the sender's table,
// repaired by retransmission and resync.
func TestLossConverges(t *testing.T) {
	p := newPair(t, true)
	eventually(t, "both joined", func() (bool, string) { return p.a.Joined() && p.b.Joined(), "" })
	p.ca.setLoss(0.10)
	p.cb.setLoss(0.10)
	for round := range 40 {
		for i := range 100 {
			n := round*100 + i
			p.pa.put(n%2, flowKey(1, n), assoc.Value{Server: uint8(n % 3), Gen: uint32(n%3 + 1), LastSeen: assoc.Now()}, false)
		}
		for i := range 20 {
			n := round*100 + i*5
			p.pa.del(n%2, flowKey(1, n))
		}
		time.Sleep(2 * time.Millisecond) // spread over many batches
	}
	eventually(t, "b mirrors a under 10% loss", func() (bool, string) {
		ok, why := mirrored(t, p.pa, p.pb, 1, 4)
		return ok, fmt.Sprintf("%s; a: %+v; b: %+v", why, p.a.Stats().Mates[0], p.b.Stats().Mates[0])
	})
	sa, sb := p.a.Stats().Mates[0], p.b.Stats().Mates[0]
	t.Logf("a->b: %+v", sa)
	t.Logf("b<-a: %+v", sb)
	if sa.Retransmits == 0 && sb.ResyncsCompleted < 2 {
		t.Errorf("nothing was repaired (no retransmits, no resync) though %d of a's datagrams were lost", p.ca.dropped)
	}
}

// TestRejects: forged, replayed, cut and stale messages, and datagrams from
// strangers, change nothing and are counted by reason.
func TestRejects(t *testing.T) {
	p := newPair(t, true)
	eventually(t, "both joined", func() (bool, string) { return p.a.Joined() && p.b.Joined(), "" })
	p.ca.mu.Lock()
	p.ca.record = true
	p.ca.mu.Unlock()
	p.pa.put(0, flowKey(1, 1), assoc.Value{Server: 1, Gen: 2}, false)
	eventually(t, "one flow mirrored", func() (bool, string) { return mirrored(t, p.pa, p.pb, 1, 4) })
	var changes []byte
	p.ca.mu.Lock()
	for _, m := range p.ca.sent {
		if m[5] == msgChanges {
			changes = m
		}
	}
	p.ca.mu.Unlock()
	if changes == nil {
		t.Fatal("no changes message recorded")
	}
	// The flow ends on a; a replay of the message that made it must not
	// bring it back on b.
	p.pa.del(0, flowKey(1, 1))
	eventually(t, "delete mirrored", func() (bool, string) { return mirrored(t, p.pa, p.pb, 1, 4) })
	before := p.b.Stats().Mates[0]
	dst := addrOf(p.cb)
	send := func(b []byte) {
		t.Helper()
		if _, err := p.ca.UDPConn.WriteToUDPAddrPort(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	send(changes) // replayed
	forged := append([]byte(nil), changes...)
	forged[headerLen+5] ^= 0xFF // another client address
	send(forged)
	send(changes[:len(changes)-7]) // cut
	// A stale message: right key, new number, an old time.
	old := newSealer(testKey).seal(header{typ: msgChanges, epoch: p.a.epoch, seq: 1 << 40,
		time: time.Now().Add(-time.Minute).UnixNano()}, changes[headerLen:len(changes)-macLen])
	send(old)
	stranger := listenLoopback(t, 3)
	defer stranger.Close()
	if _, err := stranger.UDPConn.WriteToUDPAddrPort(changes, dst); err != nil {
		t.Fatal(err)
	}
	eventually(t, "rejections counted", func() (bool, string) {
		s := p.b.Stats()
		m := s.Mates[0]
		return m.Replayed == before.Replayed+1 && m.Forged == before.Forged+1 && m.Malformed == before.Malformed+1 &&
				m.Stale == before.Stale+1 && s.UnknownPeer == 1,
			fmt.Sprintf("%+v, unknown peers %d", m, s.UnknownPeer)
	})
	if got := p.pb.records(assoc.OriginImported); len(got) != 0 {
		t.Errorf("b imported %v from rejected messages, want nothing", got)
	}
}

// TestDroppedChangesPushTable: when a worker's change ring overflowed, the
// lost changes reach the mate anyway, through a resync the sender pushes.
func TestDroppedChangesPushTable(t *testing.T) {
	p := newPair(t, true)
	eventually(t, "both joined", func() (bool, string) { return p.a.Joined() && p.b.Joined(), "" })
	for i := range 20 {
		p.pa.put(i%2, flowKey(1, i), assoc.Value{Server: uint8(i % 3), Gen: uint32(i%3 + 1)}, true) // never reported
	}
	p.pa.dropped.Add(20)
	eventually(t, "unreported flows mirrored", func() (bool, string) { return mirrored(t, p.pa, p.pb, 1, 4) })
}

// TestJoinTimeout: with no mate answering, a node joins alone after the
// join timeout, and not before.
func TestJoinTimeout(t *testing.T) {
	c := listenLoopback(t, 4)
	defer c.Close()
	silent := listenLoopback(t, 5)
	defer silent.Close()
	start := time.Now()
	n, err := Start(Config{Mates: []netip.AddrPort{addrOf(silent)}, Key: testKey, Log: zerolog.Nop(), Conn: c,
		JoinTimeout: 200 * time.Millisecond}, newFakePlane(testTables(t, 1, []int{0, 1, 2}, 1)))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	eventually(t, "joined alone", func() (bool, string) { return n.Joined(), "" })
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("joined after %v, want no sooner than the 200ms join timeout", d)
	}
	if st := n.Stats().Mates[0]; st.State != StateSilent || st.Pulled {
		t.Errorf("silent mate: %+v, want state silent, nothing pulled", st)
	}
	if _, err := Start(Config{Key: []byte("short")}, nil); err == nil {
		t.Error("Start with a 5-byte key succeeded, want an error")
	}
}
