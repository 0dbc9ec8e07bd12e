package ha

// window is a receiver's view of one mate's sequence numbers within an
// epoch: which arrived, which are missing. Everything below next has
// arrived (or was given up); bits hold the arrivals in next+1 ..
// next+windowSize (bit i: next+1+i). A number below next or already set is
// a replay. Owned by the receive goroutine.
type window struct {
	next    uint64 // lowest number not yet received
	highest uint64 // highest number received (next-1 when there is no hole)
	bits    [windowSize / 64]uint64
}

// windowSize is how far past a hole messages may arrive before the hole is
// given up (and the loss repaired by a resync instead of retransmission);
// the sender keeps at least as many messages for retransmission.
const windowSize = 4096

// reset makes seq the next number expected, forgetting any hole.
func (w *window) reset(seq uint64) {
	w.next, w.highest = seq, seq-1
	w.bits = [windowSize / 64]uint64{}
}

// accept records seq's arrival. It returns false for a replay (seq seen
// before, or below next) and reports whether holes older than the window
// were given up to make room (lost: the caller repairs by a resync).
func (w *window) accept(seq uint64) (ok, lost bool) {
	if seq < w.next {
		return false, false
	}
	if seq >= w.next+1+windowSize {
		// Too far ahead: everything between is given up.
		w.reset(seq + 1)
		return true, true
	}
	if seq == w.next {
		w.next++
		w.advance()
	} else {
		i := seq - w.next - 1
		if w.bits[i/64]&(1<<(i%64)) != 0 {
			return false, false
		}
		w.bits[i/64] |= 1 << (i % 64)
	}
	w.highest = max(w.highest, seq)
	return true, false
}

// advance runs after next moved up by one: bits are still relative to the
// old next, so bit 0 is the new next. While that one had arrived, move on;
// then make the bits relative to the final next.
func (w *window) advance() {
	for w.bits[0]&1 != 0 {
		w.shift(1)
		w.next++
	}
	w.shift(1)
}

// shift moves the bitmap down by n < 64 bits.
func (w *window) shift(n uint) {
	for i := range w.bits {
		w.bits[i] >>= n
		if i+1 < len(w.bits) {
			w.bits[i] |= w.bits[i+1] << (64 - n)
		}
	}
}

// hole reports whether a number below highest is missing.
func (w *window) hole() bool { return w.highest >= w.next }

// missing appends up to max missing numbers, lowest first.
func (w *window) missing(out []uint64, max int) []uint64 {
	if !w.hole() {
		return out
	}
	out = append(out, w.next)
	for s := w.next + 1; s < w.highest && len(out) < max; s++ {
		i := s - w.next - 1
		if w.bits[i/64]&(1<<(i%64)) == 0 {
			out = append(out, s)
		}
	}
	return out
}

// giveUp forgets every hole: numbers up to highest count as received.
func (w *window) giveUp() { w.reset(w.highest + 1) }
