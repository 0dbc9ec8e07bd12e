package config

import "fmt"

// Limits of the data plane that a configuration must fit. They are the fast
// path's own (fastpath.MaxSets, fastpath.MaxPeerGroups,
// fastpath.MaxInterfaces, the association shard's largest table); this
// package does not import the fast path, so a test in slowpath keeps the two
// in step. A configuration beyond them used to pass `ipfront check` and fail
// when the daemon built its tables; Parse now refuses it with its position.
const (
	MaxTargetSets = 256 // target sets per daemon
	MaxPeerGroups = 64  // peer groups per target set
	MaxInterfaces = 8   // interfaces one daemon forwards on
	// MaxWorkerRecords is the most records (associations plus persistence
	// records) one worker's table holds.
	MaxWorkerRecords = 1 << 30
	// RecordBytes is the memory one record of max_associations or
	// max_persistence_records costs: the shards keep two 32-byte slots per
	// record so that probes stay short when the table is full.
	RecordBytes = 64
)

// maxRecords bounds max_associations and max_persistence_records before
// anything is known about the machine: 2^40 records would take 64 TiB. It
// keeps every size computed from them far from overflowing.
const maxRecords = 1 << 40

// validateLimits checks the counts the data plane has fixed room for. Each
// error is placed at the first element beyond the limit, so the position
// points at what to remove.
func validateLimits(r *reporter, s *Spec) {
	if n := len(s.Dataplane.Interfaces); n > MaxInterfaces {
		r.errorf(elem("dataplane.interfaces", MaxInterfaces), fmt.Sprintf("one daemon forwards on at most %d interfaces", MaxInterfaces),
			"%d interfaces, more than %d", n, MaxInterfaces)
	}
	if n := len(s.TargetSets); n > MaxTargetSets {
		r.errorf(elem("target_set", MaxTargetSets), fmt.Sprintf("one daemon serves at most %d target sets; merge sets that share servers (a set takes several ports and protocols) or run a second instance", MaxTargetSets),
			"%d target sets, more than %d", n, MaxTargetSets)
	}
	for i := range s.TargetSets {
		if n := len(s.TargetSets[i].PeerGroups); n > MaxPeerGroups {
			r.errorf(elem(elem("target_set", i)+".peer_group", MaxPeerGroups),
				fmt.Sprintf("a target set has at most %d peer groups; a group takes several prefixes", MaxPeerGroups),
				"%d peer groups, more than %d", n, MaxPeerGroups)
		}
	}
	d := &s.Dataplane
	for _, k := range []struct {
		key string
		n   int
	}{{"max_associations", d.MaxAssociations}, {"max_persistence_records", d.MaxPersistenceRecords}} {
		if k.n > maxRecords {
			r.errorf("dataplane."+k.key, "the tables take 64 bytes per record; size them for the flows you expect",
				"%s %d is more than any machine's memory holds (%d bytes a record)", k.key, k.n, RecordBytes)
		}
	}
	// With the queues listed, the workers are known: each must fit its
	// share in one table. With queues = "all", CheckHost counts them.
	if d.Queues != nil && len(d.Interfaces) > 0 && !r.muted("dataplane.max_associations") && !r.muted("dataplane.max_persistence_records") {
		workers := len(d.Interfaces) * len(d.Queues)
		if workers > 0 {
			if per := d.WorkerRecords(workers); per > MaxWorkerRecords {
				r.errorf("dataplane.max_associations", "add queues, or lower max_associations / max_persistence_records",
					"%d records per worker (%d workers) is more than one worker's table holds (%d)", per, workers, MaxWorkerRecords)
			}
		}
	}
}

// WorkerRecords is the number of records (associations and persistence
// records) each of workers workers' tables is sized for: both limits are
// divided over the workers, rounding up, as the data plane divides them.
func (d *Dataplane) WorkerRecords(workers int) int {
	if workers < 1 {
		workers = 1
	}
	return (d.MaxAssociations+workers-1)/workers + (d.MaxPersistenceRecords+workers-1)/workers
}
