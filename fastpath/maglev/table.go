package maglev

import (
	"errors"
	"fmt"
)

// NoBackend is the table entry for "no backend can take this flow"; it is
// what every slot holds when all weights are 0. It is also why at most
// MaxBackends = 255 backends fit in a uint8 index.
const NoBackend = 0xFF

// DefaultSize is the table size used by Katran and GLB: prime, and large
// enough (~4000 slots per backend at 16 backends) that weight shares are
// accurate to 1/65537 and removing a backend moves few extra flows.
const DefaultSize = 65537

// MaxBackends is the most backends a Table can index; index 0xFF is
// reserved for NoBackend.
const MaxBackends = 255

// MaxSize bounds the table size. Larger tables buy no useful precision, cost
// cache on the hot path, and would make IsPrime's trial division slow.
const MaxSize = 1 << 24

// Errors returned by New, wrapped with the offending value.
var (
	ErrSizeNotPrime    = errors.New("table size is not a prime")
	ErrSizeTooLarge    = errors.New("table size exceeds MaxSize")
	ErrTooManyBackends = errors.New("more than MaxBackends backends")
	ErrDuplicateKey    = errors.New("duplicate backend key")
)

// Backend identifies a server by a stable key and its weight. The key is
// usually the server's address string: the permutation is derived from the
// key alone, so a backend keeps its slots when others are added, removed or
// reordered. A backend with Weight 0 gets no slots (drained).
type Backend struct {
	Key    string
	Weight uint32
}

// Table is an immutable Maglev lookup table: entry i holds the index, in the
// slice passed to New, of the backend that owns slot i, or NoBackend when all
// weights are 0. A Table is never modified after New returns, so any number
// of goroutines may call Lookup concurrently; to reprogram, build a new Table
// and swap the pointer. The zero Table is not usable.
type Table struct {
	entries []uint8
	nb      int // len(backends) given to New, for Counts
}

// New builds a table of the given size, which must be prime (DefaultSize
// unless there is a reason otherwise) and at most MaxSize. It returns an
// error for more than MaxBackends backends or duplicate keys. Each backend
// owns size*weight/sum slots rounded up or down (largest remainder), so the
// counts sum to size and each share is within 1/size of its weight share.
func New(backends []Backend, size int) (*Table, error) {
	// Bound first: IsPrime's trial division is slow on huge numbers.
	if size > MaxSize {
		return nil, fmt.Errorf("maglev: size %d: %w", size, ErrSizeTooLarge)
	}
	if !IsPrime(size) {
		return nil, fmt.Errorf("maglev: size %d: %w", size, ErrSizeNotPrime)
	}
	if len(backends) > MaxBackends {
		return nil, fmt.Errorf("maglev: %d backends: %w", len(backends), ErrTooManyBackends)
	}
	order, err := keyOrder(backends)
	if err != nil {
		return nil, err
	}
	t := &Table{entries: make([]uint8, size), nb: len(backends)}
	fill(t.entries, backends, order)
	return t, nil
}

// Lookup returns the backend index for a flow hash (see Hash), or NoBackend.
// It is the per-packet call: one modulo and one load, inlined by the compiler.
func (t *Table) Lookup(hash uint64) uint8 {
	return t.entries[hash%uint64(len(t.entries))]
}

// Size returns the number of slots.
func (t *Table) Size() int { return len(t.entries) }

// Counts returns how many slots each backend owns, indexed like the slice
// passed to New. It scans the whole table: for tests and the slow path.
func (t *Table) Counts() []int {
	c := make([]int, t.nb)
	for _, e := range t.entries {
		if e != NoBackend {
			c[e]++
		}
	}
	return c
}
