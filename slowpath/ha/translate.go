package ha

import (
	"net/netip"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
)

// translator turns records that name servers by this instance's slots and
// generations into records that name them by set and address, and back,
// against one table generation. Each goroutine keeps its own; refresh
// rebuilds it when the generation in force changed.
type translator struct {
	tables  *fastpath.Tables
	byName  map[string]*fastpath.TargetSet
	byGroup map[uint16]*fastpath.TargetSet // a member set of each persistence group
	idAddr  map[uint32]netip.Addr          // server AddrID -> address
	addrID  map[netip.Addr]uint32
}

// refresh indexes t if it is not the generation already indexed.
func (tr *translator) refresh(t *fastpath.Tables) {
	if t == tr.tables {
		return
	}
	tr.tables = t
	tr.byName = map[string]*fastpath.TargetSet{}
	tr.byGroup = map[uint16]*fastpath.TargetSet{}
	tr.idAddr = map[uint32]netip.Addr{}
	tr.addrID = map[netip.Addr]uint32{}
	if t == nil {
		return
	}
	for _, ts := range t.Sets() {
		tr.byName[ts.Name] = ts
		if ts.Persist != nil {
			if _, ok := tr.byGroup[ts.Persist.Group]; !ok {
				tr.byGroup[ts.Persist.Group] = ts
			}
		}
		for i := range ts.Servers {
			if s := &ts.Servers[i]; s.Present && s.AddrID != 0 {
				tr.idAddr[s.AddrID] = s.Addr
				tr.addrID[s.Addr] = s.AddrID
			}
		}
	}
}

// export translates a local record (key k, value v; v unused for a delete)
// into a wire record. It reports false for what a mate could not use: a
// kind that is not replicated (expectations are the FTP helper's, tag index
// entries follow their flow), a set no longer configured, a server no
// longer in the slot (the record is stale here too).
func (tr *translator) export(op uint8, k *assoc.Key, v *assoc.Value, now uint32, r *record) bool {
	*r = record{op: op, kind: uint8(k.Kind), proto: k.Proto, addr: k.Addr, port: k.Port}
	switch k.Kind {
	case assoc.KindFlow:
		ts := tr.tables.Set(k.Set)
		if ts == nil {
			return false
		}
		r.set = ts.Name
		if op == opDelete {
			return true
		}
		s := &ts.Servers[v.Server&(fastpath.MaxServers-1)]
		if !s.Present || s.Gen != v.Gen {
			return false
		}
		r.server = s.Addr
	case assoc.KindPersist:
		ts := tr.byGroup[k.Set]
		if ts == nil {
			return false
		}
		r.set = ts.Name
		if op == opDelete {
			return true
		}
		a, ok := tr.idAddr[v.Tag]
		if !ok {
			return false
		}
		r.server = a
	default:
		return false
	}
	r.flags, r.nat, r.tag = v.Flags, v.NAT, v.Tag
	r.age = assoc.Age(now, v.LastSeen)
	return len(r.set) <= 255
}

// importMsg translates a mate's record into the control message that
// imports (or unimports) it here, with LastSeen on this instance's clock
// (now). It reports false when this instance's tables cannot hold it: the
// set or the server is not configured here (configurations differ, or a
// reload is under way).
func (tr *translator) importMsg(r *record, now uint32, m *fastpath.ControlMsg) bool {
	ts := tr.byName[r.set]
	if ts == nil || len(r.set) > 255 {
		return false
	}
	*m = fastpath.ControlMsg{Op: fastpath.ControlImport,
		Key: assoc.Key{Addr: r.addr, Port: r.port, Proto: r.proto, Kind: assoc.Kind(r.kind)}}
	if r.op == opDelete {
		m.Op = fastpath.ControlUnimport
	}
	switch assoc.Kind(r.kind) {
	case assoc.KindFlow:
		m.Key.Set = ts.ID
		if r.op == opDelete {
			return true
		}
		for i := range ts.Servers {
			if s := &ts.Servers[i]; s.Present && s.Addr == r.server {
				m.Value.Server, m.Value.Gen = uint8(i), s.Gen
				m.Value.Tag = r.tag
				break
			}
		}
		if m.Value.Gen == 0 {
			return false
		}
	case assoc.KindPersist:
		if ts.Persist == nil {
			return false
		}
		m.Key.Set = ts.Persist.Group
		if r.op == opDelete {
			return true
		}
		id, ok := tr.addrID[r.server]
		if !ok {
			return false
		}
		m.Value.Tag = id
	default:
		return false
	}
	m.Value.Flags, m.Value.NAT = r.flags, r.nat
	m.Value.LastSeen = (now - min(r.age, assoc.MaxAge)) & assoc.ClockMask
	return true
}
