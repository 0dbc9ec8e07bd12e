package ftp

import (
	"bytes"
	"net/netip"
	"testing"
)

// FuzzConn drives a control connection with arbitrary client and server
// byte streams, cut into arbitrary segments, interleaved, retransmitted
// (whole, partly, cut differently) and reordered, and checks the helper's
// invariants:
//
//   - it never panics;
//   - an expectation names only the connection's client and a port of at
//     least MinDataPort;
//   - what each receiver ends up with is the sender's stream line for line,
//     each line unchanged, or a 227 line with exactly its four address
//     numbers replaced by the VIP's, or a client line with at most its
//     verb's four letters replaced by X's;
//   - sequence numbers are consistent: every segment the helper sends lands
//     where it belongs (a retransmission delivers the same bytes again), the
//     receiver's stream has no hole, the server's offset is the length
//     difference, the client's is 0, and an acknowledgement of the
//     receiver's end of the stream maps to the sender's end;
//   - a segment beyond a hole is dropped.
//
// The input's first byte seeds the schedule (bit 1: an IPv6 connection);
// the rest is the client's stream, a NUL byte, the server's stream.
func FuzzConn(f *testing.F) {
	f.Add([]byte("\x01USER x\r\nPASV\r\nPORT 203,0,113,7,117,48\r\nEPRT |1|203.0.113.7|30001|\r\nQUIT\r\n\x00" +
		"220 ready\r\n227 Entering Passive Mode (198,51,100,11,117,48).\r\n229 Entering Extended Passive Mode (|||30002|)\r\n"))
	f.Add([]byte("\x07PORT 198,51,100,99,0,21\r\nport 1,2,3,4,5,6\r\n   PoRt 203,0,113,7,4,0\r\n\x00" +
		"227 =198,51,100,11,4,1\r\n227 Entering Passive Mode (198,51,100,11,0,21)\r\n"))
	f.Add([]byte("\x33EPRT |2|2001:db8::1|30000|\r\nEPRT |1|203.0.113.7|65535|\r\nPORTX\r\nP\x00" +
		"227 Entering Passive Mode (999,51,100,11,117,48).\r\n227 Entering Passive Mode (1,2,3,4,5,6,7)\r\n227"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Long inputs add nothing a short one cannot show, and the
		// schedule's cost grows with the square of the length.
		if len(data) == 0 || len(data) > 4096 {
			return
		}
		seed := uint64(data[0]) | 1
		cs, ss, _ := bytes.Cut(data[1:], []byte{0})
		runConv(t, seed, cs, ss)
	})
}

// rng is a small deterministic generator (xorshift64) for schedules.
type rng uint64

func (r *rng) next() uint64 {
	x := uint64(*r)
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*r = rng(x)
	return x
}

func (r *rng) n(k int) int { return int(r.next() % uint64(k)) }

func runConv(t *testing.T, seed uint64, clientData, serverData []byte) {
	client, vip := client4, vip4
	if seed&2 != 0 {
		client, vip = client6, vip6
	}
	cv := newConv(t, client, vip)
	cv.dir[FromClient].sent = clientData
	cv.dir[FromServer].sent = serverData
	r := rng(seed)
	// frontier is how far the helper has taken each stream in order.
	frontier := [2]int{}
	for steps := 0; steps < 4*(len(clientData)+len(serverData))+16; steps++ {
		d := Dir(r.n(2))
		s := cv.dir[d]
		if frontier[d] == len(s.sent) {
			continue
		}
		switch k := r.n(10); {
		case k < 6: // the next piece
			n := 1 + r.n(min(len(s.sent)-frontier[d], 80))
			cv.sendChecked(d, frontier[d], n, 0)
		case k < 8 && frontier[d] > 0: // a retransmission, maybe with new bytes
			from := r.n(frontier[d])
			n := 1 + r.n(min(len(s.sent)-from, 120))
			cv.sendChecked(d, from, n, 0)
		default: // a piece beyond a hole
			// (Only once the stream started: the helper takes the first
			// segment it sees for the stream's start.)
			if cv.c.dirs[d].started && frontier[d]+1 < len(s.sent) {
				from := frontier[d] + 1 + r.n(len(s.sent)-frontier[d]-1)
				res := cv.sendRaw(d, from, 1+r.n(len(s.sent)-from), 0)
				if len(res.Segments) != 0 {
					t.Fatalf("%s segment beyond a hole at %d (stream at %d) was passed on", d, from, frontier[d])
				}
			}
		}
		frontier[d] = int(cv.c.dirs[d].next - (s.isn + 1))
		if !cv.c.dirs[d].started {
			frontier[d] = 0
		}
	}
	// Finish both streams in order and close them: FIN releases what is
	// held.
	for d := range Dir(2) {
		s := cv.dir[d]
		if frontier[d] < len(s.sent) {
			cv.sendChecked(d, frontier[d], len(s.sent)-frontier[d], 0)
		}
		cv.sendRaw(d, len(s.sent), 0, FlagFIN)
	}
	for _, e := range cv.exp {
		if e.Client != client || e.Port < MinDataPort {
			t.Fatalf("expectation %+v: want client %s and a port >= %d", e, client, MinDataPort)
		}
	}
	for d := range Dir(2) {
		s := cv.dir[d]
		got := s.got
		if n := s.contiguous(); n != len(got) {
			t.Fatalf("%s: receiver has a hole at %d of %d", d, n, len(got))
		}
		if want := uint32(len(got) - len(s.sent)); cv.c.Offset(d) != want {
			t.Fatalf("%s: Offset = %d, want the length difference %d", d, int32(cv.c.Offset(d)), int32(want))
		}
		o := Dir(1 - d)
		if ack := cv.c.MapAck(o, s.isn+1+uint32(len(got))); ack != s.isn+1+uint32(len(s.sent)) {
			t.Fatalf("%s: MapAck(receiver's end) = %#x, want the sender's end %#x", d, ack, s.isn+1+uint32(len(s.sent)))
		}
		checkLines(t, d, vip, s.sent, got)
	}
	if cv.c.Offset(FromClient) != 0 {
		t.Fatalf("Offset(FromClient) = %d, want 0", cv.c.Offset(FromClient))
	}
}

// sendChecked sends original bytes [from, from+n) of d, which do not go
// beyond a hole, and fails if the helper dropped them.
func (cv *conv) sendChecked(d Dir, from, n int, flags uint8) {
	cv.t.Helper()
	res := cv.sendRaw(d, from, n, flags)
	for _, nt := range res.Notes {
		if nt.Kind == NoteGap || nt.Kind == NoteTooOld {
			cv.t.Fatalf("%s segment [%d,%d) in order: note %s", d, from, from+n, nt.Kind)
		}
	}
}

func (cv *conv) sendRaw(d Dir, from, n int, flags uint8) Result {
	s := cv.dir[d]
	return cv.send(d, from, string(s.sent[from:from+n]), flags)
}

// checkLines compares a sender's stream with what its receiver got, line by
// line: unchanged, or changed only in the field a rewrite or refusal may
// change.
func checkLines(t *testing.T, d Dir, vip netip.Addr, sent, got []byte) {
	in, out := bytes.SplitAfter(sent, []byte("\n")), bytes.SplitAfter(got, []byte("\n"))
	if len(in) != len(out) {
		t.Fatalf("%s: %d lines sent, %d received", d, len(in), len(out))
	}
	for i := range in {
		a, b := in[i], out[i]
		if bytes.Equal(a, b) {
			continue
		}
		if d == FromServer {
			addr, port, start, end, err := reply227(a)
			if err != nil || port < MinDataPort || !vip.Is4() || addr == vip ||
				!bytes.Equal(b, append(append(append([]byte(nil), a[:start]...), vipText(vip)...), a[end:]...)) {
				t.Fatalf("server line %q reached the client as %q", a, b)
			}
			continue
		}
		if len(a) != len(b) {
			t.Fatalf("client line %q reached the server as %q: length changed", a, b)
		}
		sp := leadingSpaces(a)
		for j := range a {
			if a[j] != b[j] && (j < sp || j >= sp+4 || b[j] != 'X') {
				t.Fatalf("client line %q reached the server as %q: byte %d changed", a, b, j)
			}
		}
	}
}

// FuzzParsers runs the line parsers on arbitrary bytes: they never panic,
// a 227's address span lies in the line and holds the address it returns,
// and nothing accepted names a port the fields do not spell.
func FuzzParsers(f *testing.F) {
	for _, s := range []string{"227 Entering Passive Mode (198,51,100,11,117,48).\r\n", "229 (|||1|)", "|1|1.2.3.4|5|",
		"1,2,3,4,5,6", "|2|::1|65535|", "227 1,2,3,4,5,6,7"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if addr, _, start, end, err := reply227(b); err == nil {
			if start < 0 || end > len(b) || start > end {
				t.Fatalf("reply227(%q) span [%d,%d) outside the line", b, start, end)
			}
			if a, _, _, _, err := hostPort(append(append([]byte(nil), b[start:end]...), ",0,0"...)); err != nil || a != addr {
				t.Fatalf("reply227(%q) = %s, span holds %q", b, addr, b[start:end])
			}
		}
		if addr, port, err := parsePORT(b); err == nil {
			p := addr.As4()
			want := netip.AddrFrom4(p)
			if addr != want || !bytes.Contains(b, []byte{byte('0' + port%10)}) {
				t.Fatalf("parsePORT(%q) = %s, %d", b, addr, port)
			}
		}
		if addr, _, err := parseEPRT(b); err == nil && (!addr.IsValid() || addr.Zone() != "") {
			t.Fatalf("parseEPRT(%q) = %s", b, addr)
		}
		reply229(b)
		classify(b)
		clientCandidate(b)
	})
}
