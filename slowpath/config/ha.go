package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// The [ha] table: association replication between mated instances (issue
// 11; slowpath/ha). Absent, the instance replicates nothing.
//
//	[ha]
//	listen = "198.51.100.1:9190"            # this instance's sync address (UDP)
//	mates = ["198.51.100.3:9190"]           # the mates' sync addresses
//	key_file = "/etc/ipfront/ha.key"        # the shared secret, the same on every mate
//
// Mates must run the same target sets and servers (names and addresses) and
// the same [dataplane] hash_seed, so that a flow whose association had not
// been replicated yet still lands on the same server.

// HA is the [ha] table; Enabled is false when the file has none.
type HA struct {
	Enabled bool
	Listen  netip.AddrPort
	Mates   []netip.AddrPort
	// KeyFile holds the shared HMAC key (at least 16 bytes, surrounding
	// whitespace ignored); read when the daemon starts.
	KeyFile string
}

// maxMates bounds [ha] mates: every change goes to each of them.
const maxMates = 8

var haSchema = &schema{"[ha]", []string{"listen", "mates", "key_file"}}

// decodeHA reads [ha]; validate checks how the keys fit together.
func decodeHA(t table) HA {
	if t.m == nil {
		return HA{}
	}
	t.checkKeys(haSchema)
	t.require("listen", `set this instance's sync address: listen = "198.51.100.1:9190"`)
	t.require("mates", `list the mates' sync addresses: mates = ["198.51.100.3:9190"]`)
	t.require("key_file", `name the shared secret's file: key_file = "/etc/ipfront/ha.key"`)
	h := HA{Enabled: true, KeyFile: t.str("key_file", "")}
	h.Listen, _ = t.addrPort("listen", t.str("listen", ""), join(t.path, "listen"))
	mates, _ := t.strings("mates")
	for i, s := range mates {
		if a, ok := t.addrPort("mates", s, elem(join(t.path, "mates"), i)); ok {
			h.Mates = append(h.Mates, a)
		}
	}
	return h
}

// addrPort parses "address:port" (IPv6 in brackets) at path.
func (t table) addrPort(key, s, path string) (netip.AddrPort, bool) {
	if s == "" || t.r.muted(path) {
		return netip.AddrPort{}, false
	}
	a, err := netip.ParseAddrPort(s)
	if err != nil || a.Port() == 0 || !a.Addr().IsValid() || a.Addr().Zone() != "" {
		t.r.errorf(path, `write address:port, such as "198.51.100.1:9190" or "[2001:db8::1]:9190"`,
			"%s %s is not an address and port", key, quote(s))
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()), true
}

func (h *HA) validate(r *reporter) {
	if !h.Enabled {
		return
	}
	if h.Listen.IsValid() && (h.Listen.Addr().IsUnspecified() || h.Listen.Addr().IsMulticast()) {
		r.errorf("ha.listen", "use this instance's own address on the sync link: mates send to it and check where messages come from",
			"listen address %s is not a unicast address", h.Listen.Addr())
	}
	if len(h.Mates) > maxMates {
		r.errorf("ha.mates", fmt.Sprintf("list at most %d", maxMates), "%d mates", len(h.Mates))
	}
	seen := map[netip.AddrPort]bool{}
	for i, m := range h.Mates {
		p := elem("ha.mates", i)
		switch {
		case m == h.Listen:
			r.errorf(p, "list the other instances, not this one", "mate %s is this instance's listen address", m)
		case seen[m]:
			r.errorf(p, "list each mate once", "mate %s is listed twice", m)
		case m.Addr().IsUnspecified() || m.Addr().IsMulticast():
			r.errorf(p, "write the mate's own unicast address", "mate %s is not a unicast address", m.Addr())
		}
		seen[m] = true
	}
	if h.KeyFile != "" && strings.TrimSpace(h.KeyFile) != h.KeyFile {
		r.errorf("ha.key_file", "remove the spaces around the path", "key_file %s has surrounding spaces", quote(h.KeyFile))
	}
}
