package assoc

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// benchShard returns a shard of n records (load factor one half) and their
// keys in a random order.
func benchShard(b *testing.B, n int) (*Shard, []Key) {
	s, err := NewShard(n)
	if err != nil {
		b.Fatal(err)
	}
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = testKey(i)
		keys[i].Addr[9] = byte(i >> 24)
		idx, _ := s.Find(&keys[i], keys[i].Hash())
		s.Put(idx, &keys[i], Value{Server: uint8(i & 15), Gen: 1, LastSeen: 1})
	}
	r := rand.New(rand.NewPCG(3, 4))
	r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
	return s, keys
}

// BenchmarkLookup compares the two ways a record is read: the owner's Find
// (plain loads) and Lookup, the bounded seqlock read other workers use for
// records another worker owns, alone and while the owner rewrites the table.
// Each op is one lookup of a random record of 1M, so most are cache misses:
// what a cross-shard lookup costs a worker on a new flow.
func BenchmarkLookup(b *testing.B) {
	const n = 1 << 20
	s, keys := benchShard(b, n)
	b.Run("OwnerFind", func(b *testing.B) {
		i := 0
		for b.Loop() {
			k := &keys[i&(n-1)]
			if _, found := s.Find(k, k.Hash()); !found {
				b.Fatal("lost a record")
			}
			i++
		}
	})
	b.Run("OtherLookup", func(b *testing.B) {
		i := 0
		for b.Loop() {
			k := &keys[i&(n-1)]
			if _, r := s.Lookup(k, k.Hash()); r != Found {
				b.Fatalf("Lookup = %v", r)
			}
			i++
		}
	})
	b.Run("OtherLookupWhileOwnerWrites", func(b *testing.B) {
		var stop atomic.Bool
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // the owner keeps touching and rewriting records
			defer wg.Done()
			for j := 0; !stop.Load(); j++ {
				k := &keys[(j*7919)&(n-1)]
				if idx, found := s.Find(k, k.Hash()); found {
					s.Put(idx, k, Value{Server: uint8(j & 15), Gen: 1, LastSeen: uint32(j)})
				}
			}
		}()
		var busy int
		i := 0
		for b.Loop() {
			k := &keys[i&(n-1)]
			if _, r := s.Lookup(k, k.Hash()); r == Busy {
				busy++
			} else if r != Found {
				b.Fatalf("Lookup = %v", r)
			}
			i++
		}
		stop.Store(true)
		wg.Wait()
		b.ReportMetric(float64(busy)/float64(b.N), "busy/op")
	})
}
