package slowpath

import (
	"context"
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/maglev"
	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/fastpath/ring"
	"github.com/ipfront/ipfront/slowpath/helper/ftp"
)

// helperFake is a data plane for the helper loop: punt rings the test
// fills, shards as one map that control messages change, and a log of the
// control messages and injected frames in the order they were sent.
type helperFake struct {
	tables *fastpath.Tables
	punt   []*ring.Frames

	mu      sync.Mutex
	records map[assoc.Key]assoc.Value
	ops     []helperOp
	full    bool          // the control ring refuses every message
	sent    chan struct{} // one token per injected frame
}

// helperOp is one message the loop sent: a control message or a frame.
type helperOp struct {
	worker int
	ctl    *fastpath.ControlMsg
	frame  []byte
}

func newHelperFake(t *testing.T, workers int, tables *fastpath.Tables) *helperFake {
	f := &helperFake{tables: tables, records: map[assoc.Key]assoc.Value{}, sent: make(chan struct{}, 1024)}
	for range workers {
		f.punt = append(f.punt, ring.NewFrames(64, 2048))
	}
	return f
}

func (f *helperFake) NumWorkers() int          { return len(f.punt) }
func (f *helperFake) Punted(w int) PuntSource  { return f.punt[w] }
func (f *helperFake) Tables() *fastpath.Tables { return f.tables }
func (f *helperFake) Owner(k *assoc.Key) int   { return int(k.Hash() % uint64(len(f.punt))) }
func (f *helperFake) Lookup(k *assoc.Key) (assoc.Value, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.records[*k]
	return v, ok
}

func (f *helperFake) Inject(w int, frame []byte) bool {
	f.mu.Lock()
	f.ops = append(f.ops, helperOp{worker: w, frame: append([]byte(nil), frame...)})
	f.mu.Unlock()
	f.sent <- struct{}{}
	return true
}

func (f *helperFake) PushControl(w int, m fastpath.ControlMsg) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full {
		return false
	}
	f.ops = append(f.ops, helperOp{worker: w, ctl: &m})
	_, there := f.records[m.Key]
	switch {
	case m.Op == fastpath.ControlInsert && !there, m.Op == fastpath.ControlUpdate && there:
		f.records[m.Key] = m.Value
	case m.Op == fastpath.ControlDelete:
		delete(f.records, m.Key)
	}
	return true
}

// takeOps returns the messages sent so far and forgets them.
func (f *helperFake) takeOps() []helperOp {
	f.mu.Lock()
	defer f.mu.Unlock()
	ops := f.ops
	f.ops = nil
	return ops
}

var (
	hVIP     = netip.MustParseAddr("192.0.2.10")
	hServer  = netip.MustParseAddr("198.51.100.11")
	hClient  = netip.MustParseAddr("203.0.113.7")
	hVIP6    = netip.MustParseAddr("2001:db8:f::10")
	hServer6 = netip.MustParseAddr("2001:db8:5::11")
	hClient6 = netip.MustParseAddr("2001:db8:c::7")
)

const (
	hSetID = 3
	hGen   = 7
	hCPort = 40000
)

// helperTables is one NAT set with the FTP helper on vip:21 and one server,
// plus a DSR set without a helper.
func helperTables(t *testing.T, vip, server netip.Addr) *fastpath.Tables {
	mt, err := maglev.New([]maglev.Backend{{Key: server.String(), Weight: 1}}, 251)
	if err != nil {
		t.Fatal(err)
	}
	ts := &fastpath.TargetSet{ID: hSetID, Name: "ftp", VIP: vip.As16(), Protos: fastpath.ProtoBitTCP,
		Forwarding: fastpath.FwdNAT, Helper: fastpath.HelperFTP, Ports: []fastpath.PortRange{{First: 21, Last: 21}},
		DeleteAge: 600, ExpectTimeout: 30, Maglev: mt}
	ts.Servers[0] = fastpath.Server{Name: "ftp-a", Addr: server, Gen: hGen, Weight: 1, Present: true}
	plain := &fastpath.TargetSet{ID: 4, Name: "web", VIP: vip.As16(), Protos: fastpath.ProtoBitTCP,
		Ports: []fastpath.PortRange{{First: 80, Last: 80}}, DeleteAge: 600, Maglev: mt}
	plain.Servers[0] = ts.Servers[0]
	tables, err := fastpath.NewTables(1, []*fastpath.TargetSet{ts, plain})
	if err != nil {
		t.Fatal(err)
	}
	return tables
}

// helperRun is a helper loop on a fake plane and a fake clock.
type helperRun struct {
	t      *testing.T
	f      *helperFake
	clock  *fakeClock
	stats  *HelperStats
	client netip.Addr
	vip    netip.Addr
	server netip.Addr
	seq    [2]uint32 // next sequence number of the client and of the server
}

func startHelper(t *testing.T, v6 bool) *helperRun {
	client, vip, server := hClient, hVIP, hServer
	if v6 {
		client, vip, server = hClient6, hVIP6, hServer6
	}
	f := newHelperFake(t, 2, helperTables(t, vip, server))
	f.records[assoc.Key{Addr: client.As16(), Port: hCPort, Proto: packet.ProtoTCP, Set: hSetID}] =
		assoc.Value{Server: 0, Gen: hGen, NAT: true, LastSeen: assoc.Now()}
	r := &helperRun{t: t, f: f, clock: newFakeClock(), stats: new(HelperStats), client: client, vip: vip, server: server,
		seq: [2]uint32{1000, 900000}}
	h := newHelperLoop(zerolog.Nop(), f, r.clock, r.stats)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return r
}

// frame encodes a segment of the control connection in direction d.
func (r *helperRun) frame(d ftp.Dir, payload string, flags uint8) []byte {
	spec := packet.FrameSpec{Proto: packet.ProtoTCP, Src: r.client, SrcPort: hCPort, Dst: r.vip, DstPort: 21,
		TCPFlags: flags | packet.TCPFlagACK, Seq: r.seq[0], Ack: r.seq[1], Payload: []byte(payload)}
	if d == ftp.FromServer {
		spec.Src, spec.SrcPort, spec.Dst, spec.DstPort = r.server, 21, r.client, hCPort
		spec.Seq, spec.Ack = r.seq[1], r.seq[0]
	}
	r.seq[d] += uint32(len(payload))
	b := make([]byte, 2048)
	n, err := packet.Encode(b, &spec)
	if err != nil {
		r.t.Fatal(err)
	}
	return b[:n]
}

// punt puts frame on worker w's punt ring and waits until the loop has
// sent want frames back.
func (r *helperRun) punt(w int, frame []byte, want int) []helperOp {
	r.t.Helper()
	if !r.f.punt[w].TryPush(frame, ring.Meta{Set: hSetID, Queue: uint16(w)}) {
		r.t.Fatal("punt ring full")
	}
	for range want {
		select {
		case <-r.f.sent:
		case <-time.After(10 * time.Second): // a deadline a stuck loop reaches, not a timing assumption
			r.t.Fatalf("the helper sent back %d frames, want %d", len(r.f.ops), want)
		}
	}
	return r.f.takeOps()
}

// segment decodes an injected frame and checks its lengths and checksums.
func segment(t *testing.T, frame []byte) (f packet.Flow, seq, ack uint32, payload string) {
	t.Helper()
	if reason := packet.Parse(frame, &f); reason != packet.OK {
		t.Fatalf("injected frame does not parse: %v", reason)
	}
	if !tcpChecksumOK(frame, &f) {
		t.Fatalf("injected frame's TCP checksum is wrong")
	}
	if f.Family == 4 && packet.Checksum(frame[f.L3Off:f.L3Off+20], 0) != 0xffff {
		t.Fatalf("injected frame's IPv4 header checksum is wrong")
	}
	tcp := frame[f.L4Off:]
	doff := int(tcp[12]>>4) * 4
	return f, binary.BigEndian.Uint32(tcp[4:]), binary.BigEndian.Uint32(tcp[8:]),
		string(frame[int(f.L4Off)+doff : int(f.L3Off)+int(f.Len)])
}

func flowKey(client netip.Addr) assoc.Key {
	return assoc.Key{Addr: client.As16(), Port: hCPort, Proto: packet.ProtoTCP, Set: hSetID}
}

// TestHelperPassive: the server's 227 reaches the client with the VIP in it
// and its checksums right; the passive expectation and the flow's new
// sequence offset are sent to their owners before the frame; the client's
// next acknowledgement is moved back by the offset.
func TestHelperPassive(t *testing.T) {
	r := startHelper(t, false)
	ops := r.punt(0, r.frame(ftp.FromClient, "PASV\r\n", 0), 1)
	if _, _, _, p := segment(t, ops[0].frame); p != "PASV\r\n" || len(ops) != 1 {
		t.Fatalf("PASV: sent %d messages, payload %q; want the frame alone, unchanged", len(ops), p)
	}
	serverSeq := r.seq[1]
	ops = r.punt(1, r.frame(ftp.FromServer, "227 Entering Passive Mode (198,51,100,11,117,48).\r\n", 0), 1)
	if len(ops) != 3 || ops[0].ctl == nil || ops[1].ctl == nil || ops[2].frame == nil {
		t.Fatalf("227: sent %+v, want the expectation, the offset, then the frame", ops)
	}
	x := ops[0].ctl
	wantKey := assoc.Key{Addr: r.client.As16(), Port: 30000, Proto: packet.ProtoTCP, Set: hSetID, Kind: assoc.KindExpect}
	fk := flowKey(r.client)
	if x.Op != fastpath.ControlInsert || x.Key != wantKey || x.Value.Server != 0 || x.Value.Gen != hGen ||
		x.Value.Flags&fastpath.ExpectActive != 0 || ops[0].worker != r.f.Owner(&fk) {
		t.Fatalf("expectation %+v to worker %d, want a passive insert of %+v to the control flow's owner %d", x, ops[0].worker,
			wantKey, r.f.Owner(&fk))
	}
	u := ops[1].ctl
	if u.Op != fastpath.ControlUpdate || u.Key != fk || u.Value.Tag != uint32(0xfffffffd) || u.Value.Server != 0 ||
		u.Value.Gen != hGen || !u.Value.NAT {
		t.Fatalf("offset update %+v, want the flow record with Tag -3", u)
	}
	f, seq, _, p := segment(t, ops[2].frame)
	if p != "227 Entering Passive Mode (192,0,2,10,117,48).\r\n" || seq != serverSeq {
		t.Fatalf("227 reached the client as %q at seq %d, want the VIP's address at %d", p, seq, serverSeq)
	}
	if f.SrcAddr() != r.server || f.DstAddr() != r.client || ops[2].worker != r.f.Owner(&fk) {
		t.Fatalf("227 frame %s -> %s to worker %d, want untranslated %s -> %s to the record's owner %d",
			f.SrcAddr(), f.DstAddr(), ops[2].worker, r.server, r.client, r.f.Owner(&fk))
	}
	// The client acknowledges the shorter stream; the server must see its
	// own numbering.
	fr := r.frame(ftp.FromClient, "RETR f\r\n", 0)
	binary.BigEndian.PutUint32(fr[14+20+8:], r.seq[1]-3)
	fixTCPChecksum(fr)
	ops = r.punt(0, fr, 1)
	if _, _, ack, _ := segment(t, ops[0].frame); ack != r.seq[1] {
		t.Fatalf("client's ack reached the server as %d, want %d", ack, r.seq[1])
	}
	// The server's next reply moves by the offset.
	next := r.seq[1]
	ops = r.punt(1, r.frame(ftp.FromServer, "150 ok\r\n", 0), 1)
	if _, seq, _, _ := segment(t, ops[0].frame); seq != next-3 {
		t.Fatalf("server's next reply at seq %d, want %d", seq, next-3)
	}
	if got := r.stats.commands[2].Load(); got != 1 || r.stats.notes[ftp.NoteRewrite].Load() != 1 || r.stats.installed.Load() != 1 {
		t.Fatalf("227s %d, rewrites %d, installed %d; want 1 each", got, r.stats.notes[ftp.NoteRewrite].Load(), r.stats.installed.Load())
	}
}

func fixTCPChecksum(frame []byte) {
	var f packet.Flow
	packet.Parse(frame, &f)
	out := ftp.Out{Seq: binary.BigEndian.Uint32(frame[f.L4Off+4:]), Flags: frame[f.L4Off+13]}
	tcp := frame[f.L4Off:]
	out.Payload = append([]byte(nil), frame[int(f.L4Off)+int(tcp[12]>>4)*4:int(f.L3Off)+int(f.Len)]...)
	copy(frame, segmentFrame(nil, frame, &f, &out, binary.BigEndian.Uint32(tcp[8:]), func(e uint32) uint32 { return e }))
}

// TestHelperActive: an accepted PORT and EPRT pass unchanged after their
// active expectations (the server connects from port 20).
func TestHelperActive(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		r := startHelper(t, v6)
		line := "PORT 203,0,113,7,117,48\r\n"
		if v6 {
			line = "EPRT |2|2001:db8:c::7|30000|\r\n"
		}
		ops := r.punt(0, r.frame(ftp.FromClient, line, 0), 1)
		if len(ops) != 2 || ops[0].ctl == nil {
			t.Fatalf("%q: sent %+v, want an expectation then the frame", line, ops)
		}
		x := ops[0].ctl
		want := assoc.Key{Addr: r.client.As16(), Port: 30000, Proto: packet.ProtoTCP, Set: hSetID, Kind: assoc.KindExpect}
		if x.Key != want || x.Value.Flags&fastpath.ExpectActive == 0 || x.Value.Tag != 20 || x.Value.Gen != hGen {
			t.Fatalf("%q: expectation %+v, want an active one for %+v from port 20", line, x, want)
		}
		if _, _, _, p := segment(t, ops[1].frame); p != line {
			t.Fatalf("%q reached the server as %q", line, p)
		}
	}
}

// TestHelperBounceRefused: a PORT naming a third party installs nothing,
// reaches the server as an unknown command and is counted.
func TestHelperBounceRefused(t *testing.T) {
	r := startHelper(t, false)
	ops := r.punt(0, r.frame(ftp.FromClient, "PORT 198,51,100,99,0,25\r\n", 0), 1)
	if len(ops) != 1 || ops[0].frame == nil {
		t.Fatalf("bounce: sent %+v, want only the frame", ops)
	}
	if _, _, _, p := segment(t, ops[0].frame); p != "XXXX 198,51,100,99,0,25\r\n" {
		t.Fatalf("bounce reached the server as %q", p)
	}
	if r.stats.notes[ftp.NoteBounce].Load() != 1 || r.stats.installed.Load() != 0 {
		t.Fatalf("bounces %d, installed %d; want 1, 0", r.stats.notes[ftp.NoteBounce].Load(), r.stats.installed.Load())
	}
}

// TestHelperDrops: a corrupt segment is dropped and counted; a segment of
// a set without a helper goes back unchanged.
func TestHelperDrops(t *testing.T) {
	r := startHelper(t, false)
	fr := r.frame(ftp.FromClient, "PORT 203,0,113,7,117,48\r\n", 0)
	fr[len(fr)-3] ^= 0x40
	r.f.punt[0].TryPush(fr, ring.Meta{Set: hSetID})
	other := r.frame(ftp.FromClient, "GET / HTTP/1.0\r\n", 0)
	binary.BigEndian.PutUint16(other[14+20+2:], 80)
	fixTCPChecksum(other)
	if !r.f.punt[0].TryPush(other, ring.Meta{Set: 4}) {
		t.Fatal("punt ring full")
	}
	<-r.f.sent
	ops := r.f.takeOps()
	if len(ops) != 1 || string(ops[0].frame) != string(other) {
		t.Fatalf("sent %d messages, want the other set's frame alone and unchanged", len(ops))
	}
	if r.stats.badChecksum.Load() != 1 || r.stats.installed.Load() != 0 {
		t.Fatalf("bad checksums %d, installed %d; want 1, 0", r.stats.badChecksum.Load(), r.stats.installed.Load())
	}
}

// TestHelperControlFull: an expectation the control ring refuses is
// counted, not recorded; the offset is sent again with the next segment.
func TestHelperControlFull(t *testing.T) {
	r := startHelper(t, false)
	r.f.mu.Lock()
	r.f.full = true
	r.f.mu.Unlock()
	r.punt(1, r.frame(ftp.FromServer, "227 Entering Passive Mode (198,51,100,11,117,48).\r\n", 0), 1)
	if r.stats.controlOverflow.Load() != 2 || r.stats.installed.Load() != 0 {
		t.Fatalf("control overflows %d, installed %d; want 2 (expectation, offset), 0", r.stats.controlOverflow.Load(),
			r.stats.installed.Load())
	}
	r.f.mu.Lock()
	r.f.full = false
	r.f.mu.Unlock()
	ops := r.punt(1, r.frame(ftp.FromServer, "150 ok\r\n", 0), 1)
	if len(ops) != 2 || ops[0].ctl == nil || ops[0].ctl.Value.Tag != 0xfffffffd {
		t.Fatalf("next segment: sent %+v, want the offset again, then the frame", ops)
	}
}

// TestHelperExpiry: expectations are counted expired once their timeout
// passed, and idle control connections are forgotten.
func TestHelperExpiry(t *testing.T) {
	r := startHelper(t, false)
	r.punt(1, r.frame(ftp.FromServer, "229 Entering Extended Passive Mode (|||30001|)\r\n", 0), 1)
	if r.stats.expects.Load() != 1 || r.stats.conns.Load() != 1 {
		t.Fatalf("expectations %d, connections %d; want 1, 1", r.stats.expects.Load(), r.stats.conns.Load())
	}
	// One second at a time, each tick taken before the next (a ticker
	// holds one).
	step := func(n int) {
		for range n {
			r.clock.Advance(time.Second)
			waitFor(t, "the loop to take the tick", func() bool { return !r.clock.pending() })
		}
	}
	step(30)
	if r.stats.expired.Load() != 0 {
		t.Fatalf("expired %d at the 30 s timeout, want 0", r.stats.expired.Load())
	}
	step(1)
	waitFor(t, "the expectation to expire", func() bool { return r.stats.expired.Load() == 1 })
	if r.stats.conns.Load() != 1 {
		t.Fatalf("connections %d after 31 s idle, want 1 (forgotten after the set's delete age, 600 s)", r.stats.conns.Load())
	}
	step(570)
	waitFor(t, "the connection to be forgotten", func() bool { return r.stats.conns.Load() == 0 })
}

// waitFor polls cond until it holds, failing after a deadline a working
// loop never gets near.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSegmentFrameSACK: SACK edges in a rebuilt frame are mapped and the
// checksum still verifies.
func TestSegmentFrameSACK(t *testing.T) {
	spec := packet.FrameSpec{Proto: packet.ProtoTCP, Src: hClient, Dst: hVIP, SrcPort: hCPort, DstPort: 21,
		TCPFlags: packet.TCPFlagACK, Seq: 1, Ack: 2}
	b := make([]byte, 256)
	n, _ := packet.Encode(b, &spec)
	// Insert NOP, NOP, SACK(2 blocks) after the 20-byte TCP header.
	var f packet.Flow
	packet.Parse(b[:n], &f)
	opts := []byte{1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40}
	fr := append(append(append([]byte(nil), b[:f.L4Off+20]...), opts...), "x"...)
	fr[f.L4Off+12] = byte((20+len(opts))/4) << 4
	packet.Parse(fr[:len(fr)-1], &f) // lengths are fixed by segmentFrame
	f.Len = uint16(len(fr) - int(f.L3Off) - 1)
	out := ftp.Out{Seq: 5, Flags: packet.TCPFlagACK, Payload: []byte("hello")}
	got := segmentFrame(nil, fr[:len(fr)-1], &f, &out, 7, func(e uint32) uint32 { return e + 1000 })
	_, seq, ack, p := segment(t, got)
	tcp := got[f.L4Off:]
	var edges []uint32
	for i := 24; i < 40; i += 4 {
		edges = append(edges, binary.BigEndian.Uint32(tcp[i:]))
	}
	if seq != 5 || ack != 7 || p != "hello" || edges[0] != 1010 || edges[1] != 1020 || edges[2] != 1030 || edges[3] != 1040 {
		t.Fatalf("segmentFrame: seq %d ack %d payload %q edges %v, want 5 7 \"hello\" [1010 1020 1030 1040]", seq, ack, p, edges)
	}
}
