package ftp

// Sequence numbers. A direction of the connection has two numberings: the
// sender's ("original", what the segments the helper receives carry) and the
// receiver's ("out", what the segments the helper sends carry). They differ
// by the sum of the length changes of the rewrites before a position, the
// way Linux's nf_nat_ftp keeps an offset and the sequence number from which
// it applies (nf_ct_seqadj); here every rewrite still worth reproducing is
// kept, so a retransmission of any of them comes out as it did the first
// time, whatever its segmentation.

// seqLT reports a < b in sequence space (RFC 1982).
func seqLT(a, b uint32) bool { return int32(a-b) < 0 }

// seqLE reports a <= b in sequence space.
func seqLE(a, b uint32) bool { return int32(a-b) <= 0 }

// stream is one direction of a control connection.
type stream struct {
	started bool
	// next is the original sequence number after the last in-order byte
	// received; emitted is the one after the last byte passed on. The
	// bytes between are pending: the start of a line held back until it
	// is complete (it may have to change).
	next, emitted uint32
	pending       []byte
	// off is out - original at emitted (and for everything after it).
	off uint32
	// edits are the latest rewrites, oldest first. floor, once an edit
	// was forgotten, is the original sequence number before which
	// retransmissions can no longer be reproduced.
	edits    []edit
	floor    uint32
	hasFloor bool
	// closing is set once the sender sent FIN or RST.
	closing bool
	line    lineState
}

// edit is one rewritten piece of the stream: the original bytes at pos and
// what was sent instead, with the offset before it.
type edit struct {
	pos        uint32
	orig, repl []byte
	offBefore  uint32
}

func (e *edit) end() uint32 { return e.pos + uint32(len(e.orig)) }

// lineState is the line the stream is in the middle of.
type lineState struct {
	buf  []byte // its first bytes (up to the line limit + 1), for parsing
	n    int    // its length so far
	held bool   // its bytes so far are pending
	done bool   // given up on (overlong, stalled): passed on as it comes, not parsed
}

func (l *lineState) reset() {
	l.buf, l.n, l.held, l.done = l.buf[:0], 0, false, false
}

// start begins the stream at original sequence number s, taken to be the
// start of a line.
func (st *stream) start(s uint32) {
	*st = stream{started: true, next: s, emitted: s}
}

// pass appends original bytes b, unchanged, to the output em.
func (st *stream) pass(em, b []byte) []byte {
	st.emitted += uint32(len(b))
	return append(em, b...)
}

// edit appends repl to em in place of the original bytes orig (which start
// at emitted) and records the rewrite.
func (st *stream) edit(em, orig, repl []byte) []byte {
	e := edit{pos: st.emitted, orig: append([]byte(nil), orig...), repl: append([]byte(nil), repl...), offBefore: st.off}
	if len(st.edits) == maxEdits {
		st.floor, st.hasFloor = st.edits[0].end(), true
		st.edits = append(st.edits[:0], st.edits[1:]...)
	}
	st.edits = append(st.edits, e)
	st.emitted += uint32(len(orig))
	st.off += uint32(len(repl) - len(orig))
	return append(em, repl...)
}

// mapOut returns the out sequence number of original position x, which is
// at most emitted and not strictly inside a rewritten piece; false if x is
// older than the kept history.
func (st *stream) mapOut(x uint32) (uint32, bool) {
	off := st.off
	for i := len(st.edits) - 1; i >= 0; i-- {
		e := &st.edits[i]
		if seqLE(e.end(), x) {
			return x + off, true
		}
		if seqLE(x, e.pos) {
			off = e.offBefore
			continue
		}
		return 0, false // inside: callers widen to the edit's bounds first
	}
	if st.hasFloor && seqLT(x, st.floor) {
		return 0, false
	}
	return x + off, true
}

// unmapAck returns the original sequence number the receiver's
// acknowledgement y stands for: y minus the offset where it falls, or the
// start of a rewritten piece y falls inside.
func (st *stream) unmapAck(y uint32) uint32 {
	off := st.off
	for i := len(st.edits) - 1; i >= 0; i-- {
		e := &st.edits[i]
		if seqLE(e.end()+off, y) {
			return y - off
		}
		if seqLT(e.pos+e.offBefore, y) {
			return e.pos
		}
		off = e.offBefore
	}
	return y - off
}

// rebuild returns the segment to send for a retransmission of original
// bytes b at s, all before emitted: the same bytes, with every rewritten
// piece it touches sent as rewritten before (widened to the whole piece when
// the retransmission cuts through one), at the out sequence number of its
// start. It fails when s is older than the kept history.
func (st *stream) rebuild(s uint32, b []byte) (Out, bool) {
	lo, hi := s, s+uint32(len(b))
	first, last := -1, -1
	for i := range st.edits {
		e := &st.edits[i]
		if seqLT(e.pos, hi) && seqLT(lo, e.end()) {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	start := lo
	if first >= 0 && seqLT(st.edits[first].pos, lo) {
		start = st.edits[first].pos
	}
	seq, ok := st.mapOut(start)
	if !ok {
		return Out{}, false
	}
	out := make([]byte, 0, len(b)+16)
	pos := start
	for i := first; first >= 0 && i <= last; i++ {
		e := &st.edits[i]
		if seqLT(pos, e.pos) {
			out = append(out, b[pos-lo:e.pos-lo]...)
		}
		out = append(out, e.repl...)
		pos = e.end()
	}
	if seqLT(pos, hi) {
		out = append(out, b[pos-lo:]...)
	}
	return Out{Seq: seq, Payload: out}, true
}
