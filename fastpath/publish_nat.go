package fastpath

import (
	"net"
	"net/netip"

	"github.com/ipfront/ipfront/fastpath/steer"
)

// returnSetter is the steering program's map of NAT servers' return traffic;
// *steer.Program implements it. Steering maps that lack it (the tests'
// fakes of publish) have no NAT return traffic to steer.
type returnSetter interface {
	SetReturns(rules []steer.ReturnRule, local []netip.Addr) error
}

// setReturns makes every program that has a return map steer the return
// traffic of the NAT servers of all the given tables (nil ones skipped),
// except what is addressed to the host's own addresses. Publish calls it
// with the old and the new tables before storing the new ones, and with
// the new ones after, as it does the VIPs.
func setReturns(progs []vipSetter, tabs ...*Tables) error {
	var rules []steer.ReturnRule
	for _, t := range tabs {
		if t != nil {
			rules = append(rules, returnRules(t)...)
		}
	}
	var local []netip.Addr
	for _, p := range progs {
		r, ok := p.(returnSetter)
		if !ok {
			continue
		}
		if local == nil {
			local = localAddrs()
		}
		if err := r.SetReturns(rules, local); err != nil {
			return err
		}
	}
	return nil
}

// returnRules are t's NAT servers as the steering program matches their
// traffic; a server in several sets (or generations) gets one rule with
// every protocol and port.
func returnRules(t *Tables) []steer.ReturnRule {
	var out []steer.ReturnRule
	for _, s := range t.NATServers() {
		r := steer.ReturnRule{Addr: s.Addr, Protos: s.Protos, ICMPErrors: true}
		for _, p := range s.Ports {
			r.Ports = append(r.Ports, [2]uint16{p.First, p.Last})
		}
		out = append(out, r)
	}
	return out
}

// localAddrs are the addresses of the host (its network namespace), whose
// traffic from NAT servers (health checks, neighbour resolution) is the
// kernel's. Read at every publication; an error leaves the list empty.
func localAddrs() []netip.Addr {
	out := []netip.Addr{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out
}
