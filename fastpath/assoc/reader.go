package assoc

import (
	"runtime"
	"sync/atomic"
)

// LookupResult is the outcome of a read by a goroutine other than the owner.
type LookupResult uint8

// Lookup outcomes.
const (
	Absent LookupResult = iota // no live record for the key
	Found                      // the value is a consistent snapshot
	// Busy: the owner rewrote a slot on the key's chain during every one of
	// readTries attempts. The reader does not wait for it; callers treat the
	// key as unknown for this packet and count it.
	Busy
)

// readTries bounds the attempts of a reader at one slot. The owner's write of
// a slot is four stores; a reader that sees it in progress this many times in
// a row is racing a slot rewritten continuously, or an owner descheduled
// mid-write, and gives up rather than wait.
const readTries = 8

// rangeTries is the same bound for Range, which runs on the slow path and may
// yield between attempts.
const rangeTries = 64

// testHookMidRead, when set by a test, runs between a reader's first loads
// of slot i (meta word and first address word) and the rest: the window in
// which a writer can tear a read. Production code never sets it.
var testHookMidRead func(i int)

// testHookMidWrite, when set by a test, runs inside Put after the first key
// word is stored and before the others: a reader running then must see the
// write in progress. Production code never sets it.
var testHookMidWrite func()

// read takes a consistent snapshot of slot i with the seqlock protocol,
// trying at most tries times; ok is false if every try saw a write in
// progress or a write completing in between.
func (s *Shard) read(i int, tries int, yield bool) (w0, w1, w2 uint64, meta Meta, ok bool) {
	sl := &s.slots[i]
	for try := 0; try < tries; try++ {
		m1 := atomic.LoadUint64(&sl.w[3])
		if Meta(m1).seq()&1 == 1 {
			if yield {
				runtime.Gosched()
			}
			continue
		}
		w0 = atomic.LoadUint64(&sl.w[0])
		if testHookMidRead != nil {
			testHookMidRead(i)
		}
		w1 = atomic.LoadUint64(&sl.w[1])
		w2 = atomic.LoadUint64(&sl.w[2])
		m2 := atomic.LoadUint64(&sl.w[3])
		// Touch and Mark change meta without the sequence: the key words
		// cannot have changed then, and m2 is the newer meta for them.
		if Meta(m1).seq() == Meta(m2).seq() {
			return w0, w1, w2, Meta(m2), true
		}
	}
	return 0, 0, 0, 0, false
}

// Lookup reads k's record from any goroutine without locks and without
// waiting on the owner beyond a bounded number of attempts. h is k.Hash().
// Workers use it to find records another worker owns.
func (s *Shard) Lookup(k *Key, h uint64) (Value, LookupResult) {
	p := k.Pack()
	return s.LookupPacked(&p, h)
}

// LookupPacked is Lookup of a packed key.
func (s *Shard) LookupPacked(p *Packed, h uint64) (Value, LookupResult) {
	a, b, c := p.a, p.b, p.c
	n := len(s.slots)
	i := s.home(h)
	for p := 0; p < MaxProbe; p++ {
		w0, w1, w2, meta, ok := s.read(i, readTries, false)
		if !ok {
			return Value{}, Busy
		}
		switch meta.state() {
		case stateEmpty:
			return Value{}, Absent
		case stateLive:
			if w0 == a && w1 == b && w2&keyMaskW2 == c {
				return decode(w2, meta), Found
			}
		}
		if i++; i == n {
			i = 0
		}
	}
	return Value{}, Absent
}

// Get is Lookup for callers that only care whether a consistent record was
// found.
func (s *Shard) Get(k *Key) (Value, bool) {
	v, r := s.Lookup(k, k.Hash())
	return v, r == Found
}

// Range calls fn for every live record until fn returns false. Safe from
// any goroutine; records created or removed during the walk may or may not be
// seen, and a slot rewritten throughout its bounded read is skipped.
func (s *Shard) Range(fn func(Key, Value) bool) {
	for i := range s.slots {
		w0, w1, w2, meta, ok := s.read(i, rangeTries, true)
		if !ok || meta.state() != stateLive {
			continue
		}
		if !fn(decodeKey(w0, w1, w2), decode(w2, meta)) {
			return
		}
	}
}
