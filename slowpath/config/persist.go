package config

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Persistence and port ownership: the keys that keep a high-speed file
// transfer's TCP control session and its UDP data flows (other source
// ports, other VIP ports, other VIPs) on the server that holds the session.
//
// On a target set, persistence = "client" with persistence_timeout (default
// the set's delete_age), persistence_ipv4_prefix (32) and
// persistence_ipv6_prefix (128) gives the set a persistence group of its
// own. A [[persistence_group]] ties several sets together with its own
// timeout (default the longest delete_age of its members) and prefixes; its
// members are persistent through it, and their own persistence keys are
// refused rather than silently overridden: one group has one timeout. On a
// server, owned_ports lists the destination ports that go to it whatever
// the client.

// Values of the persistence key of a target set.
const (
	PersistenceNone   = "none"   // every flow is balanced on its own (the default)
	PersistenceClient = "client" // every flow of a client goes to the server its first flow reached
)

// Default prefix lengths that group clients: every address on its own.
const (
	DefaultPersistenceIPv4Prefix = 32
	DefaultPersistenceIPv6Prefix = 128
)

// maxOwnedRanges bounds the owned port ranges of one set: the fast path
// compares a new flow's port with each.
const maxOwnedRanges = 64

// Persistence is a target set's resolved persistence: its own (persistence
// = "client") or its [[persistence_group]]'s.
type Persistence struct {
	// Group is the name of the [[persistence_group]] the set belongs to,
	// or "" when the set has a group of its own.
	Group string
	// Timeout is how long a client's record lives after its last packet
	// in any flow of the group: >= 1s.
	Timeout time.Duration
	// IPv4Prefix (1..32) and IPv6Prefix (1..128) are the prefix lengths
	// that group client addresses: a NAT pool or a /64 on one server.
	IPv4Prefix, IPv6Prefix int
}

// PersistenceGroup is one [[persistence_group]]: target sets across which
// a client keeps its server (by address), such as a TCP VIP and a UDP VIP
// of one transfer service.
type PersistenceGroup struct {
	Name       string   // unique among groups and target sets, [a-z0-9_-]{1,32}
	TargetSets []string // names of existing target sets, each in one group only
	Timeout    time.Duration
	IPv4Prefix int
	IPv6Prefix int
}

var persistenceGroupSchema = &schema{"[[persistence_group]]", []string{"name", "target_sets", "timeout", "ipv4_prefix", "ipv6_prefix"}}

// persistKeys are a target set's own persistence keys and the
// [[persistence_group]] keys that take their place in a group.
var persistKeys = [...]struct{ set, group string }{
	{"persistence_timeout", "timeout"},
	{"persistence_ipv4_prefix", "ipv4_prefix"},
	{"persistence_ipv6_prefix", "ipv6_prefix"},
}

// decodePersistence reads the [[persistence_group]] tables and the
// persistence keys of every target set (decoded from sets, in order), and
// resolves each set's Persistence. Which groups list which sets is checked
// by validatePersistence; here a set listed twice takes the first group.
func decodePersistence(root table, s *Spec, sets []table) {
	groups := root.tables("persistence_group")
	member := map[string]int{} // set name -> index of the first group listing it
	for i, gt := range groups {
		gt.checkKeys(persistenceGroupSchema)
		gt.require("name", `name the group: name = "transfers"`)
		gt.require("target_sets", `list the target sets whose clients keep one server: target_sets = ["cd-tcp", "cd-udp"]`)
		g := PersistenceGroup{Name: gt.str("name", ""),
			IPv4Prefix: gt.integer("ipv4_prefix", DefaultPersistenceIPv4Prefix),
			IPv6Prefix: gt.integer("ipv6_prefix", DefaultPersistenceIPv6Prefix)}
		g.TargetSets, _ = gt.strings("target_sets")
		var longest time.Duration
		for _, name := range g.TargetSets {
			if _, seen := member[name]; !seen && name != "" {
				member[name] = i
			}
			for k := range s.TargetSets {
				if s.TargetSets[k].Name == name {
					longest = max(longest, s.TargetSets[k].DeleteAge)
				}
			}
		}
		if longest == 0 {
			longest = defaultDeleteAge
		}
		g.Timeout = gt.duration("timeout", longest)
		s.PersistenceGroups = append(s.PersistenceGroups, g)
	}
	for k, t := range sets {
		ts := &s.TargetSets[k]
		mode := t.str("persistence", PersistenceNone)
		_, modePath, modeSet := t.get("persistence")
		if !t.r.muted(modePath) {
			t.r.enum(modePath, mode, []string{PersistenceNone, PersistenceClient}, nil)
		}
		if t.r.muted(modePath) && modeSet {
			continue // the mode's error says it all
		}
		if i, ok := member[ts.Name]; ok && ts.Name != "" {
			g := &s.PersistenceGroups[i]
			at := t.r.line(elem("persistence_group", i))
			if modeSet && mode == PersistenceNone {
				t.r.errorf(modePath, fmt.Sprintf(`remove persistence = "none", or take %q out of the group's target_sets`, ts.Name),
					"target set %s is in persistence_group %s%s, which makes it persistent", quote(ts.Name), quote(g.Name), at)
			}
			for _, key := range persistKeys {
				if _, kp, present := t.get(key.set); present {
					t.r.keyErrorf(kp, fmt.Sprintf("set %s in the group, where it applies to every member, or remove the key", key.group),
						"%s belongs to the group: target set %s is in persistence_group %s%s", key.set, quote(ts.Name), quote(g.Name), at)
				}
			}
			ts.Persistence = &Persistence{Group: g.Name, Timeout: g.Timeout, IPv4Prefix: g.IPv4Prefix, IPv6Prefix: g.IPv6Prefix}
			continue
		}
		if mode != PersistenceClient {
			for _, key := range persistKeys {
				if _, kp, present := t.get(key.set); present {
					t.r.keyErrorf(kp, `add persistence = "client", or remove the key`,
						"%s applies only to a set with persistence = %q", key.set, PersistenceClient)
				}
			}
			continue
		}
		ts.Persistence = &Persistence{
			Timeout:    t.duration("persistence_timeout", ts.DeleteAge),
			IPv4Prefix: t.integer("persistence_ipv4_prefix", DefaultPersistenceIPv4Prefix),
			IPv6Prefix: t.integer("persistence_ipv6_prefix", DefaultPersistenceIPv6Prefix),
		}
	}
}

// decodeOwnedPorts reads a server's owned_ports: "N", "N-M" or a bare
// integer each; nil when absent.
func decodeOwnedPorts(t table) []PortRange {
	elems, path, present := t.list("owned_ports")
	if !present || elems == nil {
		return nil
	}
	return t.portList(elems, path, 1, `a port range string such as "33001-33010"`)
}

// validatePersistence checks the persistence groups, every set's
// persistence and owned ports, and the room for persistence records.
func validatePersistence(r *reporter, s *Spec) {
	setIndex := map[string]int{}
	for k := range s.TargetSets {
		if _, dup := setIndex[s.TargetSets[k].Name]; !dup {
			setIndex[s.TargetSets[k].Name] = k
		}
	}
	listed := validateGroups(r, s, setIndex)
	persistent := ""
	for k := range s.TargetSets {
		ts := &s.TargetSets[k]
		path := elem("target_set", k)
		ts.validatePersistence(r, path, s.PersistenceGroups, listed)
		ts.validateOwnedPorts(r, path)
		if ts.Persistence != nil && persistent == "" {
			persistent = ts.Name
		}
	}
	switch n := s.Dataplane.MaxPersistenceRecords; {
	case n < 0:
		r.errorf("dataplane.max_persistence_records", "the default is max_associations / 4",
			"max_persistence_records %d is negative", n)
	case n == 0 && persistent != "":
		r.errorf("dataplane.max_persistence_records", "remove the key for the default, max_associations / 4",
			"max_persistence_records 0 leaves no room for the clients of target set %s, which is persistent", quote(persistent))
	}
	for i := range s.PersistenceGroups {
		checkGroupServers(r, s, i, setIndex, listed)
	}
}

// validateGroups checks every [[persistence_group]] and returns, for each
// target set a group lists, the index of that group.
func validateGroups(r *reporter, s *Spec, setIndex map[string]int) map[string]int {
	listed := map[string]int{}
	names := map[string]int{}
	for i := range s.PersistenceGroups {
		g := &s.PersistenceGroups[i]
		gp := elem("persistence_group", i)
		_, isSet := setIndex[g.Name]
		switch j, dup := names[g.Name]; {
		case !validSetName(g.Name):
			r.errorf(gp+".name", "use 1 to 32 characters from a-z, 0-9, '_' and '-'", "invalid persistence group name %s", quote(g.Name))
		case dup:
			r.errorf(gp+".name", "persistence group names must be unique",
				"name %s is already used by persistence_group[%d]%s", quote(g.Name), j, r.line(elem("persistence_group", j)))
		case isSet:
			r.errorf(gp+".name", "a set with persistence of its own is listed under its name; choose another name for the group",
				"name %s is a target set's", quote(g.Name))
		default:
			names[g.Name] = i
		}
		tp := gp + ".target_sets"
		if len(g.TargetSets) == 0 && !r.muted(tp) {
			r.errorf(tp, `list the target sets whose clients keep one server: target_sets = ["cd-tcp", "cd-udp"]`, "no target sets listed")
		}
		for j, name := range g.TargetSets {
			ep := elem(tp, j)
			if r.muted(ep) {
				continue
			}
			_, exists := setIndex[name]
			other, inOther := listed[name]
			switch {
			case !exists:
				hint := "list the name of a [[target_set]]"
				if sug := suggest(name, slices.Sorted(maps.Keys(setIndex))); sug != "" {
					hint = fmt.Sprintf("did you mean %q?", sug)
				}
				r.errorf(ep, hint, "no target set %s", quote(name))
			case slices.Contains(g.TargetSets[:j], name):
				r.errorf(ep, "list each target set once", "target set %s is already listed as target_sets[%d]",
					quote(name), slices.Index(g.TargetSets, name))
			case inOther && other != i:
				r.errorf(ep, "a target set belongs to one persistence group; merge the groups",
					"target set %s is already in persistence_group[%d] %s%s", quote(name), other,
					quote(s.PersistenceGroups[other].Name), r.line(elem("persistence_group", other)))
			default:
				listed[name] = i
			}
		}
		if g.Timeout < time.Second {
			r.errorf(gp+".timeout", "make it longer than the longest pause between a transfer's flows; the default is the members' longest delete_age",
				"timeout %s is shorter than 1s", g.Timeout)
		}
		checkPrefixes(r, gp+".ipv4_prefix", gp+".ipv6_prefix", g.IPv4Prefix, g.IPv6Prefix)
	}
	return listed
}

// validatePersistence checks ts's persistence against the group listing
// it, if any (listed maps set names to group indices).
func (ts *TargetSet) validatePersistence(r *reporter, path string, groups []PersistenceGroup, listed map[string]int) {
	p := ts.Persistence
	gi, inGroup := listed[ts.Name]
	switch {
	case p == nil && inGroup:
		r.errorf(path+".persistence", "", "target set %s is in persistence_group %s but has no persistence",
			quote(ts.Name), quote(groups[gi].Name))
	case p == nil:
	case p.Group != "" && (!inGroup || groups[gi].Name != p.Group):
		r.errorf(path+".persistence", "", "persistence_group %s does not list target set %s", quote(p.Group), quote(ts.Name))
	case p.Group != "":
		g := &groups[gi]
		if p.Timeout != g.Timeout || p.IPv4Prefix != g.IPv4Prefix || p.IPv6Prefix != g.IPv6Prefix {
			r.errorf(path+".persistence", "a member's persistence is its group's",
				"persistence of target set %s differs from its persistence_group %s", quote(ts.Name), quote(g.Name))
		}
	case inGroup:
		r.errorf(path+".persistence", "", "target set %s is in persistence_group %s but has persistence of its own",
			quote(ts.Name), quote(groups[gi].Name))
	default:
		if p.Timeout < time.Second {
			r.errorf(path+".persistence_timeout", "make it longer than the longest pause between a transfer's flows; the default is delete_age",
				"persistence_timeout %s is shorter than 1s", p.Timeout)
		}
		checkPrefixes(r, path+".persistence_ipv4_prefix", path+".persistence_ipv6_prefix", p.IPv4Prefix, p.IPv6Prefix)
	}
}

// checkPrefixes checks the prefix lengths that group clients.
func checkPrefixes(r *reporter, path4, path6 string, v4, v6 int) {
	if v4 < 1 || v4 > 32 {
		r.errorf(path4, "32 keeps every client apart; 24 puts each /24 (a NAT pool, say) on one server",
			"%s %d is out of range 1..32", lastKey(path4), v4)
	}
	if v6 < 1 || v6 > 128 {
		r.errorf(path6, "128 keeps every client apart; 64 puts each /64 on one server",
			"%s %d is out of range 1..128", lastKey(path6), v6)
	}
}

// lastKey returns the last key of a path: "ipv4_prefix" of
// "persistence_group[0].ipv4_prefix".
func lastKey(path string) string { return path[strings.LastIndexByte(path, '.')+1:] }

// validateOwnedPorts checks the servers' owned port ranges: each within
// the set's ports, none overlapping another (of the same server or not).
func (ts *TargetSet) validateOwnedPorts(r *reporter, path string) {
	type owned struct {
		server, index int
		pr            PortRange
	}
	var seen []owned
	count := 0
	for i := range ts.Servers {
		op := elem(path+".server", i) + ".owned_ports"
		for j, pr := range ts.Servers[i].OwnedPorts {
			ep := elem(op, j)
			if r.muted(ep) {
				continue
			}
			count++
			switch {
			case pr == allPorts:
				r.errorf(ep, `list the ports only this server uses, such as "33001-33010"; to send it more traffic, raise its weight`,
					`"*" would send every packet of the set to this server`)
				continue
			case pr.First == 0:
				r.errorf(ep, "ports are 1..65535", "port 0 is out of range")
				continue
			case pr.First > pr.Last:
				r.errorf(ep, fmt.Sprintf(`write "%d-%d"`, pr.Last, pr.First), "port range %d-%d is reversed", pr.First, pr.Last)
				continue
			case count > maxOwnedRanges:
				r.errorf(ep, "merge adjacent ranges", "more than %d owned port ranges in one target set", maxOwnedRanges)
				continue
			case ts.Initiates() && !ts.ownedOutsideListening(r, ep, pr): // signalling.go
				continue
			case !ts.Initiates() && !covers(ts.Ports, pr):
				r.errorf(ep, "add the range to the set's ports, or narrow it",
					"owned range %s is not within the set's ports (%s)", pr, portList(ts.Ports))
				continue
			}
			for _, o := range seen {
				if c, ok := pr.overlap(o.pr); ok {
					where := "this server's"
					if o.server != i {
						where = fmt.Sprintf("server[%d] %s's", o.server, quote(ts.Servers[o.server].Name))
					}
					r.errorf(ep, "a port is owned by one server",
						"owned range %s overlaps %s owned_ports[%d] (%s) in %s%s", pr, where, o.index, o.pr, c,
						r.line(elem(elem(path+".server", o.server)+".owned_ports", o.index)))
					break
				}
			}
			seen = append(seen, owned{i, j, pr})
		}
	}
}

// covers reports whether every port of pr is in one of ports.
func covers(ports []PortRange, pr PortRange) bool {
	next := int(pr.First)
	for next <= int(pr.Last) {
		found := false
		for _, r := range ports {
			if validRange(r) && r.Contains(uint16(next)) {
				next, found = int(r.Last)+1, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// portList formats ranges as a file lists them: 33001, 33002-33099.
func portList(ports []PortRange) string {
	s := make([]string, len(ports))
	for i, r := range ports {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}

// checkGroupServers checks that the members of group i can keep a client on
// one server by address: members sharing no server address are refused,
// and a member without a server another member has gets a warning.
func checkGroupServers(r *reporter, s *Spec, i int, setIndex, listed map[string]int) {
	g := &s.PersistenceGroups[i]
	tp := elem("persistence_group", i) + ".target_sets"
	type member struct {
		j     int // index in target_sets
		ts    *TargetSet
		addrs map[netip.Addr]bool
	}
	var members []member
	for j, name := range g.TargetSets {
		if k, ok := setIndex[name]; ok && listed[name] == i && !slices.Contains(g.TargetSets[:j], name) {
			m := member{j, &s.TargetSets[k], map[netip.Addr]bool{}}
			for _, srv := range m.ts.Servers {
				if srv.Address.IsValid() {
					m.addrs[srv.Address] = true
				}
			}
			members = append(members, m)
		}
	}
	for b := range members {
		mb := &members[b]
		ep := elem(tp, mb.j)
		for a := range b {
			ma := &members[a]
			shared := false
			for addr := range ma.addrs {
				shared = shared || mb.addrs[addr]
			}
			if !shared && len(ma.addrs) > 0 && len(mb.addrs) > 0 {
				r.errorf(ep, "persistence follows a server by address: list the same servers in every member",
					"target sets %s and %s share no server address: a client pinned through one can never keep its server through the other",
					quote(ma.ts.Name), quote(mb.ts.Name))
			}
		}
		if r.muted(ep) {
			continue
		}
		warned := map[netip.Addr]bool{}
		for a := range members {
			ma := &members[a]
			for _, srv := range ma.ts.Servers {
				if a == b || !srv.Address.IsValid() || mb.addrs[srv.Address] || warned[srv.Address] {
					continue
				}
				warned[srv.Address] = true
				r.warnf(ep, "persistence follows a server by address: list the same servers in every member",
					"target set %s has no server %s, which %s has: clients pinned to it through %s are balanced anew in %s",
					quote(mb.ts.Name), srv.Address, quote(ma.ts.Name), quote(ma.ts.Name), quote(mb.ts.Name))
			}
		}
	}
}
