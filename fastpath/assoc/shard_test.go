package assoc

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

func testKey(i int) Key {
	var k Key
	k.Addr[10], k.Addr[11] = 0xff, 0xff
	k.Addr[12], k.Addr[13], k.Addr[14], k.Addr[15] = 198, 51, byte(i>>16), byte(i>>8)
	k.Port = uint16(i)
	k.Proto = 6
	k.Set = 1
	return k
}

func insert(t testing.TB, s *Shard, k Key, v Value) int {
	t.Helper()
	idx, found := s.Find(&k, k.Hash())
	if found || idx < 0 {
		t.Fatalf("Find(%v) = %d, %v; want a free slot", k, idx, found)
	}
	s.Put(idx, &k, v)
	return idx
}

func TestFindPutGet(t *testing.T) {
	s, err := NewShard(1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		insert(t, s, testKey(i), Value{Server: uint8(i % 16), Gen: uint16(i), Tag: uint32(i * 7), LastSeen: 5})
	}
	if s.Live() != 1000 {
		t.Fatalf("Live() = %d, want 1000", s.Live())
	}
	for i := 0; i < 1000; i++ {
		k := testKey(i)
		idx, found := s.Find(&k, k.Hash())
		if !found {
			t.Fatalf("Find(key %d) not found", i)
		}
		want := Value{Server: uint8(i % 16), Gen: uint16(i), Tag: uint32(i * 7), LastSeen: 5}
		if got := s.Value(idx); got != want {
			t.Fatalf("Value(key %d) = %+v, want %+v", i, got, want)
		}
		if got, ok := s.Get(&k); !ok || got != want {
			t.Fatalf("Get(key %d) = %+v, %v, want %+v", i, got, ok, want)
		}
	}
	// The same address and port under another protocol or set is another flow.
	k := testKey(3)
	k.Proto = 17
	if _, found := s.Find(&k, k.Hash()); found {
		t.Fatal("UDP flow matched a TCP association")
	}
	k = testKey(3)
	k.Set = 2
	if _, ok := s.Get(&k); ok {
		t.Fatal("flow of set 2 matched an association of set 1")
	}
}

func TestFullShardRefusesWithoutEvicting(t *testing.T) {
	s, _ := NewShard(64)
	for i := 0; i < 64; i++ {
		insert(t, s, testKey(i), Value{Server: 1, LastSeen: 1})
	}
	k := testKey(1000)
	if idx, found := s.Find(&k, k.Hash()); found || idx != -1 {
		t.Fatalf("Find on a full shard = %d, %v; want -1, false", idx, found)
	}
	for i := 0; i < 64; i++ {
		if k := testKey(i); !mustFind(s, k) {
			t.Fatalf("live association %d lost when the shard filled", i)
		}
	}
}

func mustFind(s *Shard, k Key) bool {
	_, found := s.Find(&k, k.Hash())
	return found
}

func TestSweepExpiresIdleOnly(t *testing.T) {
	s, _ := NewShard(256)
	ages := []uint32{0, 10} // set 1: delete age 10 s
	for i := 0; i < 100; i++ {
		insert(t, s, testKey(i), Value{LastSeen: 100})
	}
	// Half the flows keep talking.
	for i := 0; i < 50; i++ {
		k := testKey(i)
		idx, _ := s.Find(&k, k.Hash())
		s.Touch(idx, 108)
	}
	if got := s.Sweep(len(s.slots), 111, ages, nil); got != 50 {
		t.Fatalf("Sweep after 11 idle seconds expired %d, want the 50 idle flows", got)
	}
	if s.Live() != 50 {
		t.Fatalf("Live() = %d after sweep, want 50", s.Live())
	}
	for i := 0; i < 100; i++ {
		if got, want := mustFind(s, testKey(i)), i < 50; got != want {
			t.Fatalf("flow %d present = %v, want %v", i, got, want)
		}
	}
	// An association whose target set is gone expires at once.
	if got := s.Sweep(len(s.slots), 110, ages[:1], nil); got != 50 {
		t.Fatalf("Sweep after set removal expired %d, want 50", got)
	}
	// Freed slots take new associations again: the shard is back to empty.
	for i := 0; i < 256; i++ {
		insert(t, s, testKey(1000+i), Value{LastSeen: 111})
	}
}

func TestTombstonesKeepChainsIntact(t *testing.T) {
	// A small shard forces collisions; expiring random entries must never hide
	// the others.
	r := rand.New(rand.NewPCG(1, 2))
	s, _ := NewShard(512)
	ages := []uint32{0, 5}
	live := map[int]bool{}
	for round := 0; round < 50; round++ {
		for i := 0; i < 200; i++ {
			id := r.IntN(4000)
			k := testKey(id)
			idx, found := s.Find(&k, k.Hash())
			now := uint32(round * 3)
			if found {
				s.Touch(idx, now)
				continue
			}
			if idx >= 0 {
				s.Put(idx, &k, Value{LastSeen: now})
				live[id] = true
			}
		}
		s.Sweep(len(s.slots), uint32(round*3), ages, nil)
		n := 0
		for id := range live {
			k := testKey(id)
			if v, ok := s.Get(&k); ok {
				n++
				if Age(uint32(round*3), v.LastSeen) > 5 {
					t.Fatalf("stale association %d survived a full sweep", id)
				}
			} else {
				delete(live, id)
			}
		}
		if n != s.Live() {
			t.Fatalf("round %d: %d reachable associations, Live() = %d", round, n, s.Live())
		}
	}
}

func TestConcurrentReadersSeeConsistentEntries(t *testing.T) {
	// The owner keeps re-selecting servers while readers look entries up; a
	// reader must never see a value that was never written (server and tag are
	// written together, so they must agree).
	s, _ := NewShard(1024)
	for i := 0; i < 1024; i++ {
		insert(t, s, testKey(i), Value{Server: 0, Tag: 0})
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var reads atomic.Int64
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				for i := 0; i < 1024; i += 7 {
					k := testKey(i)
					v, ok := s.Get(&k)
					if !ok {
						t.Errorf("reader lost association %d", i)
						return
					}
					if v.Tag != uint32(v.Server)*1000 {
						t.Errorf("torn read: server %d with tag %d", v.Server, v.Tag)
						return
					}
					reads.Add(1)
				}
			}
		}()
	}
	for round := 0; round < 200 || reads.Load() < 1000; round++ {
		for i := 0; i < 1024; i++ {
			k := testKey(i)
			idx, found := s.Find(&k, k.Hash())
			if !found {
				t.Fatalf("owner lost association %d", i)
			}
			srv := uint8(round % 16)
			s.Put(idx, &k, Value{Server: srv, Tag: uint32(srv) * 1000})
		}
	}
	stop.Store(true)
	wg.Wait()
}

func TestRangeListsEveryLiveAssociation(t *testing.T) {
	s, _ := NewShard(100)
	for i := 0; i < 100; i++ {
		k := testKey(i)
		k.Proto = [3]uint8{6, 17, 132}[i%3]
		insert(t, s, k, Value{Server: uint8(i % 16)})
	}
	seen := map[Key]Value{}
	s.Range(func(k Key, v Value) bool { seen[k] = v; return true })
	if len(seen) != 100 {
		t.Fatalf("Range listed %d associations, want 100", len(seen))
	}
	for i := 0; i < 100; i++ {
		k := testKey(i)
		k.Proto = [3]uint8{6, 17, 132}[i%3]
		if v, ok := seen[k]; !ok || v.Server != uint8(i%16) {
			t.Fatalf("Range: key %d = %+v, %v", i, v, ok)
		}
	}
}

func TestMemoryPerAssociation(t *testing.T) {
	s, _ := NewShard(1 << 20)
	if per := s.Bytes() / s.Limit(); per > 64 {
		t.Fatalf("shard costs %d bytes per association, budget is 64", per)
	}
}

func TestHotPathDoesNotAllocate(t *testing.T) {
	s, _ := NewShard(4096)
	keys := make([]Key, 1000)
	for i := range keys {
		keys[i] = testKey(i)
	}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		k := &keys[i%len(keys)]
		i++
		h := k.Hash()
		idx, found := s.Find(k, h)
		if !found && idx >= 0 {
			s.Put(idx, k, Value{Server: 1})
		} else if found {
			s.Touch(idx, uint32(i))
		}
		s.Sweep(8, uint32(i), []uint32{0, 100}, nil)
	})
	if allocs != 0 {
		t.Fatalf("Find/Put/Touch/Sweep allocate %v times per run, want 0", allocs)
	}
}
