package maglev

import (
	"math/rand/v2"
	"testing"
)

func BenchmarkNew(b *testing.B) {
	bs := equalBackends(16)
	for i := range bs {
		bs[i].Weight = uint32(i + 1) // unequal, so quotas end at different times
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(bs, DefaultSize); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLookup(b *testing.B) {
	tab := mustNew(b, equalBackends(16), DefaultSize)
	// Precomputed hashes so the benchmark measures the lookup, not an RNG.
	r := rand.New(rand.NewPCG(7, 8))
	hashes := make([]uint64, 4096)
	for i := range hashes {
		hashes[i] = r.Uint64()
	}
	var sink uint8
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		sink ^= tab.Lookup(hashes[i&(len(hashes)-1)])
		i++
	}
	_ = sink
}

// flows returns n random flows; benchmarks read them from memory as the
// fast path reads packets, rather than mutating one array in place, which
// would measure a store-forwarding stall instead of the hash.
func flows(n int) (addrs [][16]byte, ports []uint16) {
	r := rand.New(rand.NewPCG(9, 10))
	addrs, ports = make([][16]byte, n), make([]uint16, n)
	for i := range n {
		addrs[i], ports[i] = randAddr(r), uint16(r.Uint32())
	}
	return addrs, ports
}

func BenchmarkHash(b *testing.B) {
	addrs, ports := flows(1024)
	var sink uint64
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		j := i & (len(addrs) - 1)
		sink ^= Hash(addrs[j], ports[j], 6)
		i++
	}
	_ = sink
}

// BenchmarkHashLookup is the per-packet cost the fast path pays.
func BenchmarkHashLookup(b *testing.B) {
	tab := mustNew(b, equalBackends(16), DefaultSize)
	addrs, ports := flows(1024)
	var sink uint8
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		j := i & (len(addrs) - 1)
		sink ^= tab.Lookup(Hash(addrs[j], ports[j], 6))
		i++
	}
	_ = sink
}
