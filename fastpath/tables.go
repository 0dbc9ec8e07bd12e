package fastpath

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/maglev"
)

// Limits of the forwarding tables.
const (
	MaxServers    = 16  // servers per target set, as in the IPFE
	MaxSets       = 256 // target sets per daemon; ids are 0..MaxSets-1
	MaxInterfaces = 8   // interfaces one daemon forwards on
)

// Protocol bits of TargetSet.Protos.
const (
	ProtoBitTCP uint8 = 1 << iota
	ProtoBitUDP
	ProtoBitSCTP
)

// ProtoBit maps an IANA protocol number to its TargetSet.Protos bit (0 if
// the protocol cannot be load balanced).
func ProtoBit(proto uint8) uint8 {
	switch proto {
	case 6:
		return ProtoBitTCP
	case 17:
		return ProtoBitUDP
	case 132:
		return ProtoBitSCTP
	}
	return 0
}

// PortRange is an inclusive range of destination ports.
type PortRange struct{ First, Last uint16 }

// Server is one slot of a target set. The slow path keeps a server in the
// same slot across reloads and bumps Gen when a slot is given to a different
// server, so an association that names a slot and generation always means
// the server it was made for.
type Server struct {
	Name    string
	Addr    netip.Addr
	Gen     uint32 // from the slow path's daemon-wide counter, 1..assoc.MaxGen
	Weight  uint32
	Present bool // the slot holds a configured server
	// Reselect tells workers to move this server's associations on their next
	// packet: it was removed or failed with on_server_failure = "reselect".
	Reselect bool
	// MAC is the server's link-layer address as seen from each interface
	// (indexed like Config.Interfaces); HasMAC is false until resolved.
	MAC    [MaxInterfaces][6]byte
	HasMAC [MaxInterfaces]bool
	// AddrID identifies the server's address daemon-wide: the same address
	// has the same id in every target set, so a persistence record names
	// "the same server" across the sets of its group. Nonzero when Present.
	AddrID uint32
	// Egress is, in a NAT set, the interface (index like MAC) the route to
	// the server leaves by; MAC[Egress] is then the next hop's address (the
	// server's own on its subnet, else its gateway's) and HasMAC is set on
	// every interface from which the server can be reached. The same for
	// IPIP and GUE sets (forward_encap.go). Unused by DSR.
	Egress uint8
}

// TargetSet is one VIP with its protocols, ports and servers, ready for the
// fast path. It is immutable once published.
type TargetSet struct {
	ID     uint16
	Name   string
	VIP    [16]byte // IPv4 in IPv4-mapped form
	Protos uint8    // ProtoBit* mask
	Method uint8    // how new associations pick their server: MethodHash (Maglev), MethodLeastLoad or MethodPeerAware
	// Forwarding is how frames reach the chosen server: FwdDSR (L2 direct
	// server return, forward_dsr.go), FwdNAT (forward_nat.go), FwdIPIP or
	// FwdGUE (forward_encap.go).
	Forwarding uint8
	// Encap is the outer header configuration of an FwdIPIP or FwdGUE set
	// (forward_encap.go); its servers' Egress and MAC[Egress] are their
	// next hops, as in a NAT set.
	Encap Encap
	// Helper is the application helper of a NAT set (HelperNone or
	// HelperFTP): segments of its control connections that carry payload
	// are punted to the slow path; see forward_nat.go.
	Helper uint8
	// ReturnPorts are source ports, besides Ports, whose traffic from this
	// NAT set's servers the steering program hands to the workers: the
	// helper's data connections (FTP: 20 and the servers' passive range).
	ReturnPorts []PortRange
	// ExpectTimeout is how long, in seconds, an expectation of this set
	// (assoc.KindExpect) lives unused; 0 means DefaultExpectTimeout.
	ExpectTimeout uint32
	Ports         []PortRange
	DeleteAge     uint32 // seconds of idleness after which an association is stale
	// SynAge is DeleteAge for an association that has not proven a
	// connection yet (assoc.FlagProven; syn_age): what a spoofed source
	// costs the table. 0 or more than DeleteAge: DeleteAge.
	SynAge uint32
	Maglev *maglev.Table
	// Seed keys the flow hash that picks a server for a flow without an
	// association ([dataplane] hash_seed; the same on every set). Zero:
	// maglev.Unkeyed.
	Seed    maglev.Seed
	Servers [MaxServers]Server
	// PeerGroups classifies clients into peer groups for MethodPeerAware:
	// the first prefix containing the client decides.
	PeerGroups []PeerPrefix
	// Load is where the slow path publishes the servers' load for the
	// least-load methods; nil (or empty) means hash until it has.
	Load *LoadCell
	// Persist, when not nil, keeps each client on one server across all
	// its flows to the sets of Persist.Group (persist.go).
	Persist *Persistence
	// Owned are destination port ranges that belong to one server each,
	// for every client, before persistence and method (persist.go). The
	// set matches them as it matches Ports: the ports servers open
	// connections from (initiator mode) lie outside the listening ones.
	Owned []OwnedRange
	// Signalling (signalling.go).
	//
	// SecondaryVIP, when HasSecondary, is the set's second address (the
	// IPFE's secondary TSA): packets to either belong to the set.
	SecondaryVIP [16]byte
	HasSecondary bool
	// Diameter makes a flow that carried no Diameter application message
	// stale delete_age after it was made, whatever else it carried, so
	// that a peer that only connects, exchanges capabilities and
	// disconnects is re-balanced when it reconnects from the same port.
	Diameter bool
	// NoTagIndex turns the SCTP verification-tag index off: a test hook
	// that shows what the index does (a multihomed peer's other paths then
	// land by the hash).
	NoTagIndex bool

	sel selIndex // filled by NewTables
}

func (ts *TargetSet) matches(protoBit uint8, port uint16) bool {
	if ts.Protos&protoBit == 0 {
		return false
	}
	for _, r := range ts.Ports {
		if port >= r.First && port <= r.Last {
			return true
		}
	}
	for _, r := range ts.Owned {
		if port >= r.First && port <= r.Last {
			return true
		}
	}
	return false
}

// Tables is one immutable generation of everything workers need to forward.
// The slow path builds a new one for every change and publishes it with
// Dataplane.Publish; workers pick it up at the top of their next poll.
type Tables struct {
	Generation uint64
	sets       [MaxSets]*TargetSet
	// ages are the delete ages by record kind and set id, for
	// assoc.Shard.Sweep. Ids of removed sets read 0, so their associations
	// expire after one idle second.
	ages     assoc.Ages
	vipSlots []vipSlot
	vipMask  uint64
	// nat indexes the servers of NAT sets, for replies (forward_nat.go).
	nat natIndex
	// Routes are the client-side next hops of NAT replies, kept current by
	// the slow path between generations (nil: no NAT set can reply).
	Routes *RouteCell
	// vlans has bit v set for each VLAN ID whose tagged VIP frames are
	// forwarded ([dataplane] vlans); a frame tagged with any other is
	// dropped (vlan_not_configured) rather than sent, tag kept, to servers
	// that may not be on that VLAN at all.
	vlans [4096 / 64]uint64
}

// AllowVLANs lets tagged VIP frames of the given VLAN IDs through. Call it
// before the tables are published.
func (t *Tables) AllowVLANs(ids []uint16) {
	for _, v := range ids {
		t.vlans[v/64&63] |= 1 << (v % 64)
	}
}

// vlanAllowed reports whether tagged VIP frames of VLAN v are forwarded.
func (t *Tables) vlanAllowed(v uint16) bool {
	return t.vlans[v/64&63]&(1<<(v%64)) != 0
}

// vipSlot is an open-addressing bucket: a VIP and the target sets on it.
type vipSlot struct {
	lo, hi uint64 // vip as two little-endian words, compared in the hot path
	vip    [16]byte
	used   bool
	sets   []*TargetSet
}

// ErrBadTables reports target sets the fast path cannot hold.
var ErrBadTables = errors.New("invalid forwarding tables")

// NewTables indexes sets for the fast path. Set ids must be unique and below
// MaxSets; every set needs a Maglev table.
func NewTables(generation uint64, sets []*TargetSet) (*Tables, error) {
	t := &Tables{Generation: generation}
	byVIP := map[[16]byte][]*TargetSet{}
	maxID := -1
	for _, ts := range sets {
		if int(ts.ID) >= MaxSets || int(ts.ID) > assoc.MaxSetID || t.sets[ts.ID] != nil {
			return nil, fmt.Errorf("%w: target set %q: id %d duplicate or not below %d", ErrBadTables, ts.Name, ts.ID, MaxSets)
		}
		if ts.Maglev == nil {
			return nil, fmt.Errorf("%w: target set %q has no Maglev table", ErrBadTables, ts.Name)
		}
		if ts.Forwarding >= NumForwardings {
			return nil, fmt.Errorf("%w: target set %q: forwarding strategy %d unknown", ErrBadTables, ts.Name, ts.Forwarding)
		}
		if err := ts.checkNAT(); err != nil {
			return nil, fmt.Errorf("%w: target set %q: %w", ErrBadTables, ts.Name, err)
		}
		for _, s := range ts.Servers {
			if s.Present && (s.Gen == 0 || s.Gen > assoc.MaxGen) {
				return nil, fmt.Errorf("%w: target set %q: server %s generation %d outside 1..%d", ErrBadTables, ts.Name, s.Addr, s.Gen, assoc.MaxGen)
			}
		}
		if err := ts.prepareSelection(); err != nil {
			return nil, fmt.Errorf("%w: target set %q: %w", ErrBadTables, ts.Name, err)
		}
		if ts.Seed.IsZero() {
			ts.Seed = maglev.Unkeyed
		}
		if ts.DeleteAge > assoc.MaxAge {
			ts.DeleteAge = assoc.MaxAge
		}
		if ts.SynAge == 0 || ts.SynAge > ts.DeleteAge {
			ts.SynAge = ts.DeleteAge
		}
		t.sets[ts.ID] = ts
		maxID = max(maxID, int(ts.ID))
		byVIP[ts.VIP] = append(byVIP[ts.VIP], ts)
		if ts.HasSecondary && ts.SecondaryVIP != ts.VIP {
			byVIP[ts.SecondaryVIP] = append(byVIP[ts.SecondaryVIP], ts)
		}
	}
	flows, unproven := make([]uint32, maxID+1), make([]uint32, maxID+1)
	for _, ts := range sets {
		flows[ts.ID], unproven[ts.ID] = ts.DeleteAge, ts.SynAge
	}
	t.ages.Kind[assoc.KindFlow] = flows
	t.ages.Kind[assoc.KindTag] = flows // a tag index entry lives as long as its association
	t.ages.Unproven = unproven
	t.ages.Kind[assoc.KindExpect] = expectAges(sets, maxID)
	t.ages.Kind[assoc.KindPersist] = persistAges(sets)
	t.nat = newNATIndex(sets)
	n := 4
	for n < 2*len(byVIP) {
		n *= 2
	}
	t.vipSlots = make([]vipSlot, n)
	t.vipMask = uint64(n - 1)
	for vip, list := range byVIP {
		i := vipHash(&vip) & t.vipMask
		for t.vipSlots[i].used {
			i = (i + 1) & t.vipMask
		}
		t.vipSlots[i] = vipSlot{vip: vip, used: true, sets: list,
			lo: binary.LittleEndian.Uint64(vip[:8]), hi: binary.LittleEndian.Uint64(vip[8:])}
	}
	return t, nil
}

// Set returns the target set with this id, or nil.
func (t *Tables) Set(id uint16) *TargetSet {
	if int(id) >= MaxSets {
		return nil
	}
	return t.sets[id]
}

// Sets returns every target set, ordered by id.
func (t *Tables) Sets() []*TargetSet {
	var out []*TargetSet
	for _, ts := range t.sets {
		if ts != nil {
			out = append(out, ts)
		}
	}
	return out
}

// VIPs returns the distinct VIP addresses, for the steering program's map.
func (t *Tables) VIPs() []netip.Addr {
	var out []netip.Addr
	for i := range t.vipSlots {
		if t.vipSlots[i].used {
			out = append(out, netip.AddrFrom16(t.vipSlots[i].vip).Unmap())
		}
	}
	return out
}

// vipHash spreads VIPs over the index; two word loads, one multiply.
func vipHash(a *[16]byte) uint64 {
	lo, hi := binary.LittleEndian.Uint64(a[:8]), binary.LittleEndian.Uint64(a[8:])
	h := (lo ^ hi) * 0x9E3779B97F4A7C15
	return h ^ h>>29
}

// lookup finds the target set serving dst, protocol and port, or nil.
func (t *Tables) lookup(dst *[16]byte, protoBit uint8, port uint16) *TargetSet {
	lo, hi := binary.LittleEndian.Uint64(dst[:8]), binary.LittleEndian.Uint64(dst[8:])
	h := (lo ^ hi) * 0x9E3779B97F4A7C15
	i := (h ^ h>>29) & t.vipMask
	for n := uint64(0); n <= t.vipMask; n++ {
		s := &t.vipSlots[i]
		if !s.used {
			return nil
		}
		if s.lo == lo && s.hi == hi {
			for _, ts := range s.sets {
				if ts.matches(protoBit, port) {
					return ts
				}
			}
			return nil
		}
		i = (i + 1) & t.vipMask
	}
	return nil
}
