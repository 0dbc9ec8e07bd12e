package fastpath

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/ipfront/ipfront/fastpath/maglev"
)

// fakeSteer is a steering program's VIP map. It fails SetVIPs on the calls
// listed in failOn (counted from 1) and then leaves the map half updated,
// as a map update that fails midway would.
type fakeSteer struct {
	vips   map[netip.Addr]bool
	calls  int
	failOn map[int]bool
}

func newFakeSteer(vips ...netip.Addr) *fakeSteer {
	f := &fakeSteer{vips: map[netip.Addr]bool{}, failOn: map[int]bool{}}
	for _, v := range vips {
		f.vips[v] = true
	}
	return f
}

func (f *fakeSteer) SetVIPs(addrs []netip.Addr) error {
	f.calls++
	if f.failOn[f.calls] {
		if len(addrs) > 0 {
			f.vips[addrs[len(addrs)-1]] = true // partly applied
		}
		return fmt.Errorf("map update %d: %w", f.calls, errFakeMap)
	}
	f.vips = map[netip.Addr]bool{}
	for _, a := range addrs {
		f.vips[a] = true
	}
	return nil
}

var errFakeMap = errors.New("fake map failure")

func (f *fakeSteer) list() []netip.Addr {
	var out []netip.Addr
	for a := range f.vips {
		out = append(out, a)
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

// vipTables builds a generation with one TCP set per VIP.
func vipTables(tb testing.TB, gen uint64, vips ...string) *Tables {
	tb.Helper()
	table, err := maglev.New([]maglev.Backend{{Key: "s", Weight: 1}}, 251)
	if err != nil {
		tb.Fatal(err)
	}
	var sets []*TargetSet
	for i, v := range vips {
		ts := &TargetSet{ID: uint16(i), Name: v, VIP: netip.MustParseAddr(v).As16(), Protos: ProtoBitTCP,
			Ports: []PortRange{{80, 80}}, Maglev: table}
		ts.Servers[0] = Server{Name: "s", Addr: netip.MustParseAddr("198.51.100.1"), Gen: 1, Weight: 1, Present: true}
		sets = append(sets, ts)
	}
	t, err := NewTables(gen, sets)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, a := range s {
		out = append(out, netip.MustParseAddr(a))
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out
}

func TestPublishAllOrNothing(t *testing.T) {
	const oldA, oldB, newC = "192.0.2.1", "192.0.2.2", "2001:db8::3"
	tests := []struct {
		name      string
		failOn    [2][]int // SetVIPs calls that fail, per program
		wantErr   error    // nil: success
		wantNew   bool     // workers see the new tables
		wantVIPs  []netip.Addr
		wantStale bool
	}{
		{name: "success", wantNew: true, wantVIPs: addrs(oldB, newC)},
		{name: "first program fails to add", failOn: [2][]int{{1}, nil}, wantErr: errFakeMap,
			wantVIPs: addrs(oldA, oldB)},
		{name: "second program fails to add", failOn: [2][]int{nil, {1}}, wantErr: errFakeMap,
			wantVIPs: addrs(oldA, oldB)},
		{name: "removal fails", failOn: [2][]int{nil, {2}}, wantErr: ErrStaleVIPs, wantNew: true,
			wantStale: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cur atomic.Pointer[Tables]
			old := vipTables(t, 1, oldA, oldB)
			cur.Store(old)
			steers := []*fakeSteer{newFakeSteer(addrs(oldA, oldB)...), newFakeSteer(addrs(oldA, oldB)...)}
			progs := make([]vipSetter, len(steers))
			for i, f := range steers {
				for _, n := range tc.failOn[i] {
					f.failOn[n] = true
				}
				progs[i] = f
			}
			next := vipTables(t, 2, oldB, newC)

			err := publish(&cur, progs, next)

			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("publish = %v, want %v", err, tc.wantErr)
			}
			if got := cur.Load(); (got == next) != tc.wantNew {
				t.Fatalf("workers see generation %d, want new tables: %v", got.Generation, tc.wantNew)
			}
			if tc.wantErr != nil && !tc.wantStale && errors.Is(err, ErrStaleVIPs) {
				t.Fatalf("publish = %v: a failed publication must not claim to stand", err)
			}
			for i, f := range steers {
				got := f.list()
				if tc.wantStale {
					// The program that failed the removal still steers the
					// removed VIP, never less than the new ones.
					for _, v := range addrs(oldB, newC) {
						if !f.vips[v] {
							t.Errorf("program %d steers %v, missing new VIP %v", i, got, v)
						}
					}
					continue
				}
				if !slices.Equal(got, tc.wantVIPs) {
					t.Errorf("program %d steers %v, want %v", i, got, tc.wantVIPs)
				}
			}
		})
	}
}

// While a publication runs, every VIP either generation serves stays
// steered: the union goes in before the tables, the removals after.
func TestPublishSteersUnionWhileSwapping(t *testing.T) {
	var cur atomic.Pointer[Tables]
	cur.Store(vipTables(t, 1, "192.0.2.1"))
	next := vipTables(t, 2, "192.0.2.2")
	rec := &recordingSteer{cur: &cur, next: next}
	if err := publish(&cur, []vipSetter{rec}, next); err != nil {
		t.Fatal(err)
	}
	want := []struct {
		vips    []netip.Addr
		swapped bool
	}{{addrs("192.0.2.1", "192.0.2.2"), false}, {addrs("192.0.2.2"), true}}
	if len(rec.seen) != len(want) {
		t.Fatalf("SetVIPs calls = %v, want %v", rec.seen, want)
	}
	for i, w := range want {
		if !slices.Equal(rec.seen[i].vips, w.vips) || rec.seen[i].swapped != w.swapped {
			t.Errorf("SetVIPs call %d = %v (tables swapped: %v), want %v (%v)", i, rec.seen[i].vips, rec.seen[i].swapped, w.vips, w.swapped)
		}
	}
}

type recordingSteer struct {
	cur  *atomic.Pointer[Tables]
	next *Tables
	seen []struct {
		vips    []netip.Addr
		swapped bool
	}
}

func (r *recordingSteer) SetVIPs(a []netip.Addr) error {
	v := slices.Clone(a)
	slices.SortFunc(v, netip.Addr.Compare)
	r.seen = append(r.seen, struct {
		vips    []netip.Addr
		swapped bool
	}{v, r.cur.Load() == r.next})
	return nil
}
