package fastpath

import (
	"errors"
	"net/netip"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/ipfront/ipfront/fastpath/steer"
)

// fakeReturns is a steering program with a return map: it records what each
// SetReturns call asked for and fails the calls listed in failOn.
type fakeReturns struct {
	*fakeSteer
	calls  [][]netip.Addr // servers of each SetReturns call
	failOn map[int]bool
}

func (f *fakeReturns) SetReturns(rules []steer.ReturnRule, local []netip.Addr) error {
	var addrs []netip.Addr
	for _, r := range rules {
		if !slices.Contains(addrs, r.Addr) {
			addrs = append(addrs, r.Addr)
		}
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	f.calls = append(f.calls, addrs)
	if f.failOn[len(f.calls)] {
		return errFakeMap
	}
	return nil
}

// natGen is natTables with set natSetTwo's second server moved to a new
// address when moved is set.
func natGen(t *testing.T, moved bool) *Tables {
	tab := natTables(t)
	if !moved {
		return tab
	}
	sets := tab.Sets()
	for _, ts := range sets {
		if ts.ID == natSetTwo {
			ts.Servers[1].Addr = netip.MustParseAddr("198.51.100.200")
		}
	}
	nt, err := NewTables(3, sets)
	if err != nil {
		t.Fatal(err)
	}
	return nt
}

// TestPublishReturns: a publication steers the return traffic of the old and
// the new tables' NAT servers before the new tables are stored, and of the
// new ones only after; if that first step fails, nothing is published.
func TestPublishReturns(t *testing.T) {
	var cur atomic.Pointer[Tables]
	old, next := natGen(t, false), natGen(t, true)
	f := &fakeReturns{fakeSteer: newFakeSteer(), failOn: map[int]bool{}}
	if err := publish(&cur, []vipSetter{f}, old); err != nil {
		t.Fatal(err)
	}
	moved, gone := netip.MustParseAddr("198.51.100.200"), natServer(natSetTwo, 1, false)
	f.calls = nil
	if err := publish(&cur, []vipSetter{f}, next); err != nil {
		t.Fatal(err)
	}
	if len(f.calls) != 2 {
		t.Fatalf("SetReturns calls = %d, want 2", len(f.calls))
	}
	if first := f.calls[0]; !slices.Contains(first, moved) || !slices.Contains(first, gone) {
		t.Errorf("first SetReturns = %v, want both %v and %v", first, moved, gone)
	}
	if last := f.calls[1]; !slices.Contains(last, moved) || slices.Contains(last, gone) {
		t.Errorf("last SetReturns = %v, want %v and not %v", last, moved, gone)
	}
	for _, ts := range next.Sets() {
		for s := range ts.Servers {
			if srv := &ts.Servers[s]; srv.Present && !slices.Contains(f.calls[1], srv.Addr) {
				t.Errorf("server %v of set %d not steered", srv.Addr, ts.ID)
			}
		}
	}

	// A failure of the first step publishes nothing.
	f.calls, f.failOn = nil, map[int]bool{1: true}
	err := publish(&cur, []vipSetter{f}, old)
	if !errors.Is(err, errFakeMap) || errors.Is(err, ErrStaleVIPs) {
		t.Fatalf("publish with the return map failing = %v, want the map's error, not ErrStaleVIPs", err)
	}
	if cur.Load() != next {
		t.Error("tables changed although steering their return traffic failed")
	}
}

// TestNATServersPorts: a server's steering rule covers the ports and
// protocols of every NAT set it is in, merged, and the helper's return ports.
func TestNATServersPorts(t *testing.T) {
	for _, s := range natTables(t).NATServers() {
		if s.Addr == natServer(natSetFTP, 0, false) {
			if want := []PortRange{{20, 21}}; !slices.Equal(s.Ports, want) {
				t.Errorf("FTP server ports = %v, want %v (21 and return port 20, merged)", s.Ports, want)
			}
		}
		if s.Addr == natServer(natSetV4, 0, false) {
			if want := []PortRange{{53, 53}, {80, 80}}; !slices.Equal(s.Ports, want) || s.Protos != ProtoBitTCP|ProtoBitUDP {
				t.Errorf("set %d server: ports %v protos %d, want %v and TCP|UDP", natSetV4, s.Ports, s.Protos, want)
			}
		}
	}
}
