package maglev

import (
	"fmt"
	"math/bits"
	"slices"
	"strings"
)

// keyOrder returns backend indices sorted by key. Filling in key order rather
// than slice order is what makes the table independent of how the caller
// happened to order its backends.
func keyOrder(backends []Backend) ([]int, error) {
	order := make([]int, len(backends))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return strings.Compare(backends[a].Key, backends[b].Key)
	})
	for i := 1; i < len(order); i++ {
		if k := backends[order[i]].Key; k == backends[order[i-1]].Key {
			return nil, fmt.Errorf("maglev: key %q: %w", k, ErrDuplicateKey)
		}
	}
	return order, nil
}

// targets returns, for each backend in fill order, its slot quota:
// size*w/sum rounded by largest remainder so the quotas sum to size exactly.
// Remainder ties go to the earlier backend in fill order, which for equal
// weights makes the result identical to unweighted Maglev (the first
// size%n backends get the extra slot there too).
func targets(backends []Backend, order []int, size int) []int {
	var sum uint64
	for _, b := range backends {
		sum += uint64(b.Weight)
	}
	tg := make([]int, len(order))
	if sum == 0 {
		return tg
	}
	rem := make([]uint64, len(order))
	left := size
	for p, i := range order {
		// 128-bit product: size*weight can overflow 64 bits for large weights.
		hi, lo := bits.Mul64(uint64(size), uint64(backends[i].Weight))
		q, r := bits.Div64(hi, lo, sum)
		tg[p], rem[p] = int(q), r
		left -= int(q)
	}
	// left < len(order), and only backends with a non-zero remainder (hence
	// non-zero weight) can be picked: the remainders sum to left*sum.
	byRem := make([]int, len(order))
	for p := range byRem {
		byRem[p] = p
	}
	slices.SortStableFunc(byRem, func(a, b int) int {
		switch {
		case rem[a] > rem[b]:
			return -1
		case rem[a] < rem[b]:
			return 1
		}
		return 0
	})
	for _, p := range byRem[:left] {
		tg[p]++
	}
	return tg
}

// fill runs the Maglev population loop: backends take turns, in key order,
// claiming the next free slot of their own permutation, and a backend that
// has reached its quota drops out. Each backend's cursor only moves forward
// through its permutation, so the total work is bounded by size*len(backends)
// probes; measured at size 65537 it is 2-7x size for 3-16 backends and 10x
// for 255, about 1 ms for 16.
func fill(entries []uint8, backends []Backend, order []int) {
	for i := range entries {
		entries[i] = NoBackend
	}
	size := uint64(len(entries))
	tg := targets(backends, order, len(entries))
	cur := make([]uint64, len(order))  // next permutation position to try
	skip := make([]uint64, len(order)) // permutation stride, coprime with size
	got := make([]int, len(order))
	active := make([]int, 0, len(order))
	for p, i := range order {
		k := backends[i].Key
		cur[p] = keyHash(k, seedOffset) % size
		skip[p] = keyHash(k, seedSkip)%(size-1) + 1
		if tg[p] > 0 {
			active = append(active, p)
		}
	}
	for len(active) > 0 {
		n := 0
		for _, p := range active {
			c := cur[p]
			for entries[c] != NoBackend {
				if c += skip[p]; c >= size {
					c -= size
				}
			}
			entries[c] = uint8(order[p])
			if c += skip[p]; c >= size {
				c -= size
			}
			cur[p] = c
			if got[p]++; got[p] < tg[p] {
				active[n] = p
				n++
			}
		}
		active = active[:n]
	}
}
