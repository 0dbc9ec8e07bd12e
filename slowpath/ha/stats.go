package ha

import "time"

// Mate states as Stats reports them.
const (
	StateSynced    = "synced"    // heard within silentAfter, nothing missing
	StateResyncing = "resyncing" // a requested table is on its way, or messages are missing
	StateSilent    = "silent"    // not heard for silentAfter (or never)
)

// MateStats is one mate as this node sees it.
type MateStats struct {
	Mate  string // its sync address
	State string // StateSynced, StateResyncing or StateSilent
	// Pulled is true once a table this node asked the mate for arrived
	// whole.
	Pulled bool
	// LastReceived is when its last accepted message arrived (zero:
	// never); Lag how long that message took from being sealed there to
	// being accepted here (its clock against this one).
	LastReceived time.Time
	Lag          time.Duration
	// Messages and records sent to it and accepted from it.
	SentMessages, SentRecords, ReceivedMessages, ReceivedRecords uint64
	// Imported records went to a worker's control ring; Unresolved named a
	// set or server this instance does not have; ImportDropped found the
	// control ring full for too long.
	Imported, Unresolved, ImportDropped uint64
	// Rejected messages by reason: a bad HMAC (Forged), a number seen
	// before or an older epoch (Replayed), a time more than 30 s away
	// (Stale), too short or inconsistent (Malformed).
	Forged, Replayed, Stale, Malformed uint64
	// ResyncsRequested from it, ResyncsServed to it, ResyncsCompleted
	// (requested tables that arrived whole); Lost counts holes given up
	// (repaired by a resync); Retransmits messages sent to it again on its
	// request, NacksSent such requests of this node.
	ResyncsRequested, ResyncsServed, ResyncsCompleted, Lost uint64
	Retransmits, NacksSent                                  uint64
}

// Stats is the node's state.
type Stats struct {
	Listen string
	Joined bool
	// ExportSkipped counts local changes not sent: a kind that is not
	// replicated or a server that left its slot meanwhile.
	ExportSkipped uint64
	// UnknownPeer counts datagrams from addresses that are no mates.
	UnknownPeer uint64
	Mates       []MateStats
}

// Stats returns a snapshot of the node's counters. Safe from any goroutine.
func (n *Node) Stats() Stats {
	now := n.cfg.Now()
	s := Stats{Listen: n.conn.LocalAddr().String(), Joined: n.Joined(), ExportSkipped: n.exportSkip.Load(),
		UnknownPeer: n.unknownPeer.Load()}
	for _, m := range n.mates {
		c := &m.c
		ms := MateStats{Mate: m.addr.String(),
			SentMessages: c.sentMsgs.Load(), SentRecords: c.sentRecs.Load(),
			ReceivedMessages: c.recvMsgs.Load(), ReceivedRecords: c.recvRecs.Load(),
			Imported: c.imported.Load(), Unresolved: c.unresolved.Load(), ImportDropped: c.importDropped.Load(),
			Forged: c.forged.Load(), Replayed: c.replayed.Load(), Stale: c.stale.Load(), Malformed: c.malformed.Load(),
			ResyncsRequested: c.resyncsRequested.Load(), ResyncsServed: c.resyncsServed.Load(),
			ResyncsCompleted: c.resyncsCompleted.Load(), Lost: c.lost.Load(),
			Retransmits: c.retransmits.Load(), NacksSent: c.nacksSent.Load(),
			Lag: time.Duration(m.lagNS.Load()),
		}
		m.rxMu.Lock()
		busy := m.pending != 0 || m.endSeq != 0 || m.win.hole()
		ms.Pulled = m.pulled
		m.rxMu.Unlock()
		if ns := m.lastRecv.Load(); ns != 0 {
			ms.LastReceived = time.Unix(0, ns)
		}
		switch {
		case ms.LastReceived.IsZero() || now.Sub(ms.LastReceived) > silentAfter:
			ms.State = StateSilent
		case busy:
			ms.State = StateResyncing
		default:
			ms.State = StateSynced
		}
		s.Mates = append(s.Mates, ms)
	}
	return s
}
