package ha

import (
	"reflect"
	"testing"
)

// TestWindow: numbers are accepted once, in any order within the window;
// holes are listed lowest first, and filling them moves next on.
func TestWindow(t *testing.T) {
	var w window
	w.reset(1)
	accept := func(seq uint64, wantOK, wantLost bool) {
		t.Helper()
		if ok, lost := w.accept(seq); ok != wantOK || lost != wantLost {
			t.Errorf("accept(%d) = %v, %v; want %v, %v", seq, ok, lost, wantOK, wantLost)
		}
	}
	accept(1, true, false)
	accept(2, true, false)
	accept(2, false, false) // replay
	accept(5, true, false)
	accept(7, true, false)
	accept(5, false, false) // replay inside the window
	if got := w.missing(nil, 10); !reflect.DeepEqual(got, []uint64{3, 4, 6}) {
		t.Errorf("missing = %v, want [3 4 6]", got)
	}
	if got := w.missing(nil, 2); !reflect.DeepEqual(got, []uint64{3, 4}) {
		t.Errorf("missing(max 2) = %v, want [3 4]", got)
	}
	accept(4, true, false)
	accept(3, true, false)
	if w.next != 6 || !w.hole() {
		t.Errorf("after 3 and 4: next %d, hole %v; want 6, true", w.next, w.hole())
	}
	accept(6, true, false)
	if w.next != 8 || w.hole() {
		t.Errorf("after 6: next %d, hole %v; want 8, false", w.next, w.hole())
	}
	accept(1, false, false)
	// Far ahead: the hole is given up.
	accept(8+windowSize+1, true, true)
	if w.next != 8+windowSize+2 || w.hole() {
		t.Errorf("after a jump: next %d, hole %v; want %d, false", w.next, w.hole(), 8+windowSize+2)
	}
	accept(100, false, false)
}

// TestWindowShuffled: any order of a window's worth of numbers is accepted
// exactly once each and leaves no hole.
func TestWindowShuffled(t *testing.T) {
	var w window
	w.reset(1)
	const n = 3000
	order := make([]uint64, 0, n)
	for i := uint64(1); i <= n; i++ {
		order = append(order, i)
	}
	// Deterministic shuffle within blocks of 200 (reordering, not loss).
	for b := 0; b < n; b += 200 {
		blk := order[b:min(b+200, n)]
		for i := range blk {
			j := (i*7919 + 13) % len(blk)
			blk[i], blk[j] = blk[j], blk[i]
		}
	}
	for _, s := range order {
		if ok, lost := w.accept(s); !ok || lost {
			t.Fatalf("accept(%d) = %v, %v; want accepted, nothing lost", s, ok, lost)
		}
	}
	for _, s := range order[:50] {
		if ok, _ := w.accept(s); ok {
			t.Fatalf("accept(%d) again = true, want a replay", s)
		}
	}
	if w.next != n+1 || w.hole() {
		t.Errorf("next %d, hole %v; want %d, false", w.next, w.hole(), n+1)
	}
}
