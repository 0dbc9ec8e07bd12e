package fastpath

import (
	"encoding/binary"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// Telecom signalling: multihomed SCTP and Diameter staleness.
//
// # SCTP verification-tag index
//
// A multihomed SCTP peer sends one association's packets from several
// addresses, to either of the set's addresses (VIP and SecondaryVIP), so
// the flow key (client address and port) of its second path is another
// key, which on its own would land on any server. Every packet after INIT
// carries the verification tag the server chose, the same on every path.
// When an association learns that tag, its worker also writes a KindTag
// record (set, tag) -> the association's server; a packet of an unknown
// path that carries a tag looks it up (its own shard, then the other
// workers' with the bounded reader, as paths arrive on any RX queue) and
// takes that server, recording the path under its own key. Index entries
// age like the association (delete_age) and are refreshed with it. Two
// peers whose associations picked the same tag for different servers
// collide: the later keeps its address key only (TagCollisions).
//
// # Diameter staleness
//
// The IPFE deems an association stale when "the transactions of the
// Connect-CER-CEA-Disconnect form are the only transactions to have taken
// place for a period of time of Delete Age". Peers often connect from a
// fixed port, so without this rule a peer that only ever connected,
// exchanged capabilities and disconnected would return to the same server
// forever. In a Diameter set a flow's packets keep it alive only once it
// has carried an application message (assoc.Value.App): any Diameter
// command but Capabilities-Exchange (257) and Disconnect-Peer (282); until
// then it ages from the moment it was made. Only the command code of the
// first Diameter header of a TCP segment, or of an SCTP DATA chunk with
// PPID 46, is read; nothing is modified.

// Diameter command codes of the connect and disconnect form.
const (
	diameterCER = 257 // Capabilities-Exchange
	diameterDPR = 282 // Disconnect-Peer
	// diameterPPID is SCTP's payload protocol identifier for Diameter.
	diameterPPID = 46
	// diameterHeaderLen is the fixed Diameter header (RFC 6733 3).
	diameterHeaderLen = 20
)

// tagKey is the KindTag key of verification tag tag in set.
func tagKey(set uint16, tag uint32) assoc.Packed {
	k := assoc.Key{Proto: packet.ProtoSCTP, Set: set, Kind: assoc.KindTag}
	binary.BigEndian.PutUint32(k.Addr[:4], tag)
	return k.Pack()
}

// indexTag records that tag names server slot (generation gen) of ts, or
// refreshes the entry; an entry for another server is a collision.
func (e *Engine) indexTag(ts *TargetSet, tag uint32, slot uint8, gen uint32, now uint32) {
	if ts.NoTagIndex || tag == 0 {
		return
	}
	p := tagKey(ts.ID, tag)
	h := p.Hash()
	idx, found := e.shard.FindPacked(&p, h)
	if found {
		if m := e.shard.Meta(idx); m.Server() != slot || m.Gen() != gen {
			e.local.TagCollisions++
			return
		}
		e.shard.Touch(idx, now)
		return
	}
	for _, peer := range e.nat.peers {
		if v, r := peer.LookupPacked(&p, h); r == assoc.Found && (v.Server != slot || v.Gen != gen) {
			e.local.TagCollisions++
			return
		}
	}
	if idx < 0 {
		return // the shard is full: the paths keep their address keys
	}
	e.shard.PutPacked(idx, &p, assoc.Value{Server: slot, Gen: gen, Flags: assoc.FlagProven, LastSeen: now})
	e.emit(ChangeUpsert, idx)
}

// unindexTag removes the engine's index entry of tag in ts, when the
// association it names is re-selected.
func (e *Engine) unindexTag(ts *TargetSet, tag uint32) {
	p := tagKey(ts.ID, tag)
	if idx, found := e.shard.FindPacked(&p, p.Hash()); found {
		e.emit(ChangeDelete, idx)
		e.shard.Delete(idx)
		e.deleted = true
	}
}

// taggedServer returns the server the tag index names for SCTP packet f of
// an unknown path, or NoBackend.
func (e *Engine) taggedServer(ts *TargetSet, f *packet.Flow) uint8 {
	if f.Proto != packet.ProtoSCTP || ts.NoTagIndex || !learnableTag(f) {
		return noSlot
	}
	p := tagKey(ts.ID, f.SCTPTag)
	h := p.Hash()
	if idx, found := e.shard.FindPacked(&p, h); found {
		if m := e.shard.Meta(idx); usable(ts, m) {
			e.local.TagIndexHits++
			return m.Server()
		}
		return noSlot
	}
	for _, peer := range e.nat.peers {
		if v, r := peer.LookupPacked(&p, h); r == assoc.Found {
			srv := &ts.Servers[v.Server&(MaxServers-1)]
			if srv.Present && srv.Gen == v.Gen && !srv.Reselect {
				e.local.TagIndexHits++
				return v.Server
			}
			return noSlot
		}
	}
	return noSlot
}

// noSlot is "no server decided".
const noSlot = uint8(MaxServers)

// diameterCommand returns the command code of the first Diameter message
// in frame (flow f): at the start of a TCP segment's payload, or of an SCTP
// DATA chunk with PPID 46.
func diameterCommand(frame []byte, f *packet.Flow) (code uint32, ok bool) {
	end := min(int(f.L3Off)+int(f.Len), len(frame))
	var off int
	switch f.Proto {
	case packet.ProtoTCP:
		l4 := int(f.L4Off)
		if l4+packet.TCPMinHeaderLen > end {
			return 0, false
		}
		off = l4 + int(frame[l4+12]>>4)*4
	case packet.ProtoSCTP:
		c := int(f.L4Off) + packet.SCTPHeaderLen
		if f.SCTPChunk != packet.SCTPChunkData || c+16 > end || binary.BigEndian.Uint32(frame[c+12:c+16]) != diameterPPID {
			return 0, false
		}
		off = c + 16
	default:
		return 0, false
	}
	if off+diameterHeaderLen > end || frame[off] != 1 { // version 1
		return 0, false
	}
	return uint32(frame[off+5])<<16 | uint32(frame[off+6])<<8 | uint32(frame[off+7]), true
}

// diameterApp reports whether frame carries a Diameter message other than
// capabilities exchange and disconnect.
func diameterApp(frame []byte, f *packet.Flow) bool {
	code, ok := diameterCommand(frame, f)
	return ok && code != diameterCER && code != diameterDPR
}
