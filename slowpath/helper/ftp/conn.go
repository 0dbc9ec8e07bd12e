package ftp

import (
	"bytes"
	"net/netip"
)

// Dir is the direction a segment of the control connection travels.
type Dir uint8

// Directions.
const (
	FromClient Dir = iota // client -> VIP:21: commands
	FromServer            // server:21 -> client: replies
)

// String names the direction in logs.
func (d Dir) String() string {
	if d == FromClient {
		return "client"
	}
	return "server"
}

// TCP flag bits, as in the TCP header's flags byte.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagPSH uint8 = 0x08
	FlagACK uint8 = 0x10
)

// Segment is one TCP segment of a control connection as the helper sees
// it: sequence numbers, flags and payload. Payload is only read during
// Process.
type Segment struct {
	Seq, Ack uint32
	Flags    uint8
	Payload  []byte
}

// Out is a segment to send in place of the one given to Process: its
// sequence number already in the receiver's numbering, its flags (those of
// the input; FIN, PSH and RST only on the last of several, SYN only on the
// first) and its payload. The acknowledgement number is the input's,
// translated by Conn.MapAck.
type Out struct {
	Seq     uint32
	Flags   uint8
	Payload []byte
}

// Mode is the kind of data connection an expectation announces.
type Mode uint8

// Modes.
const (
	// Passive: the client connects from any port to VIP:Port; it must
	// reach the control connection's server at Port.
	Passive Mode = iota + 1
	// Active: the control connection's server connects from its port 20
	// to Client:Port; it must leave ipfront from VIP:20.
	Active
)

// String names the mode in logs and listings.
func (m Mode) String() string {
	switch m {
	case Passive:
		return "passive"
	case Active:
		return "active"
	}
	return "?"
}

// Expectation is a data connection the control connection announced and
// the helper accepted: Client is always the control connection's client
// and Port is at least MinDataPort.
type Expectation struct {
	Mode   Mode
	Client netip.Addr
	Port   uint16
}

// NoteKind is something the helper did or refused, for the caller's
// counters and logs.
type NoteKind uint8

// Notes.
const (
	// NoteCommand: a PORT or EPRT command or a 227 or 229 reply was
	// parsed and accepted (an Expectation goes with it).
	NoteCommand NoteKind = iota
	// NoteRewrite: a 227 reply's address was replaced by the VIP's.
	NoteRewrite
	// NoteBounce: a PORT or EPRT naming an address other than the
	// client's own (an FTP bounce) was refused: nothing expected, the
	// command's verb made unknown to the server.
	NoteBounce
	// NoteLowPort: a data port below MinDataPort was refused (a PORT or
	// EPRT is made unknown to the server; a reply passes unchanged).
	NoteLowPort
	// NoteMalformed: a PORT, EPRT, 227 or 229 line whose fields do not
	// parse (non-numeric, out of range, missing, extra) was refused.
	NoteMalformed
	// NoteFamily: a 227 reply for an IPv6 VIP, whose address cannot name
	// the VIP, was refused and passed unchanged.
	NoteFamily
	// NoteOverlong: a PORT, EPRT or 227 line longer than the line limit
	// was refused.
	NoteOverlong
	// NoteStalled: the rest of a held PORT, EPRT or 227 line did not come
	// (the sender retransmitted the part it had sent, or closed): the part
	// was released (a command made unknown to the server, a reply
	// unchanged) rather than holding up the connection.
	NoteStalled
	// NoteGap: a segment beyond a hole in the stream was dropped; the
	// sender retransmits it after the hole is filled.
	NoteGap
	// NoteTooOld: a retransmission of data older than the kept rewrite
	// history was dropped.
	NoteTooOld
	// NoteResync: sequence numbers jumped far away (a new connection on
	// the same ports): the connection's state started over.
	NoteResync
	// NumNotes is the number of note kinds.
	NumNotes
)

var noteNames = [...]string{"command", "rewrite", "bounce", "low_port", "malformed", "family", "overlong",
	"stalled", "gap", "too_old", "resync"}

// String names the note in logs and metrics.
func (k NoteKind) String() string {
	if int(k) < len(noteNames) {
		return noteNames[k]
	}
	return "?"
}

// Note is one thing Process did or refused. Verb is "PORT", "EPRT", "227"
// or "229" when the note is about such a line; Addr and Port are what it
// named, when it parsed that far.
type Note struct {
	Kind NoteKind
	Verb string
	Addr netip.Addr
	Port uint16
}

// Result is what Process returns: the segments to send instead of the input
// (none: drop it), the data connections to expect and notes for counters
// and logs.
type Result struct {
	Segments []Out
	Expect   []Expectation
	Notes    []Note
}

func (r *Result) note(k NoteKind, verb string, addr netip.Addr, port uint16) {
	r.Notes = append(r.Notes, Note{Kind: k, Verb: verb, Addr: addr, Port: port})
}

// Limits.
const (
	// DefaultMaxLine is the longest PORT, EPRT or 227 line accepted,
	// terminator included. The longest legitimate one (an EPRT with a
	// full IPv6 address) is about 60 bytes.
	DefaultMaxLine = 512
	// minMaxLine is the smallest line limit: leading spaces and a verb.
	minMaxLine = maxLeadingSpaces + 8
	// minChunk is the payload size up to which the helper may coalesce
	// held bytes with the next segment's: below any TCP MSS in use.
	minChunk = 512
	// maxEdits is how many rewrites per direction are kept to reproduce
	// retransmissions and translate acknowledgements. FTP is lock-step:
	// a rewrite is acknowledged long before the eighth next one.
	maxEdits = 8
	// window is how far (bytes, either way) a segment's sequence number
	// may be from where the stream is for the segment to belong to it,
	// rather than to a new connection on the same ports.
	window = 1 << 20
)

// Options tune a Conn.
type Options struct {
	// MaxLine is the longest PORT, EPRT or 227 line accepted; 0 means
	// DefaultMaxLine.
	MaxLine int
}

// Conn follows one FTP control connection in both directions. It is not
// safe for concurrent use.
type Conn struct {
	client, vip netip.Addr // unmapped
	maxLine     int
	dirs        [2]stream
}

// NewConn returns the state of a control connection from client to vip.
// IPv4 addresses may be given in IPv4-mapped form.
func NewConn(client, vip netip.Addr, o Options) *Conn {
	if o.MaxLine <= 0 {
		o.MaxLine = DefaultMaxLine
	}
	// A held line must show its whole verb before it is cut off as
	// overlong, so that a refusal can overwrite it.
	o.MaxLine = max(o.MaxLine, minMaxLine)
	return &Conn{client: client.Unmap(), vip: vip.Unmap(), maxLine: o.MaxLine}
}

// Client returns the control connection's client address.
func (c *Conn) Client() netip.Addr { return c.client }

// Offset returns how far direction d's sequence numbers are moved for what
// follows the data seen so far (modulo 2^32: add it to a sequence number of
// d, subtract it from an acknowledgement number of the other direction).
// The client's commands are never resized (a refused command keeps its
// length), so Offset(FromClient) is always 0; Offset(FromServer) changes
// with each 227 rewrite.
func (c *Conn) Offset(d Dir) uint32 { return c.dirs[d].off }

// MapAck translates the acknowledgement number (or a SACK edge) of a
// segment travelling in direction d, which counts the other direction's
// bytes as the receiver got them, into the numbering of that direction's
// sender. An acknowledgement inside a rewritten line becomes the line's
// start, so the sender retransmits the line rather than believing it
// delivered.
func (c *Conn) MapAck(d Dir, ack uint32) uint32 {
	o := &c.dirs[1-d]
	if !o.started {
		return ack
	}
	return o.unmapAck(ack)
}

// reset forgets both directions (a new connection on the same ports).
func (c *Conn) reset() { c.dirs = [2]stream{} }

// Process takes the next segment the helper received in direction d and
// returns what to send instead. Segments are expected in the order they
// arrived; retransmissions and reordering are handled: data before what was
// already passed on is passed on again exactly as rewritten before, and a
// segment beyond a hole is dropped (the sender retransmits it).
func (c *Conn) Process(d Dir, seg *Segment) Result {
	var r Result
	st := &c.dirs[d]
	s := seg.Seq
	switch {
	case seg.Flags&FlagSYN != 0:
		if d == FromClient {
			c.reset()
		} else {
			*st = stream{}
		}
		s++
		st.start(s)
	case !st.started:
		st.start(s)
	case !c.inWindow(d, seg):
		c.reset()
		st.start(s)
		r.note(NoteResync, "", netip.Addr{}, 0)
	}

	p := seg.Payload
	e := s + uint32(len(p))
	if seqLT(st.next, s) {
		r.note(NoteGap, "", netip.Addr{}, 0)
		return r
	}
	if seqLT(s, st.emitted) {
		hi := e
		if seqLT(st.emitted, e) {
			hi = st.emitted
		}
		o, ok := st.rebuild(s, p[:hi-s])
		if !ok {
			r.note(NoteTooOld, "", netip.Addr{}, 0)
			return r
		}
		r.Segments = append(r.Segments, o)
	}
	var fresh []byte
	if seqLT(st.next, e) {
		fresh = p[st.next-s:]
	}
	frontier := st.emitted + st.off
	var em []byte
	if len(p) > 0 && len(fresh) == 0 && len(st.pending) > 0 && seqLT(st.emitted, e) {
		em = c.giveUp(d, st, em, &r, NoteStalled)
	}
	em = c.feed(d, st, fresh, em, &r)
	if seg.Flags&(FlagFIN|FlagRST) != 0 && len(st.pending) > 0 {
		st.closing = true // nothing more comes: release whatever is held
		em = c.giveUp(d, st, em, &r, NoteStalled)
	}
	limit := max(len(p), minChunk)
	for len(em) > 0 {
		n := min(len(em), limit)
		r.Segments = append(r.Segments, Out{Seq: frontier, Payload: em[:n:n]})
		frontier += uint32(n)
		em = em[n:]
	}
	if len(r.Segments) == 0 {
		r.Segments = append(r.Segments, Out{Seq: frontier})
	}
	// Flags: ACK (and the rest) everywhere; SYN on the first, which then
	// starts one before the data; FIN, PSH and RST on the last.
	last := len(r.Segments) - 1
	for i := range r.Segments {
		f := seg.Flags &^ (FlagSYN | FlagFIN | FlagPSH | FlagRST)
		if i == 0 && seg.Flags&FlagSYN != 0 {
			f |= FlagSYN
			r.Segments[i].Seq--
		}
		if i == last {
			f |= seg.Flags & (FlagFIN | FlagPSH | FlagRST)
		}
		r.Segments[i].Flags = f
	}
	if seg.Flags&FlagRST != 0 {
		c.reset()
	}
	return r
}

// inWindow reports whether seg belongs to the connection followed so far:
// its sequence number near where direction d is, and its acknowledgement
// near what the other direction has sent. A new connection reusing the
// ports fails both with probability about 1 - 2^-22.
func (c *Conn) inWindow(d Dir, seg *Segment) bool {
	if !near(seg.Seq, c.dirs[d].next) {
		return false
	}
	o := &c.dirs[1-d]
	if seg.Flags&FlagACK != 0 && o.started && !near(seg.Ack, o.emitted+o.off) {
		return false
	}
	return true
}

func near(a, b uint32) bool {
	d := int32(a - b)
	return d >= -window && d <= window
}

// feed runs new in-order bytes b of direction d through the line machine,
// appending what may be passed on now to em.
func (c *Conn) feed(d Dir, st *stream, b []byte, em []byte, r *Result) []byte {
	for len(b) > 0 {
		chunk := b
		complete := false
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			chunk, complete = b[:i+1], true
		}
		b = b[len(chunk):]
		ln := &st.line
		if ln.n == 0 {
			ln.held = true // until the line's first bytes show it needs no change
		}
		ln.n += len(chunk)
		if room := c.maxLine + 1 - len(ln.buf); room > 0 {
			ln.buf = append(ln.buf, chunk[:min(len(chunk), room)]...)
		}
		st.next += uint32(len(chunk))
		if ln.held {
			st.pending = append(st.pending, chunk...)
			switch {
			case !candidate(d, ln.buf):
				em = st.pass(em, st.pending)
				st.pending = st.pending[:0]
				ln.held = false
			case ln.n > c.maxLine:
				em = c.giveUp(d, st, em, r, NoteOverlong)
			}
		} else {
			em = st.pass(em, chunk)
		}
		if complete {
			switch {
			case ln.held:
				em = c.act(d, st, em, r)
			case !ln.done && ln.n <= c.maxLine:
				c.observe(d, ln.buf, r)
			}
			ln.reset()
		}
	}
	return em
}

func candidate(d Dir, b []byte) bool {
	if d == FromClient {
		return clientCandidate(b)
	}
	return serverCandidate(b)
}

// act decides on a complete held line (st.pending) and passes it on,
// changed or not.
func (c *Conn) act(d Dir, st *stream, em []byte, r *Result) []byte {
	line := st.pending
	defer func() { st.pending = st.pending[:0] }()
	if d == FromClient {
		return c.actCommand(st, line, em, r)
	}
	return c.actReply(st, line, em, r)
}

// actCommand checks a client line that may be PORT or EPRT: accepted, it
// passes unchanged with an active expectation; refused, its verb is
// overwritten with X's (same length, so no sequence offset) and the server
// answers it as an unknown command.
func (c *Conn) actCommand(st *stream, line, em []byte, r *Result) []byte {
	var (
		addr netip.Addr
		port uint16
		err  error
		name string
	)
	switch classify(line) {
	case verbOther:
		return st.pass(em, line)
	case verbBad:
		name, err = "PORT", errMalformed
		if prefixFold(line[leadingSpaces(line):], "EPRT") {
			name = "EPRT"
		}
	case verbPORT:
		name = "PORT"
		addr, port, err = parsePORT(args(line))
	case verbEPRT:
		name = "EPRT"
		addr, port, err = parseEPRT(args(line))
	}
	kind := NoteCommand
	switch {
	case err != nil:
		kind = NoteMalformed
	case addr != c.client:
		kind = NoteBounce
	case port < MinDataPort:
		kind = NoteLowPort
	}
	r.note(kind, name, addr, port)
	if kind != NoteCommand {
		return st.edit(em, line, neutralise(line))
	}
	// The address the command named, which the checks above found to be
	// the client's own.
	r.Expect = append(r.Expect, Expectation{Mode: Active, Client: addr, Port: port})
	return st.pass(em, line)
}

// actReply checks a server line that may be a 227 reply: accepted, its
// address becomes the VIP's and a passive expectation goes with it; refused,
// it passes unchanged (the client then cannot reach the address; no
// expectation lets it anywhere else).
func (c *Conn) actReply(st *stream, line, em []byte, r *Result) []byte {
	addr, port, start, end, err := reply227(line)
	kind := NoteCommand
	switch {
	case err != nil:
		kind = NoteMalformed
	case !c.vip.Is4():
		kind = NoteFamily
	case port < MinDataPort:
		kind = NoteLowPort
	}
	r.note(kind, "227", addr, port)
	if kind != NoteCommand {
		return st.pass(em, line)
	}
	r.Expect = append(r.Expect, Expectation{Mode: Passive, Client: c.client, Port: port})
	if addr == c.vip {
		return st.pass(em, line)
	}
	r.note(NoteRewrite, "227", addr, port)
	repl := make([]byte, 0, len(line)+8)
	repl = append(repl, line[:start]...)
	repl = append(repl, vipText(c.vip)...)
	repl = append(repl, line[end:]...)
	return st.edit(em, line, repl)
}

// observe looks at a complete line that was passed on as it arrived: a 229
// reply names no address, so it needs no rewrite, only its expectation.
func (c *Conn) observe(d Dir, line []byte, r *Result) {
	if d != FromServer || !bytes.HasPrefix(line, []byte("229 ")) {
		return
	}
	port, err := reply229(line)
	switch {
	case err != nil:
		r.note(NoteMalformed, "229", netip.Addr{}, 0)
	case port < MinDataPort:
		r.note(NoteLowPort, "229", netip.Addr{}, port)
	default:
		r.note(NoteCommand, "229", netip.Addr{}, port)
		r.Expect = append(r.Expect, Expectation{Mode: Passive, Client: c.client, Port: port})
	}
}

// giveUp releases a held partial line that cannot be decided on: a client's
// with its verb overwritten (it could be a PORT or EPRT the helper cannot
// check), a server's unchanged. The rest of the line passes as it comes.
//
// A client's partial line whose verb is not complete yet stays held even
// when stalled, since overwriting what there is would not stop the rest from
// spelling PORT: the sender's retransmission (which coalesces the next
// segment's bytes when they fit) completes it, or FIN ends it.
func (c *Conn) giveUp(d Dir, st *stream, em []byte, r *Result, why NoteKind) []byte {
	ln := &st.line
	verb := "227"
	if d == FromClient {
		if why == NoteStalled && !verbComplete(st.pending) && !st.closing {
			return em
		}
		verb = "PORT"
		if prefixFold(ln.buf[leadingSpaces(ln.buf):], "EPRT") {
			verb = "EPRT"
		}
		em = st.edit(em, st.pending, neutralise(st.pending))
	} else {
		em = st.pass(em, st.pending)
	}
	r.note(why, verb, netip.Addr{}, 0)
	st.pending = st.pending[:0]
	ln.held, ln.done = false, true
	return em
}

// verbComplete reports whether the start of a client line holds a whole
// four-letter verb after its leading spaces.
func verbComplete(b []byte) bool {
	sp := leadingSpaces(b)
	return len(b) >= sp+4
}

// neutralise returns a copy of a client line (or its start) with the
// verb's letters replaced by X: the server answers "500 Unknown command"
// and acts on nothing, and the length stays, so no sequence offset.
func neutralise(line []byte) []byte {
	out := bytes.Clone(line)
	for i, n := leadingSpaces(out), 0; i < len(out) && n < 4; i, n = i+1, n+1 {
		if out[i] == '\r' || out[i] == '\n' {
			break
		}
		out[i] = 'X'
	}
	return out
}
