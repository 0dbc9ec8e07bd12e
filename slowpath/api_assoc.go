package slowpath

import (
	"bytes"
	"container/heap"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
	"github.com/ipfront/ipfront/slowpath/config"
)

// Limits of GET /v1/associations pages.
const (
	DefaultAssocLimit = v1.DefaultAssocLimit
	MaxAssocLimit     = v1.MaxAssocLimit
)

// The bodies of GET /v1/associations are defined in package v1.
type (
	// AssociationsReply is one page of associations.
	AssociationsReply = v1.Associations
	// AssociationInfo is one client flow and the server it is bound to.
	AssociationInfo = v1.Association
)

// The order of a listing is stable while entries come and go: by shard,
// then within a shard by the key's hash (which fixes its home slot, so
// this is slot order without the displacement of probing), then by key. A
// cursor is the position of the last entry served; the next page starts
// strictly after it, so no entry is served twice and every entry present
// for the whole walk is served once.
type assocPos struct {
	shard int
	hash  uint64
	key   [keyBytes]byte
}

const keyBytes = 16 + 2 + 1 + 2 // address, port, protocol, set

func keyOf(k *assoc.Key) [keyBytes]byte {
	var b [keyBytes]byte
	copy(b[:16], k.Addr[:])
	binary.BigEndian.PutUint16(b[16:], k.Port)
	b[18] = k.Proto
	binary.BigEndian.PutUint16(b[19:], k.Set)
	return b
}

// cmp orders positions within one shard.
func (p *assocPos) cmp(o *assocPos) int {
	if p.hash != o.hash {
		if p.hash < o.hash {
			return -1
		}
		return 1
	}
	return bytes.Compare(p.key[:], o.key[:])
}

const cursorVersion = 1

func (p *assocPos) encode() string {
	var b [1 + 2 + 8 + keyBytes]byte
	b[0] = cursorVersion
	binary.BigEndian.PutUint16(b[1:], uint16(p.shard))
	binary.BigEndian.PutUint64(b[3:], p.hash)
	copy(b[11:], p.key[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

var errBadCursor = errors.New("invalid cursor")

func decodeCursor(s string) (*assocPos, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 1+2+8+keyBytes || b[0] != cursorVersion {
		return nil, errBadCursor
	}
	p := &assocPos{shard: int(binary.BigEndian.Uint16(b[1:])), hash: binary.BigEndian.Uint64(b[3:])}
	copy(p.key[:], b[11:])
	return p, nil
}

// assocEntry is a candidate for a page.
type assocEntry struct {
	pos assocPos
	k   assoc.Key
	v   assoc.Value
}

// pageHeap keeps the smallest entries of a shard seen so far, largest on
// top, so a page costs one walk of the shard and memory for one page.
type pageHeap []assocEntry

func (h pageHeap) Len() int           { return len(h) }
func (h pageHeap) Less(i, j int) bool { return h[i].pos.cmp(&h[j].pos) > 0 }
func (h pageHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *pageHeap) Push(x any)        { *h = append(*h, x.(assocEntry)) }
func (h *pageHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// assocQuery is a parsed GET /v1/associations.
type assocQuery struct {
	set       int // set id, -1 for any
	client    netip.Addr
	hasClient bool
	server    string // name or address; "" for any
	limit     int
	after     *assocPos
}

func (a *API) associations(w http.ResponseWriter, r *http.Request) {
	p := a.plane()
	if p == nil {
		writeError(w, http.StatusServiceUnavailable, ErrNotRunning)
		return
	}
	t := p.Tables()
	q, code, err := parseAssocQuery(r, t)
	if err != nil {
		writeError(w, code, err)
		return
	}
	writeJSON(w, http.StatusOK, listAssociations(p.Workers(), t, q, assoc.Now()))
}

func parseAssocQuery(r *http.Request, t *fastpath.Tables) (q assocQuery, code int, err error) {
	v := r.URL.Query()
	q = assocQuery{set: -1, limit: DefaultAssocLimit, server: v.Get("server")}
	if s := v.Get("set"); s != "" {
		if t != nil {
			for _, ts := range t.Sets() {
				if ts.Name == s {
					q.set = int(ts.ID)
				}
			}
		}
		if q.set < 0 {
			return q, http.StatusNotFound, fmt.Errorf("no target set %q: %w", s, ErrUnknownServer)
		}
	}
	if s := v.Get("client"); s != "" {
		if q.client, err = netip.ParseAddr(s); err != nil {
			return q, http.StatusBadRequest, fmt.Errorf("client %q is not an IP address", s)
		}
		q.hasClient = true
	}
	if s := v.Get("limit"); s != "" {
		if q.limit, err = strconv.Atoi(s); err != nil || q.limit < 1 || q.limit > MaxAssocLimit {
			return q, http.StatusBadRequest, fmt.Errorf("limit %q is not a number in 1..%d", s, MaxAssocLimit)
		}
	}
	if s := v.Get("cursor"); s != "" {
		if q.after, err = decodeCursor(s); err != nil {
			return q, http.StatusBadRequest, err
		}
	}
	return q, 0, nil
}

// listAssociations returns the page of q: up to q.limit entries after
// q.after, and a cursor when more follow.
func listAssociations(workers []PlaneWorker, t *fastpath.Tables, q assocQuery, now uint32) AssociationsReply {
	rep := AssociationsReply{Associations: []AssociationInfo{}}
	if t == nil {
		return rep
	}
	var client [16]byte
	if q.hasClient {
		client = q.client.As16() // IPv4 in IPv4-mapped form, as in keys
	}
	want := q.limit + 1 // one more tells whether another page follows
	var page []assocEntry
	first := 0
	if q.after != nil {
		first = q.after.shard
	}
	for shard := first; shard < len(workers) && len(page) < want; shard++ {
		need := want - len(page)
		h := make(pageHeap, 0, min(need, 1024))
		workers[shard].Assoc.Range(func(k assoc.Key, v assoc.Value) bool {
			if k.Kind != assoc.KindFlow || q.set >= 0 && int(k.Set) != q.set || q.hasClient && k.Addr != client {
				return true // persistence records, expectations and tag indexes are listed elsewhere
			}
			if q.server != "" {
				s := serverOf(t, &k, v)
				if s == nil || s.Name != q.server && s.Addr.String() != q.server {
					return true
				}
			}
			e := assocEntry{pos: assocPos{shard: shard, hash: k.Hash(), key: keyOf(&k)}, k: k, v: v}
			if q.after != nil && shard == q.after.shard && e.pos.cmp(q.after) <= 0 {
				return true
			}
			switch {
			case len(h) < need:
				heap.Push(&h, e)
			case e.pos.cmp(&h[0].pos) < 0:
				h[0] = e
				heap.Fix(&h, 0)
			}
			return true
		})
		slices.SortFunc(h, func(x, y assocEntry) int { return x.pos.cmp(&y.pos) })
		page = append(page, h...)
	}
	if len(page) > q.limit {
		page = page[:q.limit]
		rep.NextCursor = page[len(page)-1].pos.encode()
	}
	for i := range page {
		e := &page[i]
		info := AssociationInfo{
			Worker: workers[e.pos.shard].Name(), Client: netip.AddrFrom16(e.k.Addr).Unmap(), Port: e.k.Port,
			Protocol: config.Proto(e.k.Proto).String(), Idle: assoc.Age(now, e.v.LastSeen), Flags: assocFlags(e.v.Flags),
		}
		ts := t.Set(e.k.Set)
		if ts != nil {
			info.Set = ts.Name
		}
		if s := serverOf(t, &e.k, e.v); s != nil {
			info.Server, info.Address = s.Name, s.Addr.String()
			if e.v.NAT && ts != nil {
				info.NAT = netip.AddrFrom16(ts.VIP).Unmap().String() + "->" + info.Address
			}
		}
		if e.v.NAT && e.k.Proto == 6 {
			info.SeqOffset = int32(e.v.Tag)
		}
		rep.Associations = append(rep.Associations, info)
	}
	addPaths(workers, t, page, rep.Associations) // api_signalling.go
	return rep
}

// serverOf is the server an association was made for, or nil when its set
// is gone or its slot now holds another server.
func serverOf(t *fastpath.Tables, k *assoc.Key, v assoc.Value) *fastpath.Server {
	ts := t.Set(k.Set)
	if ts == nil {
		return nil
	}
	s := &ts.Servers[int(v.Server)&(fastpath.MaxServers-1)]
	if !s.Present || s.Gen != v.Gen {
		return nil
	}
	return s
}

func assocFlags(f uint8) []string {
	var out []string
	for _, x := range []struct {
		bit  uint8
		name string
	}{{assoc.FlagFIN, "fin"}, {assoc.FlagRST, "rst"}, {assoc.FlagShutdown, "shutdown"}, {assoc.FlagTagLearned, "tag"}} {
		if f&x.bit != 0 {
			out = append(out, x.name)
		}
	}
	return out
}
