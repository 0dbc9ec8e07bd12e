package config

import (
	"fmt"
	"time"
)

// syn_age: how long an association that has not proven a handshake is kept.
// Any packet to a VIP port creates an association; with the full delete_age
// a trickle of spoofed SYNs (about 1,700 a second for 1M associations and
// 10 minutes) keeps the table full for good. An unproven association gets
// syn_age instead; the client's ACK after its SYN proves it.

// DefaultSynAge is syn_age when the file leaves it out, like IPVS's
// SYN_RECV timeout. A set whose delete_age is shorter than twice this gets
// half its delete_age instead, so that leaving the key out never makes a set
// invalid.
const DefaultSynAge = 60 * time.Second

// minSynAge is the shortest syn_age: the fast path counts ages in seconds.
const minSynAge = time.Second

// decodeSynAge reads syn_age of a set whose delete_age is deleteAge.
func decodeSynAge(t table, deleteAge time.Duration) time.Duration {
	return t.duration("syn_age", defaultSynAge(deleteAge))
}

// defaultSynAge is DefaultSynAge, or half of deleteAge in whole seconds
// when that is shorter, but at least 1s.
func defaultSynAge(deleteAge time.Duration) time.Duration {
	half := (deleteAge / 2).Truncate(time.Second)
	return max(min(DefaultSynAge, half), minSynAge)
}

// EffectiveSynAge is the syn_age the data plane uses: SynAge, or for a
// Spec built in code that left it 0, the default for the set's DeleteAge.
func (ts *TargetSet) EffectiveSynAge() time.Duration {
	if ts.SynAge == 0 {
		return defaultSynAge(ts.DeleteAge)
	}
	return ts.SynAge
}

// validateSynAge checks syn_age against delete_age. 0, which Parse never
// leaves, is the default in a Spec built in code.
func (ts *TargetSet) validateSynAge(r *reporter, path string) {
	const hint = "an unproven association is forgotten after syn_age, a proven one after delete_age; the default is 60s or half of delete_age"
	switch {
	case ts.SynAge == 0:
	case ts.SynAge < minSynAge:
		r.errorf(path+".syn_age", hint, "syn_age %s is shorter than 1s", ts.SynAge)
	case r.muted(path + ".delete_age"):
	case ts.SynAge >= ts.DeleteAge && !(ts.SynAge == minSynAge && ts.DeleteAge < 2*minSynAge):
		// A delete_age under 2s leaves no shorter whole second: 1s it is.
		r.errorf(path+".syn_age", fmt.Sprintf("%s; make it shorter than %s", hint, ts.DeleteAge),
			"syn_age %s is not shorter than delete_age %s", ts.SynAge, ts.DeleteAge)
	}
}
