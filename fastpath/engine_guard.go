package fastpath

import (
	"encoding/binary"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// Defences against floods of spoofed sources and forged teardowns.
//
// Flooding. Any packet to a VIP port would make an association that lives
// for the set's delete_age, so a trickle of spoofed sources would keep a
// table full. An association starts unproven (no assoc.FlagProven) and
// ages by the set's syn_age until its flow shows a second packet of a real
// connection (proves): a TCP client's packet carrying ACK after the first
// one (the handshake's third segment, or any later one for a connection
// first seen mid-stream), an SCTP packet with the verification tag the
// server chose (learned after INIT), a second UDP datagram. One direction
// is all a DSR front end sees, so a proof is what IPVS's direct-routing
// mode also takes for ESTABLISHED; it doubles a flood's cost per source
// and bounds what one packet per source can hold.
//
// Unproven associations hold at most half of each shard (unprovenShare).
// Beyond it an opening packet (SYN, INIT, a UDP datagram) is forwarded by
// the Maglev hash without an association (FloodStateless), which is where
// a flow without an association goes anyway, so its later packets find the
// same server; a TCP connection's next packet (past its opening, while the
// share is full) is recorded proven at once. Established associations are
// never pushed out or moved by new ones: a full shard makes new flows
// stateless, it never evicts.
//
// Forged teardowns. A FIN or RST marks a TCP association closed, after
// which a SYN from the same client port re-selects its server, so a
// spoofed RST then SYN would move a victim. A teardown is taken only if its
// sequence number is near the client's (in the spirit of RFC 5961, from
// one direction): the association keeps a sequence mark (aux) that follows
// the client's sequence numbers in steps of markStep, and a FIN or RST
// counts only within [mark-markStep, mark+teardownWindow). A blind
// attacker's random sequence number hits that window about once in 4000
// tries, and the packet itself is still forwarded, so the server applies
// its own RFC 5961 checks. Sets with a helper keep the helper's sequence
// offset in aux instead and skip this check. An SCTP SHUTDOWN, SHUTDOWN
// ACK, SHUTDOWN COMPLETE or ABORT counts only if it carries the learned
// verification tag with the T bit clear (RFC 9260: with the T bit the tag is
// the sender's own, which a one-direction observer never learned).

// unprovenShare is the divisor of a shard's limit that unproven
// associations may hold: one half.
const unprovenShare = 2

const (
	// markStep is how far the client's sequence number moves before the
	// mark follows: one store per 64 KiB of client data, not per packet.
	markStep = 1 << 16
	// teardownWindow is how far ahead of the mark a FIN or RST may be.
	teardownWindow = 1 << 20
)

// tcpSeq returns the sequence number of frame's TCP header (Parse checked
// it is whole).
func tcpSeq(frame []byte, f *packet.Flow) uint32 {
	off := int(f.L4Off) + 4
	if off+4 > len(frame) {
		return 0
	}
	return binary.BigEndian.Uint32(frame[off : off+4])
}

// sctpTBit reports whether the first chunk of frame's SCTP packet has its
// T bit (the lowest flag bit of ABORT and SHUTDOWN COMPLETE) set.
func sctpTBit(frame []byte, f *packet.Flow) bool {
	off := int(f.L4Off) + packet.SCTPHeaderLen + 1
	return off < len(frame) && frame[off]&1 != 0
}

// nearMark reports whether sequence number seq is in the teardown window of
// mark.
func nearMark(seq, mark uint32) bool {
	return seq-mark < teardownWindow || mark-seq <= markStep
}

// evidence is what packet f (frame), of the existing association idx with
// meta m of set ts, tells about its connection: the teardown flags that
// passed the checks above and FlagProven when it proves the connection.
// It moves the TCP sequence mark. Owner only.
func (e *Engine) evidence(ts *TargetSet, f *packet.Flow, frame []byte, idx int, m assoc.Meta) uint8 {
	fl := teardownFlags(f)
	switch f.Proto {
	case packet.ProtoTCP:
		if f.TCPFlags&packet.TCPFlagACK != 0 {
			fl |= assoc.FlagProven
		}
		if ts.Helper != HelperNone {
			return fl // aux holds the helper's sequence offset
		}
		seq, mark := tcpSeq(frame, f), e.shard.Aux(idx)
		if fl&(assoc.FlagFIN|assoc.FlagRST) != 0 && !nearMark(seq, mark) {
			e.local.TeardownIgnored++
			fl &^= assoc.FlagFIN | assoc.FlagRST
		}
		e.followMark(frame, f, idx)
	case packet.ProtoSCTP:
		if fl != 0 && (m.Flags()&assoc.FlagTagLearned == 0 || f.SCTPTag != e.shard.Aux(idx) || sctpTBit(frame, f)) {
			e.local.SCTPTagMismatch++
			fl = 0
		}
	case packet.ProtoUDP:
		fl |= assoc.FlagProven
	}
	return fl
}

// followMark moves TCP flow idx's sequence mark to frame's sequence number
// once the client has sent markStep bytes past it.
// One unsigned comparison stands for markStep <= seq-mark < 2^31.
func (e *Engine) followMark(frame []byte, f *packet.Flow, idx int) {
	if seq := tcpSeq(frame, f); seq-e.shard.Aux(idx)-markStep < 1<<31-markStep {
		e.shard.SetAux(idx, seq)
	}
}

// flooded reports whether unproven associations hold their share of the
// shard, so that opening packets go without one.
func (e *Engine) flooded() bool {
	return e.shard.Unproven() >= UnprovenLimit(e.shard.Limit())
}

// UnprovenLimit is how many unproven associations a shard of limit records
// holds before openings go without one.
func UnprovenLimit(limit int) int { return limit / unprovenShare }
