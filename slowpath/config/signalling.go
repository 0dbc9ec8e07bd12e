package config

import (
	"net/netip"
	"slices"
)

// Telecom signalling keys of a target set (issue 12):
//
//   - secondary_address: the set's second VIP (the IPFE's secondary TSA), the
//     other address a multihomed SCTP peer reaches the same servers on;
//   - diameter = true: a connection that carried only capabilities exchange
//     and disconnect (Diameter commands 257 and 282) for delete_age is stale,
//     so a peer that reconnects from the same port is balanced afresh;
//   - mode: "responder" (peers open connections to the listening ports),
//     "initiator" (servers open connections to peers from the VIP and a port
//     of their own owned_ports range; the peers' answers reach them by that
//     range) or "initiator_responder" (both).

// Values of TargetSet.Mode.
const (
	ModeResponder          = "responder"
	ModeInitiator          = "initiator"
	ModeInitiatorResponder = "initiator_responder"
)

// decodeSignalling reads secondary_address, diameter and mode into ts,
// whose protocols, ports and health are already decoded.
func decodeSignalling(t table, ts *TargetSet) {
	ts.SecondaryAddress, _ = t.addr("secondary_address")
	ts.Diameter = t.boolean("diameter", false)
	ts.Mode = t.str("mode", "") // "": responder, leaving Specs without the key as they were
	if _, listed := t.m["ports"]; !listed && ts.Mode == ModeInitiator {
		// An initiator-only set listens nowhere unless told: ports
		// defaults to "*" elsewhere, which would overlap every owned range.
		ts.Ports = nil
		if _, checked := t.m["health"]; !checked {
			ts.Health.Type, ts.Health.Port = HealthNone, 0 // no listening port to check
		}
	}
}

// Initiates reports whether the set's servers open connections from owned
// port ranges (mode "initiator" or "initiator_responder").
func (ts *TargetSet) Initiates() bool {
	return ts.Mode == ModeInitiator || ts.Mode == ModeInitiatorResponder
}

// validateSignalling checks the signalling keys and an initiating set's
// port plan: every server owns a range, no owned port is a listening port
// (a peer's new connection to it would go to the owner, whatever the
// method says); owned ranges are disjoint across servers
// (validateOwnedPorts).
func (ts *TargetSet) validateSignalling(r *reporter, path string) {
	if ts.Mode != "" { // "" is responder
		r.enum(path+".mode", ts.Mode, []string{ModeResponder, ModeInitiator, ModeInitiatorResponder}, nil)
	}
	if a := ts.SecondaryAddress; a.IsValid() {
		sp := path + ".secondary_address"
		checkAddr(r, sp, a, "secondary address")
		switch {
		case r.muted(sp):
		case ts.Address.IsValid() && a.Is4() != ts.Address.Is4():
			r.errorf(sp, "both addresses of a set are of one IP version",
				"secondary address %s is %s but the VIP %s is %s", a, ipVersion(a), ts.Address, ipVersion(ts.Address))
		case a == ts.Address:
			r.errorf(sp, "remove the key, or give the set's second address", "secondary address %s is the VIP itself", a)
		}
	}
	if ts.Diameter && slices.Contains(ts.Protocols, ProtoUDP) {
		r.errorf(path+".diameter", `list only "tcp" and "sctp" in protocols, or remove diameter`,
			"diameter = true applies to TCP and SCTP; the set also lists udp")
	}
	if !ts.Initiates() {
		return
	}
	for i := range ts.Servers {
		if len(ts.Servers[i].OwnedPorts) == 0 {
			r.errorf(elem(path+".server", i), `give the server the ports it opens connections from: owned_ports = ["40000-40999"]`,
				"mode %s needs owned_ports on every server; server %s has none", quote(ts.Mode), quote(ts.Servers[i].Name))
		}
	}
}

// ownedOutsideListening checks an initiating set's owned range pr (element
// path ep) against the listening ports: they must not share a port.
func (ts *TargetSet) ownedOutsideListening(r *reporter, ep string, pr PortRange) bool {
	for j, lp := range ts.Ports {
		if !validRange(lp) {
			continue
		}
		if c, ok := pr.overlap(lp); ok {
			r.errorf(ep, "an initiating set's servers open connections from owned ports outside its listening ports; move the range or narrow ports",
				"owned range %s overlaps listening ports[%d] (%s) in %s", pr, j, lp, c)
			return false
		}
	}
	return true
}

// validateSecondaryConflicts reports a secondary address that claims
// traffic another set already serves on that address (as its VIP or its
// own secondary address).
func validateSecondaryConflicts(r *reporter, sets []TargetSet) {
	addrs := func(ts *TargetSet) []netip.Addr {
		out := []netip.Addr{ts.Address}
		if ts.SecondaryAddress.IsValid() {
			out = append(out, ts.SecondaryAddress)
		}
		return out
	}
	for j := range sets {
		if !sets[j].SecondaryAddress.IsValid() {
			continue
		}
		b := sets[j]
		b.Address = b.SecondaryAddress
		for i := range sets {
			if i == j {
				continue
			}
			for _, a := range addrs(&sets[i]) {
				o := sets[i]
				o.Address = a
				if conflict := vipConflict(&o, &b); conflict != "" {
					r.errorf(elem("target_set", j)+".secondary_address",
						"two target sets may share an address only if their protocols or ports are disjoint",
						"%s is already served by target_set[%d] %s%s", conflict, i, quote(sets[i].Name), r.line(elem("target_set", i)))
					return
				}
			}
		}
	}
}
