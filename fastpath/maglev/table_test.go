package maglev

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestIsPrime(t *testing.T) {
	var got []int
	for n := -3; n < 60; n++ {
		if IsPrime(n) {
			got = append(got, n)
		}
	}
	want := []int{2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59}
	if !slices.Equal(got, want) {
		t.Errorf("primes below 60 = %v, want %v", got, want)
	}
	for n, want := range map[int]bool{DefaultSize: true, 65535: false, 65539: true, 25: false, 49: false, 65537 * 3: false, 251 * 257: false} {
		if got := IsPrime(n); got != want {
			t.Errorf("IsPrime(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestNewErrors(t *testing.T) {
	dup := []Backend{{Key: "a", Weight: 1}, {Key: "b", Weight: 1}, {Key: "a", Weight: 2}}
	for _, tc := range []struct {
		name string
		bs   []Backend
		size int
		want error
	}{
		{"size not prime", equalBackends(3), 65536, ErrSizeNotPrime},
		{"size 1", equalBackends(3), 1, ErrSizeNotPrime},
		{"size 0", equalBackends(3), 0, ErrSizeNotPrime},
		{"size too large", equalBackends(3), 16777259, ErrSizeTooLarge},
		{"too many backends", equalBackends(MaxBackends + 1), DefaultSize, ErrTooManyBackends},
		{"duplicate key", dup, DefaultSize, ErrDuplicateKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, err := New(tc.bs, tc.size)
			if !errors.Is(err, tc.want) || tab != nil {
				t.Errorf("New = %v, %v; want nil, %v", tab, err, tc.want)
			}
		})
	}
}

func TestMaxBackends(t *testing.T) {
	bs := equalBackends(MaxBackends)
	tab := mustNew(t, bs, DefaultSize)
	for i, c := range tab.Counts() {
		// 65537/255 = 257.0...: each gets 257, two get one more.
		if c != 257 && c != 258 {
			t.Errorf("backend %d owns %d slots, want 257 or 258", i, c)
		}
	}
}

func TestAllWeightsZero(t *testing.T) {
	for _, bs := range [][]Backend{nil, {{Key: "a"}, {Key: "b"}}} {
		tab := mustNew(t, bs, 251)
		for i := range tab.Size() {
			if got := tab.Lookup(uint64(i)); got != NoBackend {
				t.Fatalf("%d backends: Lookup(%d) = %d, want NoBackend", len(bs), i, got)
			}
		}
	}
}

func TestZeroWeightGetsNothing(t *testing.T) {
	bs := []Backend{{Key: "a", Weight: 5}, {Key: "drained", Weight: 0}, {Key: "c", Weight: 5}}
	c := mustNew(t, bs, DefaultSize).Counts()
	if c[1] != 0 || c[0]+c[2] != DefaultSize {
		t.Errorf("Counts() = %v, want [~32768 0 ~32768]", c)
	}
}

// TestWeights checks slot shares and the traffic share actually seen through
// Hash+Lookup against weight shares, for 1:2:3 and random weights.
func TestWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cases := [][]uint32{{1, 2, 3}, {1, 1000000}, {7, 0, 7, 1}}
	for n := 2; n <= 16; n++ {
		w := make([]uint32, n)
		for i := range w {
			w[i] = 1 + r.Uint32N(100)
		}
		cases = append(cases, w)
	}
	for _, w := range cases {
		t.Run(fmt.Sprint(w), func(t *testing.T) { checkWeights(t, r, w) })
	}
}

func checkWeights(t *testing.T, r *rand.Rand, w []uint32) {
	bs := make([]Backend, len(w))
	var sum float64
	for i := range bs {
		bs[i] = Backend{Key: fmt.Sprintf("192.0.2.%d", i), Weight: w[i]}
		sum += float64(w[i])
	}
	tab := mustNew(t, bs, DefaultSize)
	const flows = 1_000_000
	traffic := make([]int, len(bs))
	for range flows {
		b := tab.Lookup(Hash(randAddr(r), uint16(r.Uint32()), 6))
		if b == NoBackend {
			t.Fatal("Lookup = NoBackend with non-zero weights")
		}
		traffic[b]++
	}
	for i, c := range tab.Counts() {
		want := float64(w[i]) / sum
		// Largest remainder makes this exact to one slot.
		if ideal := want * DefaultSize; float64(c) <= ideal-1 || float64(c) >= ideal+1 {
			t.Errorf("backend %d owns %d slots, want %.2f±1", i, c, ideal)
		}
		if got := float64(c) / DefaultSize; abs(got-want) >= 0.01 {
			t.Errorf("backend %d slot share = %.4f, want %.4f", i, got, want)
		}
		if got := float64(traffic[i]) / flows; abs(got-want) >= 0.01 {
			t.Errorf("backend %d traffic share = %.4f, want %.4f", i, got, want)
		}
	}
}

func TestDeterministic(t *testing.T) {
	bs := []Backend{{"10.1.0.1", 3}, {"10.1.0.2", 1}, {"10.1.0.3", 2}, {"[2001:db8::1]", 5}, {"10.1.0.5", 1}}
	a, b := mustNew(t, bs, DefaultSize), mustNew(t, bs, DefaultSize)
	if !slices.Equal(a.entries, b.entries) {
		t.Error("two tables from the same input differ")
	}
	rev := slices.Clone(bs)
	slices.Reverse(rev)
	want := owners(a, bs)
	for _, order := range [][]Backend{rev, {bs[2], bs[4], bs[0], bs[3], bs[1]}} {
		if got := owners(mustNew(t, order, DefaultSize), order); !slices.Equal(got, want) {
			t.Errorf("reordered backends %v map slots to different keys", order)
		}
	}
}

// TestGolden pins the key hash and fill order: a change here would move
// flows on upgrade, which a rolling deploy of an ECMP group must not do.
func TestGolden(t *testing.T) {
	tab := mustNew(t, []Backend{{"10.0.0.1:80", 1}, {"10.0.0.2:80", 2}, {"10.0.0.3:80", 1}}, 13)
	want := []uint8{1, 1, 2, 0, 2, 0, 1, 1, 0, 1, 1, 2, 1} // 3:7:3 slots for 1:2:1
	if !slices.Equal(tab.entries, want) {
		t.Errorf("table = %v, want %v", tab.entries, want)
	}
	if got, want := Hash([16]byte{10: 0xff, 11: 0xff, 12: 192, 15: 1}, 443, 6), uint64(0x6cbf18b973a45d19); got != want {
		t.Errorf("Hash(::ffff:192.0.0.1, 443, 6) = %#x, want %#x", got, want)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
