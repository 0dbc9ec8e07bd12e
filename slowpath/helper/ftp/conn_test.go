package ftp

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

var (
	client4 = netip.MustParseAddr("203.0.113.7")
	vip4    = netip.MustParseAddr("192.0.2.10")
	client6 = netip.MustParseAddr("2001:db8:c::7")
	vip6    = netip.MustParseAddr("2001:db8:f::10")
)

// Initial sequence numbers of the test connections, near the wrap so that
// sequence arithmetic is exercised.
const (
	clientISN = 0xfffffff0
	serverISN = 0x7ffffff0
)

// side sends one direction's bytes in chosen pieces and keeps what the
// receiver got from the helper, by out sequence number.
type side struct {
	dir  Dir
	isn  uint32
	sent []byte // the original stream
	got  []byte // what the receiver holds, from isn+1 on
	have []bool // which bytes of got arrived
	cont int    // have[:cont] are all true
}

// conv is a control connection under test, past the handshake.
type conv struct {
	t   testing.TB
	c   *Conn
	dir [2]*side
	exp []Expectation
	nts []Note
}

func newConv(t testing.TB, client, vip netip.Addr) *conv {
	return &conv{t: t, c: NewConn(client, vip, Options{}),
		dir: [2]*side{{dir: FromClient, isn: clientISN}, {dir: FromServer, isn: serverISN}}}
}

// contiguous is how many bytes from the start the receiver of d holds.
func (s *side) contiguous() int {
	for s.cont < len(s.have) && s.have[s.cont] {
		s.cont++
	}
	return s.cont
}

// send hands the helper the original bytes [from, from+len(b)) of
// direction d (appending them to the sent stream if new) and delivers what
// it returns; it returns the result.
func (cv *conv) send(d Dir, from int, b string, flags uint8) Result {
	cv.t.Helper()
	s, o := cv.dir[d], cv.dir[1-d]
	if end := from + len(b); end > len(s.sent) {
		s.sent = append(s.sent[:from], b...)
	} else if string(s.sent[from:end]) != b {
		cv.t.Fatalf("test bug: resending different bytes")
	}
	seg := Segment{Seq: s.isn + 1 + uint32(from), Ack: o.isn + 1 + uint32(o.contiguous()), Flags: flags | FlagACK,
		Payload: []byte(b)}
	r := cv.c.Process(d, &seg)
	for _, out := range r.Segments {
		cv.deliver(s, out)
	}
	cv.exp = append(cv.exp, r.Expect...)
	cv.nts = append(cv.nts, r.Notes...)
	return r
}

// deliver places an out segment at the receiver; bytes it already holds
// must be identical (a retransmission comes out as the first time).
func (cv *conv) deliver(s *side, out Out) {
	cv.t.Helper()
	off := int(out.Seq - (s.isn + 1))
	if off < 0 || off+len(out.Payload) > 2*len(s.sent)+64 {
		cv.t.Fatalf("%s segment at out seq %#x, %d bytes from the stream start", s.dir, out.Seq, off)
	}
	for len(s.got) < off+len(out.Payload) {
		s.got, s.have = append(s.got, 0), append(s.have, false)
	}
	for i, c := range out.Payload {
		if s.have[off+i] && s.got[off+i] != c {
			cv.t.Fatalf("%s byte %d delivered as %q, then as %q", s.dir, off+i, s.got[off+i], c)
		}
		s.got[off+i], s.have[off+i] = c, true
	}
}

// received is what the receiver of d holds contiguously.
func (cv *conv) received(d Dir) string {
	s := cv.dir[d]
	return string(s.got[:s.contiguous()])
}

func (cv *conv) notes(k NoteKind) int {
	n := 0
	for _, x := range cv.nts {
		if x.Kind == k {
			n++
		}
	}
	return n
}

func TestActivePORTAccepted(t *testing.T) {
	cv := newConv(t, client4, vip4)
	cv.send(FromServer, 0, "220 ready\r\n", 0)
	line := "PORT 203,0,113,7,117,48\r\n"
	r := cv.send(FromClient, 0, line, FlagPSH)
	if want := []Expectation{{Active, client4, 30000}}; !slices.Equal(r.Expect, want) {
		t.Fatalf("Process(%q).Expect = %v, want %v", line, r.Expect, want)
	}
	if got := cv.received(FromClient); got != line {
		t.Fatalf("server received %q, want %q unchanged", got, line)
	}
	if len(r.Segments) != 1 || r.Segments[0].Flags != FlagACK|FlagPSH {
		t.Fatalf("Process(%q).Segments = %+v, want one with ACK|PSH", line, r.Segments)
	}
	if cv.notes(NoteCommand) != 1 || cv.c.Offset(FromClient) != 0 {
		t.Fatalf("notes %v, client offset %d, want one command note and offset 0", cv.nts, cv.c.Offset(FromClient))
	}
}

// TestRefusedCommands: every refused PORT or EPRT installs nothing, is
// noted under its reason, and reaches the server with its verb overwritten
// at the same length.
func TestRefusedCommands(t *testing.T) {
	for _, tc := range []struct {
		client netip.Addr
		line   string
		kind   NoteKind
	}{
		{client4, "PORT 198,51,100,99,117,48\r\n", NoteBounce},
		{client4, "port 198,51,100,99,117,48\r\n", NoteBounce},
		{client4, "  Port 198,51,100,99,117,48\r\n", NoteBounce},
		{client4, "PORT 203,0,113,7,0,21\r\n", NoteLowPort},
		{client4, "PORT 203,0,113,7,3,255\r\n", NoteLowPort},
		{client4, "PORT 203,0,113,7,117\r\n", NoteMalformed},
		{client4, "PORT 203,0,113,7,117,48,1\r\n", NoteMalformed},
		{client4, "PORT 203,0,113,7,1117,48\r\n", NoteMalformed},
		{client4, "PORT 203,0,113,x,117,48\r\n", NoteMalformed},
		{client4, "PORTX 203,0,113,7,117,48\r\n", NoteMalformed},
		{client4, "PORT\t203,0,113,7,117,48\r\n", NoteMalformed},
		{client4, "EPRT |1|198.51.100.99|30000|\r\n", NoteBounce},
		{client4, "EPRT |1|203.0.113.7|80|\r\n", NoteLowPort},
		{client4, "EPRT |2|2001:db8:c::7|30000|\r\n", NoteBounce}, // another family is another address
		{client6, "EPRT |2|2001:db8:c::8|30000|\r\n", NoteBounce},
		{client6, "EPRT |1|203.0.113.7|30000|\r\n", NoteBounce},
		{client6, "PORT 203,0,113,7,117,48\r\n", NoteBounce},
		{client6, "EPRT |2|2001:db8:c::7|1023|\r\n", NoteLowPort},
		{client6, "EPRT |2|2001:db8:c::7|30000\r\n", NoteMalformed},
		{client4, "PORT " + strings.Repeat("1", 600) + "\r\n", NoteOverlong},
	} {
		t.Run(tc.line[:min(len(tc.line), 40)], func(t *testing.T) {
			vip := vip4
			if tc.client.Is6() {
				vip = vip6
			}
			cv := newConv(t, tc.client, vip)
			cv.send(FromClient, 0, tc.line, FlagPSH)
			if len(cv.exp) != 0 {
				t.Fatalf("Process(%q) expects %v, want nothing", tc.line, cv.exp)
			}
			if cv.notes(tc.kind) != 1 || cv.notes(NoteCommand) != 0 {
				t.Fatalf("Process(%q) notes %v, want one %s", tc.line, cv.nts, tc.kind)
			}
			got := cv.received(FromClient)
			sp := leadingSpaces([]byte(tc.line))
			want := tc.line[:sp] + "XXXX" + tc.line[sp+4:]
			if got != want {
				t.Fatalf("server received %q, want %q", got, want)
			}
		})
	}
}

func TestEPRTAccepted(t *testing.T) {
	for _, tc := range []struct {
		client netip.Addr
		line   string
	}{
		{client4, "EPRT |1|203.0.113.7|30000|\r\n"},
		{client6, "EPRT |2|2001:db8:c::7|30000|\r\n"},
		{client6, "eprt |2|2001:db8:c:0::7|30000|\r\n"},
	} {
		cv := newConv(t, tc.client, vip6)
		cv.send(FromClient, 0, tc.line, 0)
		if want := []Expectation{{Active, tc.client, 30000}}; !slices.Equal(cv.exp, want) {
			t.Errorf("Process(%q) expects %v, want %v", tc.line, cv.exp, want)
		}
		if got := cv.received(FromClient); got != tc.line {
			t.Errorf("server received %q, want %q", got, tc.line)
		}
	}
}

// TestPassive227Rewritten: the server's address in a 227 reply becomes the
// VIP's, nothing else changes, the client is told VIP:P, P is expected, and
// every later sequence and acknowledgement number is moved by the length
// difference, both ways.
func TestPassive227Rewritten(t *testing.T) {
	cv := newConv(t, client4, vip4)
	cv.send(FromServer, 0, "220 ready\r\n", 0)
	cv.send(FromClient, 0, "PASV\r\n", 0)
	in := "227 Entering Passive Mode (198,51,100,11,117,48).\r\n"
	r := cv.send(FromServer, 11, in, FlagPSH)
	want := "220 ready\r\n227 Entering Passive Mode (192,0,2,10,117,48).\r\n"
	if got := cv.received(FromServer); got != want {
		t.Fatalf("client received %q, want %q", got, want)
	}
	if e := []Expectation{{Passive, client4, 30000}}; !slices.Equal(r.Expect, e) {
		t.Fatalf("Process(227).Expect = %v, want %v", r.Expect, e)
	}
	if cv.notes(NoteRewrite) != 1 {
		t.Fatalf("notes %v, want one rewrite", cv.nts)
	}
	if got := int32(cv.c.Offset(FromServer)); got != -3 {
		t.Fatalf("Offset(FromServer) = %d, want -3", got)
	}
	// The next reply continues right after the shorter line.
	r = cv.send(FromServer, 11+len(in), "150 Here comes the listing.\r\n", 0)
	if got, want := r.Segments[0].Seq, uint32(serverISN+1+len(want)); got != want {
		t.Fatalf("seq of the reply after the 227 = %#x, want %#x", got, want)
	}
	// The client's acknowledgement of everything it got maps back to
	// everything the server sent; one of the start of the rewritten line
	// maps to itself, one inside it to its start.
	total := uint32(len(cv.received(FromServer)))
	if got, want := cv.c.MapAck(FromClient, serverISN+1+total), uint32(serverISN+1+len(cv.dir[FromServer].sent)); got != want {
		t.Fatalf("MapAck(end of what the client got) = %#x, want %#x", got, want)
	}
	if got := cv.c.MapAck(FromClient, serverISN+1+11); got != serverISN+1+11 {
		t.Fatalf("MapAck(start of the 227) = %#x, want %#x", got, serverISN+1+11)
	}
	if got := cv.c.MapAck(FromClient, serverISN+1+30); got != serverISN+1+11 {
		t.Fatalf("MapAck(inside the 227) = %#x, want the line's start %#x", got, serverISN+1+11)
	}
}

// TestPassiveRefused: 227 replies that cannot be used pass unchanged and
// expect nothing.
func TestPassiveRefused(t *testing.T) {
	for _, tc := range []struct {
		vip  netip.Addr
		line string
		kind NoteKind
	}{
		{vip4, "227 Entering Passive Mode (198,51,100,11,0,21).\r\n", NoteLowPort},
		{vip4, "227 Entering Passive Mode (198,51,100,11,117,480).\r\n", NoteMalformed},
		{vip4, "227 Entering Passive Mode (198,51,100,11).\r\n", NoteMalformed},
		{vip6, "227 Entering Passive Mode (198,51,100,11,117,48).\r\n", NoteFamily},
		{vip4, "229 Entering Extended Passive Mode (|||80|)\r\n", NoteLowPort},
		{vip4, "229 Entering Extended Passive Mode (|||x|)\r\n", NoteMalformed},
	} {
		cv := newConv(t, client4, tc.vip)
		cv.send(FromServer, 0, tc.line, 0)
		if len(cv.exp) != 0 || cv.notes(tc.kind) != 1 {
			t.Errorf("Process(%q): expects %v, notes %v, want nothing and one %s", tc.line, cv.exp, cv.nts, tc.kind)
		}
		if got := cv.received(FromServer); got != tc.line {
			t.Errorf("client received %q, want %q unchanged", got, tc.line)
		}
	}
}

func TestPassiveNoRewriteNeeded(t *testing.T) {
	cv := newConv(t, client4, vip4)
	line := "227 Entering Passive Mode (192,0,2,10,117,48).\r\n" // pasv_address = the VIP
	cv.send(FromServer, 0, line, 0)
	if got := cv.received(FromServer); got != line || cv.c.Offset(FromServer) != 0 || cv.notes(NoteRewrite) != 0 {
		t.Fatalf("client received %q with offset %d, notes %v; want it unchanged, no rewrite", got, cv.c.Offset(FromServer), cv.nts)
	}
	if want := []Expectation{{Passive, client4, 30000}}; !slices.Equal(cv.exp, want) {
		t.Fatalf("expects %v, want %v", cv.exp, want)
	}
}

func TestEPSV229(t *testing.T) {
	for _, vip := range []netip.Addr{vip4, vip6} {
		client := client4
		if vip.Is6() {
			client = client6
		}
		cv := newConv(t, client, vip)
		line := "229 Entering Extended Passive Mode (|||30001|)\r\n"
		cv.send(FromServer, 0, line, 0)
		if want := []Expectation{{Passive, client, 30001}}; !slices.Equal(cv.exp, want) {
			t.Errorf("%s: expects %v, want %v", vip, cv.exp, want)
		}
		if got := cv.received(FromServer); got != line || cv.c.Offset(FromServer) != 0 {
			t.Errorf("%s: client received %q, offset %d, want it unchanged", vip, got, cv.c.Offset(FromServer))
		}
	}
}

// TestSplitAndBatchedLines: lines cut anywhere across segments and several
// lines in one segment give the same result as whole lines: every cut of a
// stream holding a 227, a 229 and a PORT.
func TestSplitAndBatchedLines(t *testing.T) {
	server := "220-Welcome\r\n220 ready\r\n227 Entering Passive Mode (198,51,100,11,117,48).\r\n" +
		"150 ok\r\n226 done\r\n229 Entering Extended Passive Mode (|||30001|)\r\n"
	want := strings.Replace(server, "198,51,100,11", "192,0,2,10", 1)
	client := "USER x\r\nPASV\r\nPORT 203,0,113,7,117,50\r\nEPSV\r\n"
	wantExp := []Expectation{{Passive, client4, 30000}, {Passive, client4, 30001}, {Active, client4, 30002}}
	for cut1 := 1; cut1 < len(server); cut1 += 3 {
		for cut2 := cut1; cut2 < len(server); cut2 += 7 {
			cv := newConv(t, client4, vip4)
			cv.send(FromServer, 0, server[:cut1], 0)
			cv.send(FromServer, cut1, server[cut1:cut2], 0)
			cv.send(FromServer, cut2, server[cut2:], 0)
			c := min(cut1, len(client)-1)
			cv.send(FromClient, 0, client[:c], 0)
			cv.send(FromClient, c, client[c:], 0)
			if got := cv.received(FromServer); got != want {
				t.Fatalf("cuts %d, %d: client received %q, want %q", cut1, cut2, got, want)
			}
			if got := cv.received(FromClient); got != client {
				t.Fatalf("cut %d: server received %q, want %q", c, got, client)
			}
			got := slices.Clone(cv.exp)
			slices.SortFunc(got, func(a, b Expectation) int { return int(a.Port) - int(b.Port) })
			if !slices.Equal(got, wantExp) {
				t.Fatalf("cuts %d, %d: expects %v, want %v", cut1, cut2, got, wantExp)
			}
		}
	}
}

// TestHeldLineSentWithCompletion: a 227 cut in two is held, and goes out
// whole, at the right sequence number, with the segment completing it.
func TestHeldLineSentWithCompletion(t *testing.T) {
	cv := newConv(t, client4, vip4)
	r := cv.send(FromServer, 0, "150 ok\r\n227 Entering Pass", 0)
	if len(r.Segments) != 1 || string(r.Segments[0].Payload) != "150 ok\r\n" {
		t.Fatalf("first half: segments %+v, want one with only the complete line", r.Segments)
	}
	r = cv.send(FromServer, 25, "ive Mode (198,51,100,11,117,48).\r\n", 0)
	if len(r.Segments) != 1 || r.Segments[0].Seq != serverISN+1+8 ||
		string(r.Segments[0].Payload) != "227 Entering Passive Mode (192,0,2,10,117,48).\r\n" {
		t.Fatalf("second half: segments %+v, want the whole rewritten line at %#x", r.Segments, serverISN+1+8)
	}
}

// TestRetransmissions: a retransmitted 227, whole or cut differently, and
// data before it come out as they did the first time; so does a
// retransmission starting inside the rewritten line.
func TestRetransmissions(t *testing.T) {
	cv := newConv(t, client4, vip4)
	l1 := "150 ok\r\n"
	l2 := "227 Entering Passive Mode (198,51,100,11,117,48).\r\n"
	l3 := "226 done\r\n"
	cv.send(FromServer, 0, l1+l2, 0)
	cv.send(FromServer, len(l1+l2), l3, 0)
	before := cv.received(FromServer)
	for _, rt := range []struct{ from, to int }{{0, len(l1 + l2)}, {len(l1), len(l1 + l2)}, {0, 4}, {len(l1) + 3, len(l1) + 20},
		{len(l1) + 30, len(l1+l2) + 4}, {len(l1+l2) + 2, len(l1 + l2 + l3)}} {
		r := cv.send(FromServer, rt.from, (l1 + l2 + l3)[rt.from:rt.to], 0)
		if len(r.Segments) != 1 || len(r.Expect) != 0 {
			t.Fatalf("retransmission [%d,%d): %d segments, expects %v, want one segment and nothing expected", rt.from, rt.to,
				len(r.Segments), r.Expect)
		}
	}
	if got := cv.received(FromServer); got != before {
		t.Fatalf("client holds %q after retransmissions, want %q", got, before)
	}
	if cv.notes(NoteRewrite) != 1 {
		t.Fatalf("notes %v, want one rewrite: retransmissions are not parsed again", cv.nts)
	}
}

// TestOffsetsAccumulate: every rewrite adds its length difference; a later
// retransmission of data between two rewrites uses the offset in force
// there.
func TestOffsetsAccumulate(t *testing.T) {
	cv := newConv(t, client4, vip4)
	var sent string
	for i := range 3 {
		l := fmt.Sprintf("227 Entering Passive Mode (198,51,100,111,117,%d).\r\n", 48+i)
		cv.send(FromServer, len(sent), l, 0)
		sent += l
		between := "150 x\r\n"
		cv.send(FromServer, len(sent), between, 0)
		sent += between
	}
	if got, want := int32(cv.c.Offset(FromServer)), int32(-3*4); got != want {
		t.Fatalf("Offset after three rewrites = %d, want %d", got, want)
	}
	// Retransmit the "150 x" after the first rewrite.
	l := len("227 Entering Passive Mode (198,51,100,111,117,48).\r\n")
	r := cv.send(FromServer, l, "150 x\r\n", 0)
	if got, want := r.Segments[0].Seq, uint32(serverISN+1+l-4); got != want {
		t.Fatalf("retransmission after the first rewrite at %#x, want %#x", got, want)
	}
	if len(cv.exp) != 3 {
		t.Fatalf("expects %v, want three", cv.exp)
	}
}

func TestGapDroppedThenFilled(t *testing.T) {
	cv := newConv(t, client4, vip4)
	l1 := "150 ok\r\n"
	l2 := "227 Entering Passive Mode (198,51,100,11,117,48).\r\n"
	cv.dir[FromServer].sent = []byte(l1 + l2)
	cv.send(FromServer, 0, l1[:1], 0) // starts the stream
	r := cv.send(FromServer, len(l1), l2, 0)
	if len(r.Segments) != 0 || len(r.Expect) != 0 || cv.notes(NoteGap) != 1 {
		t.Fatalf("segment beyond a hole: %+v, expects %v, notes %v; want dropped and noted", r.Segments, r.Expect, cv.nts)
	}
	cv.send(FromServer, 0, l1, 0)
	cv.send(FromServer, len(l1), l2, 0)
	if got, want := cv.received(FromServer), l1+strings.Replace(l2, "198,51,100,11", "192,0,2,10", 1); got != want {
		t.Fatalf("client received %q, want %q", got, want)
	}
}

// TestStalledReplyReleased: a held 227 whose rest does not come (the server
// retransmits the part) is released unchanged rather than holding up the
// connection.
func TestStalledReplyReleased(t *testing.T) {
	cv := newConv(t, client4, vip4)
	part := "227 Entering Passive Mode (198,51"
	if r := cv.send(FromServer, 0, part, 0); len(r.Segments) != 1 || len(r.Segments[0].Payload) != 0 {
		t.Fatalf("first part: segments %+v, want one without payload (held)", r.Segments)
	}
	cv.send(FromServer, 0, part, 0)
	if got := cv.received(FromServer); got != part || cv.notes(NoteStalled) != 1 {
		t.Fatalf("after a retransmission the client holds %q (notes %v), want %q and a stall note", got, cv.nts, part)
	}
	cv.send(FromServer, len(part), ",100,11,117,48).\r\n", 0)
	if len(cv.exp) != 0 {
		t.Fatalf("expects %v from a released line, want nothing", cv.exp)
	}
}

// TestStalledCommand: a held client line whose verb is complete is released
// refused; one whose verb is not complete stays held until its rest comes.
func TestStalledCommand(t *testing.T) {
	cv := newConv(t, client4, vip4)
	cv.send(FromClient, 0, "PORT 198,51", 0)
	cv.send(FromClient, 0, "PORT 198,51", 0)
	cv.send(FromClient, 11, ",100,99,117,48\r\n", 0)
	if got, want := cv.received(FromClient), "XXXX 198,51,100,99,117,48\r\n"; got != want || len(cv.exp) != 0 {
		t.Fatalf("server received %q, expects %v, want %q and nothing", got, cv.exp, want)
	}

	cv = newConv(t, client4, vip4)
	cv.send(FromClient, 0, "PO", 0)
	cv.send(FromClient, 0, "PO", 0)
	if got := cv.received(FromClient); got != "" {
		t.Fatalf("server received %q from an incomplete verb, want nothing yet", got)
	}
	cv.send(FromClient, 0, "PORT 198,51,100,99,117,48\r\n", 0)
	if got, want := cv.received(FromClient), "XXXX 198,51,100,99,117,48\r\n"; got != want || cv.notes(NoteBounce) != 1 {
		t.Fatalf("server received %q (notes %v), want %q and a bounce", got, cv.nts, want)
	}
}

// TestResync: a segment far from the stream (a new connection on the same
// ports) starts the state over instead of being taken for a hole.
func TestResync(t *testing.T) {
	cv := newConv(t, client4, vip4)
	cv.send(FromServer, 0, "227 Entering Passive Mode (198,51,100,11,117,48).\r\n", 0)
	seg := Segment{Seq: serverISN + 1<<30, Ack: 12345, Flags: FlagACK, Payload: []byte("220 ready\r\n")}
	r := cv.c.Process(FromServer, &seg)
	if len(r.Segments) != 1 || r.Segments[0].Seq != seg.Seq || string(r.Segments[0].Payload) != "220 ready\r\n" {
		t.Fatalf("new connection's first segment: %+v, want it passed unchanged", r.Segments)
	}
	if cv.c.Offset(FromServer) != 0 || r.Notes[0].Kind != NoteResync {
		t.Fatalf("offset %d, notes %v after a resync, want 0 and a resync note", cv.c.Offset(FromServer), r.Notes)
	}
}

// TestSYNStartsOver: a SYN restarts the state at its sequence number.
func TestSYNStartsOver(t *testing.T) {
	c := NewConn(client4, vip4, Options{})
	c.Process(FromServer, &Segment{Seq: 100, Flags: FlagACK, Payload: []byte("227 Entering Passive Mode (198,51,100,11,117,48).\r\n")})
	r := c.Process(FromClient, &Segment{Seq: 5000, Flags: FlagSYN})
	if len(r.Segments) != 1 || r.Segments[0].Seq != 5000 || r.Segments[0].Flags != FlagSYN {
		t.Fatalf("SYN: %+v, want one SYN at 5000", r.Segments)
	}
	if c.Offset(FromServer) != 0 {
		t.Fatalf("offset after the client's SYN = %d, want 0", c.Offset(FromServer))
	}
}

// TestFINReleasesHeld: a FIN after a held partial line releases it, with
// the FIN on the last segment at the right place.
func TestFINReleasesHeld(t *testing.T) {
	cv := newConv(t, client4, vip4)
	r := cv.send(FromClient, 0, "QUIT\r\nPO", FlagFIN)
	if got := cv.received(FromClient); got != "QUIT\r\nXX" {
		t.Fatalf("server received %q, want %q", got, "QUIT\r\nXX")
	}
	last := r.Segments[len(r.Segments)-1]
	if last.Flags&FlagFIN == 0 || last.Seq+uint32(len(last.Payload)) != clientISN+1+8 {
		t.Fatalf("segments %+v: want the FIN on the last, ending at %#x", r.Segments, clientISN+1+8)
	}
}

// TestOversizedCoalescing: held bytes plus a full segment are split so no
// segment is longer than the one received (or 512 bytes).
func TestOversizedCoalescing(t *testing.T) {
	cv := newConv(t, client4, vip4)
	cv.send(FromServer, 0, "227 Entering", 0)
	big := " Passive Mode (198,51,100,11,117,48).\r\n" + strings.Repeat("x", 1400) + "\r\n"
	r := cv.send(FromServer, 12, big, 0)
	for _, s := range r.Segments {
		if len(s.Payload) > len(big) {
			t.Fatalf("segment of %d bytes from one of %d", len(s.Payload), len(big))
		}
	}
	rewritten := "227 Entering Passive Mode (192,0,2,10,117,48).\r\n"
	got := cv.received(FromServer)
	if !strings.HasPrefix(got, rewritten) || got[len(rewritten):] != big[len(rewritten)+3-12:] {
		t.Fatalf("client received %d bytes starting %q, want the rewritten line and the rest unchanged", len(got), got[:min(len(got), 60)])
	}
}
