package config

import (
	"fmt"
	"net/netip"
)

// The keys of an encapsulating target set (forwarding = "ipip" or "gue"):
// where the outer source addresses come from, GUE's port and the largest
// outer packet the path to the servers carries. They exist only on such a
// set: anywhere else they would do nothing.

// Defaults and bounds of the encapsulation keys.
const (
	// DefaultGUEPort is gue_port's default (Katran's and the Linux fou
	// examples' port).
	DefaultGUEPort = 6080
	// DefaultEncapMTU is encap_mtu's default: an Ethernet path.
	DefaultEncapMTU = 1500
	// MinEncapMTU is IPv6's minimum link MTU: an outer packet of that size
	// always fits.
	MinEncapMTU = 1280
	// MaxEncapMTU is the largest jumbo frame payload commonly configured;
	// the UMEM frame limits frames further (see fastpath/forward_encap.go).
	MaxEncapMTU = 9216
)

// encapKeys are the keys of an encapsulating set.
var encapKeys = []string{"encap_source", "gue_port", "encap_mtu"}

// encapsulates reports whether forwarding f wraps frames in an outer header.
func encapsulates(f string) bool { return f == ForwardIPIP || f == ForwardGUE }

// Encapsulates reports whether the set wraps its frames for the servers in
// an outer header (forwarding = "ipip" or "gue").
func (ts *TargetSet) Encapsulates() bool { return encapsulates(ts.Forwarding) }

// decodeEncapKeys reads the encapsulation keys of t into ts, whose
// Forwarding is already decoded. The keys of any other set are reported.
func decodeEncapKeys(t table, ts *TargetSet) {
	if !ts.Encapsulates() {
		for _, k := range encapKeys {
			if _, path, present := t.get(k); present {
				t.r.errorf(path, `add forwarding = "ipip" or "gue", or remove the key`,
					"%s applies only to a set with forwarding = %q or %q", k, ForwardIPIP, ForwardGUE)
			}
		}
		return
	}
	ts.EncapSources, _ = t.prefixes("encap_source")
	ts.EncapMTU = int(t.ranged("encap_mtu", join(t.path, "encap_mtu"), MinEncapMTU, MaxEncapMTU))
	if _, present := t.m["encap_mtu"]; !present {
		ts.EncapMTU = DefaultEncapMTU
	}
	if ts.Forwarding != ForwardGUE {
		if _, path, present := t.get("gue_port"); present {
			t.r.errorf(path, `use forwarding = "gue", or remove the key`, "gue_port applies only to forwarding = %q", ForwardGUE)
		}
		return
	}
	ts.GUEPort = DefaultGUEPort
	if _, present := t.m["gue_port"]; present {
		ts.GUEPort = int(t.ranged("gue_port", join(t.path, "gue_port"), 1, 65535))
	}
}

// validateEncap checks an encapsulating set's sources: one prefix per IP
// family at most, and one for every family its servers have.
func (ts *TargetSet) validateEncap(r *reporter, path string) {
	if !ts.Encapsulates() {
		return
	}
	sp := path + ".encap_source"
	var have [2]bool // IPv4, IPv6
	for i, p := range ts.EncapSources {
		if !p.IsValid() {
			continue // reported by the decoder
		}
		ep := elem(sp, i)
		fam := 0
		if p.Addr().Is6() && !p.Addr().Is4In6() {
			fam = 1
		}
		switch {
		case p.Addr().Is4In6():
			r.errorf(ep, "write the IPv4 prefix itself", "prefix %s is IPv4-mapped", p)
		case have[fam]:
			r.errorf(ep, "list one IPv4 and one IPv6 prefix at most", "a second %s prefix %s", ipVersion(p.Addr()), p)
		case p.Masked() != p:
			r.errorf(ep, fmt.Sprintf("write %s", p.Masked()), "prefix %s has host bits set", p)
		}
		have[fam] = true
	}
	for i, s := range ts.Servers {
		if !s.Address.IsValid() {
			continue
		}
		fam := 0
		if s.Address.Is6() {
			fam = 1
		}
		if !have[fam] {
			example := `"198.51.100.0/24"`
			if fam == 1 {
				example = `"2001:db8:e::/64"`
			}
			r.errorf(elem(path+".server", i)+".address",
				fmt.Sprintf("add encap_source = [%s]: the outer sources, drawn per flow so the servers' NICs spread flows over their queues; the prefix should route back to this host (ICMP errors about the outer packets)", example),
				"server %s is %s and the set has no %s encap_source", s.Address, ipVersion(s.Address), ipVersion(s.Address))
			have[fam] = true // once per family
		}
	}
}

// EncapSource returns the set's outer source prefix for servers of addr's
// family, if it has one.
func (ts *TargetSet) EncapSource(addr netip.Addr) (netip.Prefix, bool) {
	for _, p := range ts.EncapSources {
		if p.IsValid() && p.Addr().Is4() == addr.Is4() {
			return p, true
		}
	}
	return netip.Prefix{}, false
}
