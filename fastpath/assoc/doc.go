// Package assoc owns the association table: the record of which server a
// client flow (client address + client port + protocol, per target set) was
// given, so that every later packet of that flow reaches the same server.
//
// The table is split into shards, one per worker. A shard is written only by
// the worker that owns it and may be read by any goroutine without locks: the
// slow path lists associations, and later other workers will look up flows
// that arrive on a different queue than their first packet. Entries never
// move once written (open addressing with tombstones, no rehashing), so a
// reader that follows a probe chain sees every entry that was present for the
// whole of its read. Each entry carries a sequence number (a seqlock) so a
// reader can tell a torn read from a consistent one.
//
// Memory is fixed at construction: a shard for a limit of N live
// associations has 2N slots of 32 bytes, 64 bytes per association, and the
// load factor never exceeds one half, which keeps linear probe chains short.
// When a shard is full a new flow is not recorded; the caller falls back to
// stateless hashing and counts it. Live associations are never evicted to
// make room: they leave only by going stale (see Shard.Sweep).
package assoc
