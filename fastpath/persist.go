package fastpath

// Persistence and port ownership: the two ways a high-speed file transfer's
// TCP control session and its UDP data flows (other source ports, sometimes
// other VIP ports or VIPs) all reach the server that holds the session.
//
// # Port ownership
//
// TargetSet.Owned maps destination port ranges to server slots. A packet to
// an owned port goes to the owner whatever the client, before persistence
// and the set's method, as long as the owner can take it; otherwise the
// flow is balanced as if the port were not owned.
//
// # Persistence records
//
// A set with Persist belongs to persistence group Persist.Group (a group of
// its own, or a [[persistence_group]] shared by several sets). The first
// flow of a client (its address masked to the group's prefix) chooses a
// server by the set's method and records it as an assoc.KindPersist record:
// key (masked address, group), value aux = the server's AddrID. Every later
// flow of that client to any set of the group goes to the member's server
// with that AddrID while the record lives.
//
// Records live in ordinary shards and, like everything in a shard, are
// written only by its owner. One client's flows hash to different queues,
// so a worker that finds no record of its own reads the other workers'
// shards (bounded, lock-free Lookup) and copies the record it finds into its
// own shard: from then on it refreshes its own copy with its own traffic. A
// client is pinned while any worker's copy lives; each copy expires after
// Persist.Timeout without a packet of the client on that worker. Two first
// flows of one client arriving on two queues at the same instant choose
// independently: with the hash method over the masked client address they
// choose alike; with a load method they may differ, and each worker then
// keeps its own choice until its copy expires.
//
// A record is refreshed whenever a member flow's association is touched
// (at most once a second per flow, when its last-seen second changes), so
// the record outlives a quiet control connection while its data flows. A
// flow association that expired while its client's record lived finds the
// record again on its next packet and returns to the same server: this is
// what keeps a control session alive through a long UDP transfer.

// Persistence is a target set's membership in a persistence group.
type Persistence struct {
	// Group numbers the group's records (the Set field of their keys):
	// stable across reloads like set ids, at most assoc.MaxSetID.
	Group uint16
	// Timeout is how long, in seconds, a client's record lives after its
	// last packet in any member flow.
	Timeout uint32
	// V4Bits and V6Bits are the prefix lengths that group clients: 32 and
	// 128 keep every address apart, 24 or 64 put a NAT pool or a /64 on
	// one server.
	V4Bits, V6Bits uint8
}

// OwnedRange is a destination port range that belongs to the server in Slot.
type OwnedRange struct {
	First, Last uint16
	Slot        uint8
}

// SetPersistLimit bounds the persistence records the engine keeps in its
// shard; beyond it a client's flow is balanced by its set's method and
// counted (PersistFull). Call before the engine processes frames.
func (e *Engine) SetPersistLimit(n int) { e.persist.limit = n }

// persistState is an engine's persistence bookkeeping.
type persistState struct {
	limit int // records this shard may hold
	live  int // records it holds
}
