package config

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

func validateTargetSets(r *reporter, sets []TargetSet) {
	names := make(map[string]int)
	for i := range sets {
		ts := &sets[i]
		path := elem("target_set", i)
		ts.validate(r, path)
		if ts.Name == "" {
			continue
		}
		if j, dup := names[ts.Name]; dup {
			r.errorf(path+".name", "target set names must be unique",
				"name %s is already used by target_set[%d]%s", quote(ts.Name), j, r.line(elem("target_set", j)))
		} else {
			names[ts.Name] = i
		}
	}
	for j := range sets {
		for i := range j {
			if conflict := vipConflict(&sets[i], &sets[j]); conflict != "" {
				r.errorf(elem("target_set", j)+".address",
					"two target sets may share a VIP only if their protocols or ports are disjoint",
					"%s is already served by target_set[%d] %s%s", conflict, i, quote(sets[i].Name), r.line(elem("target_set", i)))
				break
			}
		}
	}
	validateSecondaryConflicts(r, sets) // signalling.go
}

// vipConflict describes traffic that both a and b would claim, or returns "".
func vipConflict(a, b *TargetSet) string {
	if !a.Address.IsValid() || a.Address != b.Address {
		return ""
	}
	for _, p := range a.Protocols {
		if !knownProto(p) || !slices.Contains(b.Protocols, p) {
			continue
		}
		for _, ra := range a.Ports {
			for _, rb := range b.Ports {
				if !validRange(ra) || !validRange(rb) {
					continue
				}
				if c, ok := ra.overlap(rb); ok {
					return fmt.Sprintf("VIP %s %s/%s", a.Address, p, c)
				}
			}
		}
	}
	return ""
}

func (ts *TargetSet) validate(r *reporter, path string) {
	if !validSetName(ts.Name) {
		r.errorf(path+".name", "use 1 to 32 characters from a-z, 0-9, '_' and '-'", "invalid target set name %s", quote(ts.Name))
	}
	checkAddr(r, path+".address", ts.Address, "VIP")
	ts.validateProtocols(r, path+".protocols")
	ts.validatePorts(r, path+".ports")
	r.enum(path+".method", ts.Method, []string{MethodHash, MethodLeastLoad, MethodPeerAware}, nil)
	r.enum(path+".on_server_failure", ts.OnServerFailure, []string{FailureReselect, FailureKeep}, nil)
	r.enum(path+".forwarding", ts.Forwarding, []string{ForwardDSR, ForwardNAT, ForwardIPIP, ForwardGUE}, nil)
	ts.validateEncap(r, path)      // encap.go
	ts.validateSignalling(r, path) // signalling.go
	ts.validateHelper(r, path+".helper")
	ts.validateHelperKeys(r, path)
	if ts.DeleteAge < time.Second {
		r.errorf(path+".delete_age", "the default is 10m", "delete_age %s is shorter than 1s", ts.DeleteAge)
	}
	ts.validateSynAge(r, path) // syn_age.go
	switch n := ts.TableSize; {
	case n < 251 || n > 1000003:
		r.errorf(path+".table_size", "the default is 65537", "table_size %d is out of range 251..1000003", n)
	case !isPrime(n):
		r.errorf(path+".table_size", fmt.Sprintf("the next prime is %d", nextPrime(n)), "table_size %d is not prime", n)
	}
	ts.validateServers(r, path)
	ts.Health.validate(r, path+".health", ts.Ports)
	ts.validatePeerGroups(r, path)
	ts.Balance.validate(r, path+".balance")
}

// validateHelper checks the helper's name and that the set translates
// addresses: a helper rewrites what the servers say about their own
// addresses, which only NAT hides. The helper's own keys are its package's
// to check.
func (ts *TargetSet) validateHelper(r *reporter, path string) {
	if ts.Helper == "" {
		return
	}
	r.enum(path, ts.Helper, []string{HelperFTP}, nil)
	if ts.Forwarding == ForwardDSR {
		r.errorf(path, `add forwarding = "nat": with DSR the servers answer clients directly, so ipfront never sees their replies`,
			"helper %s needs forwarding = %q", quote(ts.Helper), ForwardNAT)
	}
}

func (ts *TargetSet) validateProtocols(r *reporter, path string) {
	if len(ts.Protocols) == 0 {
		r.errorf(path, `list at least one of "tcp", "udp" and "sctp"`, "no protocols listed")
	}
	for i, p := range ts.Protocols {
		switch {
		case !knownProto(p):
			r.errorf(elem(path, i), "", "protocol %d is not tcp (6), udp (17) or sctp (132)", p)
		case slices.Contains(ts.Protocols[:i], p):
			r.errorf(elem(path, i), "list each protocol once", "protocol %s is listed twice", p)
		}
	}
}

func (ts *TargetSet) validatePorts(r *reporter, path string) {
	if len(ts.Ports) == 0 && ts.Mode != ModeInitiator { // an initiator-only set may listen nowhere
		r.errorf(path, `list ports such as ["80", "8000-8099"], or ["*"] for all`, "no ports listed")
	}
	for i, pr := range ts.Ports {
		ep := elem(path, i)
		switch {
		case pr.First == 0:
			r.errorf(ep, "ports are 1..65535", "port 0 is out of range")
			continue
		case pr.First > pr.Last:
			r.errorf(ep, fmt.Sprintf(`write "%d-%d"`, pr.Last, pr.First), "port range %d-%d is reversed", pr.First, pr.Last)
			continue
		}
		for j, prev := range ts.Ports[:i] {
			if !validRange(prev) {
				continue
			}
			if _, ok := pr.overlap(prev); ok {
				hint := "list each port once"
				if pr == allPorts || prev == allPorts {
					hint = `"*" already covers every port; remove the other entries`
				}
				r.errorf(ep, hint, "%s overlaps ports[%d] (%s)", pr, j, prev)
				break
			}
		}
	}
}

func (ts *TargetSet) validateServers(r *reporter, path string) {
	sp := path + ".server"
	switch n := len(ts.Servers); {
	case n == 0:
		r.errorf(sp, "add at least one [[target_set.server]] with an address", "no servers")
	case n > MaxServers:
		r.errorf(elem(sp, MaxServers), "a target set holds at most 16 servers; split into two sets or two VIPs",
			"%d servers, more than %d", n, MaxServers)
	}
	addrs := make(map[netip.Addr]int)
	names := make(map[string]int)
	for i, s := range ts.Servers {
		ep := elem(sp, i)
		checkAddr(r, ep+".address", s.Address, "server address")
		if a := s.Address; a.IsValid() {
			j, dup := addrs[a]
			switch {
			case ts.Address.IsValid() && a.Is4() != ts.Address.Is4() && ts.Forwarding == ForwardNAT:
				r.errorf(ep+".address", "NAT does not translate between IP versions; put the server in a target set of its own version",
					"server %s is %s but the VIP %s is %s", a, ipVersion(a), ts.Address, ipVersion(ts.Address))
			case ts.Address.IsValid() && a.Is4() != ts.Address.Is4() && !ts.Encapsulates():
				r.errorf(ep+".address", "with DSR a server has the VIP's IP version; put it in a target set of its own version",
					"server %s is %s but the VIP %s is %s", a, ipVersion(a), ts.Address, ipVersion(ts.Address))
			case a == ts.Address && ts.Forwarding == ForwardNAT:
				r.errorf(ep+".address", "with NAT ipfront holds the VIP and the servers have their own addresses; write the server's address",
					"server address %s is the VIP", a)
			case a == ts.Address:
				r.errorf(ep+".address", "with DSR the server holds the VIP on its loopback; write the server's own address",
					"server address %s is the VIP", a)
			case dup:
				r.errorf(ep+".address", "list each server once", "server %s is already listed as server[%d]", a, j)
			default:
				addrs[a] = i
			}
		}
		if s.Weight < 0 || s.Weight > 1000 {
			r.errorf(ep+".weight", "0 drains the server; the default is 1", "weight %d is out of range 0..1000", s.Weight)
		}
		switch j, dup := names[s.Name]; {
		case s.Address.IsValid() && s.Name == s.Address.String() && r.muted(ep+".address"):
			// The name defaults to the address, whose error says it all.
		case !validServerName(s.Name):
			r.errorf(ep+".name", "use 1 to 64 characters from A-Z, a-z, 0-9, '.', '_', ':' and '-'",
				"invalid server name %s", quote(s.Name))
		case dup:
			r.errorf(ep+".name", "server names default to the address and must be unique within a target set",
				"server name %s is already used by server[%d]", quote(s.Name), j)
		default:
			names[s.Name] = i
		}
	}
}

// checkAddr reports an address that cannot be a VIP or a server.
func checkAddr(r *reporter, path string, a netip.Addr, what string) {
	if !a.IsValid() {
		r.errorf(path, "", "%s is not set", what)
		return
	}
	var problem, hint string
	switch {
	case a.Zone() != "":
		problem, hint = "has an IPv6 zone", "remove the %zone"
	case a.Is4In6():
		problem, hint = "is an IPv4-mapped IPv6 address", fmt.Sprintf("write it as %s", a.Unmap())
	case a.IsUnspecified():
		problem = "is unspecified"
	case a.IsLoopback():
		problem = "is a loopback address"
	case a.IsMulticast():
		problem = "is a multicast address"
	case a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		problem = "is the broadcast address"
	default:
		return
	}
	r.errorf(path, hint, "%s %s %s", what, clip(a.String()), problem)
}

func ipVersion(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

func knownProto(p Proto) bool {
	return p == ProtoTCP || p == ProtoUDP || p == ProtoSCTP
}

// validRange reports whether r passes Validate on its own.
func validRange(r PortRange) bool { return r.First >= 1 && r.First <= r.Last }

// validSetName reports whether name matches [a-z0-9_-]{1,32}.
func validSetName(name string) bool {
	if len(name) < 1 || len(name) > 32 {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validServerName reports whether name matches [A-Za-z0-9._:-]{1,64}, which
// covers the default, the server's address.
func validServerName(name string) bool {
	if len(name) < 1 || len(name) > 64 {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

func isPrime(n int) bool {
	if n < 2 {
		return false
	}
	for d := 2; d*d <= n; d++ {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// nextPrime returns the smallest prime >= n.
func nextPrime(n int) int {
	for !isPrime(n) {
		n++
	}
	return n
}
