package maglev

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// equalBackends returns n weight-1 backends keyed like real addresses.
func equalBackends(n int) []Backend {
	bs := make([]Backend, n)
	for i := range bs {
		bs[i] = Backend{Key: fmt.Sprintf("10.0.0.%d:80", i+1), Weight: 1}
	}
	return bs
}

// mustNew is New for inputs the test knows to be valid.
func mustNew(tb testing.TB, bs []Backend, size int) *Table {
	tb.Helper()
	t, err := New(bs, size)
	if err != nil {
		tb.Fatalf("New(%d backends, %d) error: %v", len(bs), size, err)
	}
	return t
}

// owners maps every slot to its owner's key ("" for NoBackend), so tables
// built from differently ordered or different backend lists can be compared.
func owners(t *Table, bs []Backend) []string {
	out := make([]string, t.Size())
	for i, e := range t.entries {
		if e != NoBackend {
			out[i] = bs[e].Key
		}
	}
	return out
}

// randAddr returns a random IPv6 address, or an IPv4-mapped one half the
// time, since most real traffic is IPv4 and mapped addresses are mostly
// constant bytes, the hard case for a hash.
func randAddr(r *rand.Rand) [16]byte {
	var a [16]byte
	if r.IntN(2) == 0 {
		a[10], a[11] = 0xff, 0xff
		v := r.Uint32()
		a[12], a[13], a[14], a[15] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
		return a
	}
	for i := range a {
		a[i] = byte(r.Uint32())
	}
	return a
}
