package maglev

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestHashAllocs(t *testing.T) {
	tab := mustNew(t, equalBackends(16), DefaultSize)
	addr := [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}
	var sink uint8
	allocs := testing.AllocsPerRun(1000, func() {
		addr[15]++
		sink ^= tab.Lookup(Hash(addr, 443, 6))
	})
	if allocs != 0 {
		t.Errorf("Hash+Lookup allocates %v times per run, want 0", allocs)
	}
	_ = sink
}

// TestHashDistribution is a chi-square test of Hash%buckets over inputs that
// stress a weak hash: sequential IPv4-mapped addresses (only the last bytes
// vary), sequential ports from one client, and random flows.
func TestHashDistribution(t *testing.T) {
	const buckets, perBucket = 1021, 200 // prime bucket count, like a table
	r := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		name string
		flow func(i int) ([16]byte, uint16, uint8)
	}{
		{"sequential IPv4", func(i int) ([16]byte, uint16, uint8) {
			return [16]byte{10: 0xff, 11: 0xff, 12: 10, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}, 80, 6
		}},
		{"sequential ports", func(i int) ([16]byte, uint16, uint8) {
			return [16]byte{10: 0xff, 11: 0xff, 12: 198, 13: 51, 14: 100, 15: byte(i >> 16)}, uint16(i), 17
		}},
		{"sequential IPv6", func(i int) ([16]byte, uint16, uint8) {
			return [16]byte{0x20, 0x01, 0x0d, 0xb8, 13: byte(i >> 16), 14: byte(i >> 8), 15: byte(i)}, 443, 6
		}},
		{"random", func(int) ([16]byte, uint16, uint8) {
			return randAddr(r), uint16(r.Uint32()), uint8(r.Uint32())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var count [buckets]int
			for i := range buckets * perBucket {
				count[Hash(tc.flow(i))%buckets]++
			}
			var chi2 float64
			for _, c := range count {
				d := float64(c - perBucket)
				chi2 += d * d / perBucket
			}
			// chi2 with k-1 = 1020 degrees of freedom has mean 1020 and
			// sd sqrt(2*1020) ≈ 45; 6 sd either way is not chance.
			if dof := float64(buckets - 1); math.Abs(chi2-dof) > 6*math.Sqrt(2*dof) {
				t.Errorf("chi-square = %.0f, want %.0f±%.0f", chi2, dof, 6*math.Sqrt(2*dof))
			}
		})
	}
}

// TestHashAvalanche flips each of the 152 input bits and checks every output
// bit flips with probability close to 1/2, as the fast path relies on: the
// table only keeps the low ~16 bits (hash % size).
func TestHashAvalanche(t *testing.T) {
	const trials = 4000
	r := rand.New(rand.NewPCG(5, 6))
	var flips [152][64]int
	for range trials {
		a, p, q := randAddr(r), uint16(r.Uint32()), uint8(r.Uint32())
		h := Hash(a, p, q)
		for bit := range 152 {
			a2, p2, q2 := a, p, q
			switch {
			case bit < 128:
				a2[bit/8] ^= 1 << (bit % 8)
			case bit < 144:
				p2 ^= 1 << (bit - 128)
			default:
				q2 ^= 1 << (bit - 144)
			}
			d := h ^ Hash(a2, p2, q2)
			for o := range 64 {
				flips[bit][o] += int(d >> o & 1)
			}
		}
	}
	// sd of the rate is 1/sqrt(4*trials) ≈ 0.008; 0.05 is 6 sd.
	worst := 0.0
	for bit := range flips {
		for o, f := range flips[bit] {
			bias := math.Abs(float64(f)/trials - 0.5)
			worst = max(worst, bias)
			if bias > 0.05 {
				t.Errorf("input bit %d flips output bit %d with rate %.3f, want 0.5±0.05", bit, o, float64(f)/trials)
			}
		}
	}
	t.Logf("worst avalanche bias %.4f", worst)
}

// TestSeedKeysTheChoice: flows an attacker picked because the unkeyed hash
// sends them all to one backend spread over the backends under a keyed
// seed, and equal seeds (mated instances) choose alike.
func TestSeedKeysTheChoice(t *testing.T) {
	tab, err := New([]Backend{{Key: "a", Weight: 1}, {Key: "b", Weight: 1}, {Key: "c", Weight: 1}, {Key: "d", Weight: 1}}, DefaultSize)
	if err != nil {
		t.Fatal(err)
	}
	var picked [][16]byte
	for i := 0; len(picked) < 200; i++ {
		a := [16]byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: byte(i >> 8), 15: byte(i)}
		if tab.Lookup(Hash(a, 4000, 6)) == 0 {
			picked = append(picked, a)
		}
	}
	seed := NewSeed(0x5eed)
	var per [4]int
	for _, a := range picked {
		per[tab.Lookup(seed.Hash(a, 4000, 6))]++
		if got, again := seed.Hash(a, 4000, 6), NewSeed(0x5eed).Hash(a, 4000, 6); got != again {
			t.Fatalf("equal seeds hash %x apart: %x, %x", a, got, again)
		}
	}
	for b, n := range per {
		if n < len(picked)/8 {
			t.Errorf("keyed seed: backend %d got %d of %d flows the unkeyed hash sent to backend 0, want about a quarter (%v)",
				b, n, len(picked), per)
		}
	}
	if NewSeed(1) == NewSeed(2) || NewSeed(1) == Unkeyed {
		t.Errorf("distinct seed values give equal seeds")
	}
}
