package fastpath

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
)

// ErrStaleVIPs is wrapped by the error of a publication that stands but
// could not take the VIPs it removed out of the steering map: their packets
// still reach the workers, which drop them as no_target_set.
var ErrStaleVIPs = errors.New("removed VIPs are still steered")

// vipSetter is the steering program's VIP map as Publish drives it;
// *steer.Program implements it.
type vipSetter interface {
	SetVIPs(addrs []netip.Addr) error
}

// Publish hands a new generation of tables to the workers and makes the
// steering programs send exactly its VIPs to them. It is all or nothing:
//
//  1. every program steers the old VIPs and the new ones; if one fails, every
//     program is set back to the old VIPs and the workers keep the old
//     tables (the error says whether the restore failed too);
//  2. the tables are stored, so a newly steered VIP finds its target set and
//     a VIP still steered for the old tables finds its set until now;
//  3. every program steers the new VIPs only. A failure here leaves removed
//     VIPs steered to workers that drop their packets as no_target_set; the
//     publication stands and the error wraps ErrStaleVIPs.
func (d *Dataplane) Publish(t *Tables) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return os.ErrClosed
	}
	progs := make([]vipSetter, len(d.programs))
	for i, p := range d.programs {
		progs[i] = p
	}
	return publish(&d.tables, progs, t)
}

// publish is Publish on any steering map; callers serialise it.
func publish(cur *atomic.Pointer[Tables], progs []vipSetter, t *Tables) error {
	var old []netip.Addr
	if o := cur.Load(); o != nil {
		old = o.VIPs()
	}
	next := t.VIPs()
	if err := setVIPs(progs, unionVIPs(old, next)); err != nil {
		if rerr := setVIPs(progs, old); rerr != nil {
			return fmt.Errorf("steer new VIPs: %w; restoring the old ones failed too, some new VIPs may be steered to the old tables: %w", err, rerr)
		}
		return fmt.Errorf("steer new VIPs: %w", err)
	}
	// NAT servers' return traffic, old and new (publish_nat.go).
	if err := setReturns(progs, cur.Load(), t); err != nil {
		if rerr := setVIPs(progs, old); rerr != nil {
			return fmt.Errorf("steer NAT return traffic: %w; restoring the old VIPs failed too: %w", err, rerr)
		}
		return fmt.Errorf("steer NAT return traffic: %w", err)
	}
	cur.Store(t)
	if err := setVIPs(progs, next); err != nil {
		return fmt.Errorf("unsteer removed VIPs: %w: %w", ErrStaleVIPs, err)
	}
	if err := setReturns(progs, t); err != nil {
		return fmt.Errorf("unsteer removed NAT servers: %w: %w", ErrStaleVIPs, err)
	}
	return nil
}

// setVIPs sets addrs on every program, stopping at the first failure.
func setVIPs(progs []vipSetter, addrs []netip.Addr) error {
	for _, p := range progs {
		if err := p.SetVIPs(addrs); err != nil {
			return err
		}
	}
	return nil
}

// unionVIPs returns the addresses in a or b, each once.
func unionVIPs(a, b []netip.Addr) []netip.Addr {
	seen := make(map[netip.Addr]bool, len(a)+len(b))
	out := make([]netip.Addr, 0, len(a)+len(b))
	for _, l := range [][]netip.Addr{a, b} {
		for _, v := range l {
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}
