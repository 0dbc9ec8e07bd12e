package fastpath

// NAT forwarding (forwarding = "nat"): ipfront is in the path both ways.
//
// # Translation
//
// A target set with Forwarding FwdNAT translates, and nothing else is
// translated: ipfront is not an open NAT.
//
//   - client -> VIP:port (port in the set's Ports): the destination address
//     becomes the chosen server's; the client's address and port and the
//     destination port are kept, so servers see (and log) real clients.
//   - server:port -> client (the reply; the server's default route points at
//     ipfront): the source address becomes the VIP again.
//   - ICMP errors, both ways: an error about a reply (a router on the
//     client's side quotes VIP:port -> client) goes to the server with the
//     outer destination and the quoted source translated; an error a server
//     sends about a client's packet (quoting client -> server:port) leaves
//     from the VIP with the quoted destination translated.
//
// Checksums are updated incrementally (RFC 1624): the IPv4 header, TCP and
// UDP (a zero IPv4 UDP checksum stays zero), ICMPv6 over its pseudo-header,
// and inside ICMP errors the quoted IPv4 header and quoted TCP or UDP
// checksum when the quote holds all of it (an IPv6 quote only when its
// transport header follows the fixed header directly), with the ICMP checksum
// following every word that changed. SCTP's CRC32c covers no address.
//
// The association is the translation: a NAT flow record (assoc.KindFlow,
// Value.NAT) names the server slot; the VIP and ports come from the set.
// Replies and the segments of a helper's data connections find their record
// whichever worker owns it: the engine looks in its own shard (Find), then
// in every other worker's (assoc.Shard.Lookup, bounded and lock-free; a Busy
// answer counts as absent). Two-armed setups need it anyway (the client's
// and the server's packets arrive at the workers of different interfaces),
// so ipfront does not rely on a symmetric RSS key. A record is refreshed
// only by its owner, which sees the flow's packets of at least one
// direction. Replies whose record cannot be found are translated only when
// the stateless hash names the replying server (a flow forwarded without an
// association while the table was full goes there).
//
// # Egress
//
// A frame leaves by the interface the slow path resolved from the kernel's
// routes: towards a server, Server.Egress with the next hop's MAC in
// Server.MAC[Egress]; towards a client, the set's Tables.Routes (longest
// prefix, gateway MAC, or the neighbour's MAC for on-link clients), and
// while the route's next hop is not known, the MAC and interface the
// client's own frames came from (learn.go). The source MAC is that
// interface's. A frame whose egress is another interface
// than the one it arrived on is handed to a worker of that interface through
// a per-pair ring (handoff.go). VLAN tags are kept as received.
//
// # Helpers (names shared with slowpath/helper; keep them in step)
//
// TargetSet.Helper names the set's application helper (HelperFTP). For such
// a set:
//
//   - Punt. A TCP segment of a control connection (client -> VIP:p or
//     server:p -> client with p in the set's Ports) that carries payload is
//     punted as it arrived (untranslated: from the client it is addressed to
//     the VIP, from a server it comes from the server's address); its
//     ring.Meta names the set. Segments without payload and the data
//     connections are translated by the worker.
//   - Inject. The helper hands a (rewritten) punted segment back with
//     Dataplane.Inject, to any worker; the worker translates it like a
//     received one, never punts it again, and leaves its sequence and
//     acknowledgement numbers as the helper wrote them.
//   - Sequence offset. Value.Tag of a NAT TCP flow record is the offset δ
//     (uint32 arithmetic, so a negative offset is its two's complement):
//     the number of bytes the helper has added so far to the server ->
//     client byte stream by rewriting payload. The worker applies it to
//     every segment it translates that was not injected: server -> client,
//     seq += δ; client -> server with ACK set, ack -= δ, and every SACK
//     block's edges -= δ. The client -> server stream must keep its length
//     (the FTP helper never rewrites it: the client's address is
//     preserved). With one offset per flow, a pure ACK that acknowledges
//     bytes from before a rewrite but reaches the worker after the helper
//     changed δ is adjusted by the new δ; payload segments are exact, as
//     the helper adjusts those itself. The helper changes δ with a
//     ControlUpdate of the flow record (Dataplane.Owner finds its shard).
//   - Expectations (assoc.KindExpect, inserted with ControlInsert to
//     Dataplane.Owner(&key): records with no flow of their own live in the
//     shard their hash names, and every worker reads them). The key is
//     {Addr: the client's address, Port, Proto: TCP, Set: the set id}, the
//     value {Server: slot, Gen: the slot's generation, Flags, Tag,
//     LastSeen: assoc.Now()}:
//     passive (Flags&ExpectActive == 0): Port is the VIP port P the
//     client will connect to; a connection from the client to VIP:P
//     opened by a SYN goes to the server at port P;
//     active (Flags&ExpectActive != 0): Port is the port the client
//     announced; a connection the server opens (SYN) from port Tag (0: any
//     port) to the client's address and Port leaves from VIP:Tag.
//     Either makes a NAT flow record keyed by the client's address and
//     port in the shard of the worker that saw the SYN; the data
//     connection then needs no port of the set. An expectation is not
//     consumed: it expires TargetSet.ExpectTimeout seconds after LastSeen
//     (the sweep removes it; lookups ignore it from then on), or when the
//     helper deletes it (ControlDelete). The steering program must see the
//     servers' side of data connections: their source ports go in
//     TargetSet.ReturnPorts (FTP: 20, and the servers' passive range).

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sort"
	"sync/atomic"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// Helpers (TargetSet.Helper).
const (
	HelperNone uint8 = iota // no helper: nothing is punted
	HelperFTP               // FTP: control connections' payload to slowpath/helper/ftp
	// NumHelpers is the number of helpers.
	NumHelpers
)

// helperNames are the helpers' configuration names.
var helperNames = [NumHelpers]string{"", "ftp"}

// HelperName returns the configuration name of helper h ("" for none).
func HelperName(h uint8) string {
	if h < NumHelpers {
		return helperNames[h]
	}
	return "unknown"
}

// DefaultExpectTimeout is the lifetime of an unused expectation, in
// seconds, when TargetSet.ExpectTimeout is 0.
const DefaultExpectTimeout = 60

// ExpectActive is the Value.Flags bit of an expectation (assoc.KindExpect)
// for an active data connection, opened by the server.
const ExpectActive uint8 = 1

// Errors of NAT sets NewTables refuses.
var (
	errHelperNoNAT  = errors.New("a helper or return ports need forwarding = nat")
	errHelper       = errors.New("unknown helper")
	errEgress       = errors.New("server egress interface out of range")
	errRouteIface   = errors.New("route interface out of range")
	errRoutePrefix  = errors.New("route prefix must be an IPv6 prefix (IPv4 in IPv4-mapped form)")
	errRouteNoRoute = errors.New("on-link host outside every on-link route")
)

// checkNAT validates the NAT fields of ts.
func (ts *TargetSet) checkNAT() error {
	if ts.Helper >= NumHelpers {
		return errHelper
	}
	if ts.Forwarding != FwdNAT && (ts.Helper != HelperNone || len(ts.ReturnPorts) > 0) {
		return errHelperNoNAT
	}
	for s := range ts.Servers {
		if ts.Servers[s].Present && ts.Servers[s].Egress >= MaxInterfaces {
			return errEgress
		}
	}
	return nil
}

// expectTimeout is the lifetime of ts's expectations in seconds.
func (ts *TargetSet) expectTimeout() uint32 {
	if ts.ExpectTimeout == 0 {
		return DefaultExpectTimeout
	}
	return min(ts.ExpectTimeout, assoc.MaxAge)
}

// expectAges are the sweep ages of expectations by set id: 0 (at once)
// for sets without a helper, whose expectations nobody should make.
func expectAges(sets []*TargetSet, maxID int) []uint32 {
	ages := make([]uint32, maxID+1)
	for _, ts := range sets {
		if ts.Helper != HelperNone {
			ages[ts.ID] = ts.expectTimeout()
		}
	}
	return ages
}

// natCand is a NAT set one of whose servers has a given address.
type natCand struct {
	ts   *TargetSet
	slot uint8
}

// natSlot is an open-addressing bucket of natIndex.
type natSlot struct {
	lo, hi uint64 // the server address as two little-endian words
	used   bool
	cands  []natCand
}

// natIndex finds the NAT sets a server belongs to by its address, for the
// frames servers send.
type natIndex struct {
	slots []natSlot
	mask  uint64
}

// newNATIndex indexes the present servers of every NAT set.
func newNATIndex(sets []*TargetSet) natIndex {
	by := map[[16]byte][]natCand{}
	var order [][16]byte
	for _, ts := range sets {
		if ts.Forwarding != FwdNAT {
			continue
		}
		for s := range ts.Servers {
			srv := &ts.Servers[s]
			if !srv.Present {
				continue
			}
			a := srv.Addr.As16()
			if by[a] == nil {
				order = append(order, a)
			}
			by[a] = append(by[a], natCand{ts, uint8(s)})
		}
	}
	if len(by) == 0 {
		return natIndex{}
	}
	n := 4
	for n < 2*len(by) {
		n *= 2
	}
	x := natIndex{slots: make([]natSlot, n), mask: uint64(n - 1)}
	for _, a := range order {
		i := vipHash(&a) & x.mask
		for x.slots[i].used {
			i = (i + 1) & x.mask
		}
		x.slots[i] = natSlot{lo: binary.LittleEndian.Uint64(a[:8]), hi: binary.LittleEndian.Uint64(a[8:]), used: true, cands: by[a]}
	}
	return x
}

// lookup returns the NAT sets holding a server with address a, or nil.
func (x *natIndex) lookup(a *[16]byte) []natCand {
	if x.slots == nil {
		return nil
	}
	lo, hi := binary.LittleEndian.Uint64(a[:8]), binary.LittleEndian.Uint64(a[8:])
	h := (lo ^ hi) * 0x9E3779B97F4A7C15
	i := (h ^ h>>29) & x.mask
	for n := uint64(0); n <= x.mask; n++ {
		s := &x.slots[i]
		if !s.used {
			return nil
		}
		if s.lo == lo && s.hi == hi {
			return s.cands
		}
		i = (i + 1) & x.mask
	}
	return nil
}

// vipSets returns every target set on VIP dst, or nil.
func (t *Tables) vipSets(dst *[16]byte) []*TargetSet {
	lo, hi := binary.LittleEndian.Uint64(dst[:8]), binary.LittleEndian.Uint64(dst[8:])
	h := (lo ^ hi) * 0x9E3779B97F4A7C15
	i := (h ^ h>>29) & t.vipMask
	for n := uint64(0); n <= t.vipMask; n++ {
		s := &t.vipSlots[i]
		if !s.used {
			return nil
		}
		if s.lo == lo && s.hi == hi {
			return s.sets
		}
		i = (i + 1) & t.vipMask
	}
	return nil
}

// NATServers returns, for the steering program, the addresses of every NAT
// set's servers with the source ports and protocols their traffic back to
// clients uses: the set's Ports and ReturnPorts, for its protocols.
func (t *Tables) NATServers() []NATServer {
	var out []NATServer
	idx := map[netip.Addr]int{}
	for _, ts := range t.Sets() {
		if ts.Forwarding != FwdNAT {
			continue
		}
		for s := range ts.Servers {
			srv := &ts.Servers[s]
			if !srv.Present {
				continue
			}
			j, ok := idx[srv.Addr]
			if !ok {
				j = len(out)
				idx[srv.Addr] = j
				out = append(out, NATServer{Addr: srv.Addr})
			}
			ns := &out[j]
			ns.Protos |= ts.Protos
			ns.Ports = append(ns.Ports, ts.Ports...)
			ns.Ports = append(ns.Ports, ts.ReturnPorts...)
		}
	}
	for i := range out {
		out[i].Ports = mergeRanges(out[i].Ports)
	}
	return out
}

// NATServer is one NAT server as the steering program matches its traffic:
// frames from Addr whose protocol is in Protos and source port in Ports
// (TCP, UDP and SCTP), or ICMP errors from Addr, go to the workers unless
// addressed to the host itself.
type NATServer struct {
	Addr   netip.Addr
	Protos uint8       // ProtoBit* mask
	Ports  []PortRange // sorted, disjoint, not adjacent
}

// mergeRanges sorts port ranges and merges overlapping or adjacent ones.
func mergeRanges(rs []PortRange) []PortRange {
	if len(rs) == 0 {
		return nil
	}
	rs = append([]PortRange(nil), rs...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].First < rs[j].First })
	out := rs[:1]
	for _, r := range rs[1:] {
		last := &out[len(out)-1]
		if uint32(r.First) <= uint32(last.Last)+1 {
			last.Last = max(last.Last, r.Last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// Hop is where a frame leaves for its next hop: a data-plane interface
// (index like Server.MAC) and the next hop's MAC.
type Hop struct {
	Iface uint8
	MAC   [6]byte
}

// Route is one client-side route of NAT replies, from the kernel's routing
// table: destinations in Prefix leave by Iface, to the gateway whose MAC is
// MAC (HasMAC false: not resolved yet), or, OnLink, to the destination
// itself, whose MAC comes from the neighbour entries given to NewRoutes.
type Route struct {
	Prefix netip.Prefix // IPv6; IPv4 in IPv4-mapped form (MappedPrefix)
	Iface  uint8
	OnLink bool
	MAC    [6]byte
	HasMAC bool
}

// Routes is one immutable snapshot of the client-side routes and on-link
// neighbours, longest prefix first.
type Routes struct {
	routes []routeEntry
	hosts  map[[16]byte]Hop
}

type routeEntry struct {
	lo, hi, mlo, mhi uint64 // prefix and mask as little-endian words of the 16 bytes
	Route
}

// NewRoutes makes a snapshot of routes and of the on-link neighbours
// (addresses in IPv6 or IPv4-mapped form; their MAC on the interface of the
// on-link route that holds them).
func NewRoutes(routes []Route, hosts map[netip.Addr][6]byte) (*Routes, error) {
	r := &Routes{hosts: make(map[[16]byte]Hop, len(hosts))}
	for _, rt := range routes {
		if rt.Iface >= MaxInterfaces {
			return nil, errRouteIface
		}
		p := rt.Prefix
		if !p.IsValid() || p.Addr().Is4() {
			return nil, errRoutePrefix
		}
		p = p.Masked()
		a := p.Addr().As16()
		var m [16]byte
		for b := 0; b < p.Bits(); b++ {
			m[b/8] |= 0x80 >> (b % 8)
		}
		rt.Prefix = p
		r.routes = append(r.routes, routeEntry{
			lo: binary.LittleEndian.Uint64(a[:8]), hi: binary.LittleEndian.Uint64(a[8:]),
			mlo: binary.LittleEndian.Uint64(m[:8]), mhi: binary.LittleEndian.Uint64(m[8:]), Route: rt})
	}
	sort.SliceStable(r.routes, func(i, j int) bool { return r.routes[i].Prefix.Bits() > r.routes[j].Prefix.Bits() })
	for a, mac := range hosts {
		k := a.As16()
		e := r.route(&k)
		if e == nil || !e.OnLink {
			return nil, errRouteNoRoute
		}
		r.hosts[k] = Hop{Iface: e.Iface, MAC: mac}
	}
	return r, nil
}

// route returns the longest route holding dst, or nil.
func (r *Routes) route(dst *[16]byte) *routeEntry {
	lo, hi := binary.LittleEndian.Uint64(dst[:8]), binary.LittleEndian.Uint64(dst[8:])
	for i := range r.routes {
		e := &r.routes[i]
		if lo&e.mlo == e.lo && hi&e.mhi == e.hi {
			return e
		}
	}
	return nil
}

// Lookup returns the next hop towards dst (IPv6 or IPv4-mapped). routed is
// false without a route; ok is false with a route whose next hop's MAC is
// not known, and h.Iface is then the route's interface.
func (r *Routes) Lookup(dst *[16]byte) (h Hop, routed, ok bool) {
	e := r.route(dst)
	if e == nil {
		return Hop{}, false, false
	}
	if !e.OnLink {
		return Hop{Iface: e.Iface, MAC: e.MAC}, true, e.HasMAC
	}
	if h, ok = r.hosts[*dst]; !ok {
		h.Iface = e.Iface
	}
	return h, true, ok
}

// Len returns the number of routes and of on-link neighbours.
func (r *Routes) Len() (routes, hosts int) { return len(r.routes), len(r.hosts) }

// RouteCell is where the slow path publishes the client-side routes of NAT
// replies; the same cell goes into every table generation, so a route or
// neighbour change is one atomic store, not a new generation.
type RouteCell struct{ p atomic.Pointer[Routes] }

// Store publishes r. Safe from any goroutine.
func (c *RouteCell) Store(r *Routes) { c.p.Store(r) }

// Load returns the routes last stored, or nil. Safe from any goroutine.
func (c *RouteCell) Load() *Routes {
	if c == nil {
		return nil
	}
	return c.p.Load()
}

// natState is an engine's NAT state: other workers' shards, the interfaces'
// MACs, and each frame's egress decision for the worker.
type natState struct {
	peers []*assoc.Shard
	macs  [MaxInterfaces][6]byte
	// learned holds the clients this engine received frames from;
	// learners are the other engines' (learn.go).
	learned  learnTable
	learners []*learnTable
	// cross[i] is set when frame i of the batch last processed leaves by
	// interface egress[i], not by the engine's; the worker reads and clears
	// it (takeEgress).
	cross  [MaxBatch]bool
	egress [MaxBatch]uint8

	// Frames of the batch from a NAT server (pre set by natPrepare in
	// Process's first pass): the sets the server is in, and e.keys,
	// e.hashes and e.homes hold the key of the first one's flow.
	pre   [MaxBatch]bool
	cands [MaxBatch][]natCand
	npre  int // frames natPrepare keyed since the last natPrefetch

	// Last client route looked up: replies mostly go to few clients.
	lastRoutes     *Routes
	lastLo, lastHi uint64
	lastHop        Hop
	lastRouted     bool
	lastOK         bool
}

// SetInterfaces gives the engine the MAC of every data-plane interface
// (indexed like Server.MAC), the source MACs of frames it sends out of
// another interface than its own. Call before the worker starts.
func (e *Engine) SetInterfaces(macs [][6]byte) {
	copy(e.nat.macs[:], macs)
	e.nat.macs[e.iface&(MaxInterfaces-1)] = e.srcMAC
}

// SetPeers gives the engine the other workers' shards, which it reads for
// records it does not own (NAT replies, expectations). Call before the
// worker starts.
func (e *Engine) SetPeers(shards []*assoc.Shard) {
	e.nat.peers = e.nat.peers[:0]
	for _, s := range shards {
		if s != e.shard {
			e.nat.peers = append(e.nat.peers, s)
		}
	}
}

// setNATPeers gives the engine the other workers' shards and learned
// clients. Call before the workers start.
func (e *Engine) setNATPeers(engines []*Engine) {
	shards := make([]*assoc.Shard, len(engines))
	e.nat.learners = e.nat.learners[:0]
	for i, o := range engines {
		shards[i] = o.shard
		if o != e {
			e.nat.learners = append(e.nat.learners, &o.nat.learned)
		}
	}
	e.SetPeers(shards)
}

// takeEgress returns, and clears, where frame i of the batch last processed
// must leave when not by the engine's own interface.
func (e *Engine) takeEgress(i int) (iface int, cross bool) {
	if !e.nat.cross[i] {
		return e.iface, false
	}
	e.nat.cross[i] = false
	return int(e.nat.egress[i]), true
}

// toward rewrites frame i's MAC addresses for its next hop out of interface
// iface and records its egress.
func (e *Engine) toward(frame []byte, i int, iface uint8, mac [6]byte) {
	eth := packet.Ethernet(frame)
	eth.SetDst(mac)
	if int(iface) == e.iface {
		eth.SetSrc(e.srcMAC)
		return
	}
	eth.SetSrc(e.nat.macs[iface])
	e.nat.cross[i], e.nat.egress[i] = true, iface
}

// forwardNAT translates frame i, a client's packet for slot of ts (or an
// ICMP error about a reply to one), and addresses it to the server's next
// hop. A helper set's control segments with payload are punted instead.
func (e *Engine) forwardNAT(frame []byte, ts *TargetSet, slot uint8, i int) Action {
	f := &e.flows[i]
	srv := &ts.Servers[slot]
	eg := srv.Egress
	if !srv.HasMAC[eg] {
		e.local.Drops[DropNeighborUnresolved]++
		return Drop
	}
	to := srv.Addr.As16()
	if f.ICMPError {
		natICMP(frame, f, true, &to)
	} else {
		helper := ts.Helper != HelperNone && f.Proto == packet.ProtoTCP && !e.noPunt
		if helper && tcpPayload(frame, f) > 0 {
			return Punt
		}
		var delta uint32
		if helper && f.TCPFlags&packet.TCPFlagACK != 0 {
			if idx, found := e.find(i); found {
				delta = e.shard.Aux(idx)
			}
		}
		if e.hits[i] < 0 && !e.noPunt {
			// A flow the resolving pass did not find: new, mostly. Learning
			// once per flow keeps the table's stores (seqlocked) off the
			// per-packet path.
			e.learnClient(frame, f)
		}
		natAddr(frame, f, true, &to)
		if delta != 0 {
			adjustAck(frame, f, delta)
		}
	}
	e.toward(frame, i, eg, srv.MAC[eg])
	e.local.Forwarded[FwdNAT]++
	return Transmit
}

// natPrepare is Process's first pass for frame i, which no set serves: if
// a NAT server sent it, it notes the server's sets and computes the flow key
// of the first and its home line, which natPrefetch loads with the rest of
// the batch's.
func (e *Engine) natPrepare(t *Tables, f *packet.Flow, i int) {
	cands := t.nat.lookup(&f.Src)
	e.nat.cands[i] = cands
	if cands == nil {
		e.nat.pre[i] = false
		return
	}
	e.keys[i] = assoc.PackFlow(&f.Dst, f.DstPort, f.Proto, cands[0].ts.ID)
	h := e.keys[i].Hash()
	e.hashes[i], e.homes[i] = h, e.shard.Home(h)
	e.nat.pre[i] = true
	e.nat.npre++
}

// natPrefetch loads the home lines of the batch's NAT replies (its first n
// frames), in a loop of their own like Process's prefetching loop, so their
// misses overlap; it costs one comparison in a batch without replies.
func (e *Engine) natPrefetch(n int) uint64 {
	if e.nat.npre == 0 {
		return 0
	}
	e.nat.npre = 0
	var sink uint64
	for i := 0; i < n; i++ {
		if e.sets[i] == nil && e.nat.pre[i] {
			sink += e.shard.Prefetch(e.homes[i])
		}
	}
	return sink
}

// forwardNATOther handles a frame addressed to no port of any target set
// while NAT sets exist: a NAT server's reply (or ICMP error, or data
// connection) to a client, or a client's packet of a helper's data
// connection to a VIP. Anything else is dropped as no_target_set.
func (e *Engine) forwardNATOther(frame []byte, i int, now uint32) Action {
	t := e.tables
	f := &e.flows[i]
	if e.nat.pre[i] {
		return e.natReply(frame, e.nat.cands[i], i, now)
	}
	if sets := t.vipSets(&f.Dst); sets != nil {
		return e.natData(frame, sets, i, now)
	}
	e.local.Drops[DropNoTargetSet]++
	return Drop
}

// natLookup finds a record: in the engine's shard (idx >= 0) or, read with
// the bounded lock-free reader, in another worker's (idx < 0).
func (e *Engine) natLookup(k *assoc.Key) (v assoc.Value, idx int, found bool) {
	p := k.Pack()
	h := p.Hash()
	return e.natLookupAt(k, &p, h, e.shard.Home(h))
}

// natLookupAt is natLookup with k's packed form, hash and home line given.
func (e *Engine) natLookupAt(k *assoc.Key, p *assoc.Packed, h uint64, home int) (v assoc.Value, idx int, found bool) {
	if idx, found := e.shard.FindAt(p, home); found {
		return e.shard.Value(idx), idx, true
	}
	for _, s := range e.nat.peers {
		if v, r := s.Lookup(k, h); r == assoc.Found {
			return v, -1, true
		}
	}
	return assoc.Value{}, -1, false
}

// natNew records a NAT flow k for slot of ts in the engine's shard, for a
// data connection an expectation admitted, replacing a record of k there (a
// finished connection of the same client port, or this one's when its SYN
// is retransmitted). If the shard has no room the connection goes
// unrecorded, and its next packets look for the expectation again.
func (e *Engine) natNew(ts *TargetSet, k *assoc.Key, slot uint8, now uint32) {
	e.local.ExpectUsed++ // a SYN an expectation admitted
	p := k.Pack()
	idx, found := e.shard.FindPacked(&p, p.Hash())
	if idx < 0 {
		e.local.Stateless++
		return
	}
	if found {
		// A finished connection of the same client port (clients reuse a
		// port towards other destinations): the expectation decides.
		e.countAssoc(ts.ID, e.shard.Meta(idx).Server(), -1)
	}
	e.shard.PutPacked(idx, &p, assoc.Value{Server: slot, Gen: ts.Servers[slot].Gen, NAT: true, Flags: assoc.FlagProven, LastSeen: now})
	e.emit(ChangeUpsert, idx)
	e.local.NewAssociations++
	e.countAssoc(ts.ID, slot, 1)
}

// expectation returns a live expectation k of ts admitting slot: one
// whose server still holds its slot and whose timeout has not run out.
func (e *Engine) expectation(ts *TargetSet, k *assoc.Key, now uint32) (assoc.Value, bool) {
	v, _, found := e.natLookup(k)
	if !found {
		return v, false
	}
	srv := &ts.Servers[v.Server&(MaxServers-1)]
	if !srv.Present || srv.Gen != v.Gen || assoc.Age(now, v.LastSeen) > ts.expectTimeout() {
		return v, false
	}
	return v, true
}

// natReply translates frame i, sent by a server of the NAT sets cands
// (a reply, an ICMP error about a client's packet, or an active data
// connection), to leave from the VIP.
func (e *Engine) natReply(frame []byte, cands []natCand, i int, now uint32) Action {
	f := &e.flows[i]
	bit := ProtoBit(f.Proto)
	syn := f.Proto == packet.ProtoTCP && !f.ICMPError && f.TCPFlags&(packet.TCPFlagSYN|packet.TCPFlagACK) == packet.TCPFlagSYN
	for j, c := range cands {
		ts := c.ts
		if ts.Protos&bit == 0 {
			continue
		}
		control := ts.matches(bit, f.SrcPort)
		if !control && ts.Helper == HelperNone {
			continue
		}
		k := assoc.Key{Addr: f.Dst, Port: f.DstPort, Proto: f.Proto, Set: ts.ID}
		var v assoc.Value
		var idx int
		var found bool
		if j == 0 {
			v, idx, found = e.natLookupAt(&k, &e.keys[i], e.hashes[i], e.homes[i])
		} else {
			v, idx, found = e.natLookup(&k)
		}
		srv := &ts.Servers[c.slot]
		mine := found && v.Server == c.slot && v.Gen == srv.Gen
		if found && !mine {
			// A client port reused across destination ports can leave a
			// finished connection's record, naming another server, in
			// one shard while this server's flow is in another (RSS
			// hashes the destination port too).
			v, idx, mine = e.natLookupServer(&k, c.slot, srv.Gen)
		}
		switch {
		case syn && ts.Helper != HelperNone && e.activeExpected(ts, c.slot, &k, f.SrcPort, now):
			// An active data connection the control connection announced,
			// whatever an older flow of the client's port recorded (a
			// retransmitted SYN records the flow again).
			e.natNew(ts, &k, c.slot, now)
			v = assoc.Value{}
		case mine:
			if idx >= 0 {
				e.shard.Touch(idx, now)
			}
		case found:
			continue // the client's flow is another server's
		case control:
			// A flow without a record went where the stateless hash
			// sent it (the table was full); nothing else is ours.
			if ts.Maglev.Lookup(ts.Seed.Hash(f.Dst, f.DstPort, f.Proto)) != c.slot {
				continue
			}
		default:
			continue
		}
		if control && ts.Helper != HelperNone && f.Proto == packet.ProtoTCP && !f.ICMPError && !e.noPunt &&
			tcpPayload(frame, f) > 0 {
			e.sets[i], e.hashes[i] = ts, k.Hash() // for the punt ring's Meta
			return Punt
		}
		var delta uint32
		if ts.Helper != HelperNone {
			delta = v.Tag // else the client's sequence mark (engine_guard.go)
		}
		return e.natOut(frame, ts, i, delta)
	}
	e.local.Drops[DropNATNoAssociation]++
	return Drop
}

// natLookupServer finds record k naming server slot (generation gen) of its
// set, in the engine's shard (idx >= 0) or another worker's.
func (e *Engine) natLookupServer(k *assoc.Key, slot uint8, gen uint32) (v assoc.Value, idx int, found bool) {
	p := k.Pack()
	h := p.Hash()
	if idx, ok := e.shard.FindPacked(&p, h); ok {
		if m := e.shard.Meta(idx); m.Server() == slot && m.Gen() == gen {
			return e.shard.Value(idx), idx, true
		}
	}
	for _, s := range e.nat.peers {
		if v, r := s.Lookup(k, h); r == assoc.Found && v.Server == slot && v.Gen == gen {
			return v, -1, true
		}
	}
	return assoc.Value{}, -1, false
}

// activeExpected reports whether a live active expectation of ts admits a
// connection from server slot's port sport to the client and port of flow
// key k.
func (e *Engine) activeExpected(ts *TargetSet, slot uint8, k *assoc.Key, sport uint16, now uint32) bool {
	xk := *k
	xk.Kind = assoc.KindExpect
	x, ok := e.expectation(ts, &xk, now)
	return ok && x.Flags&ExpectActive != 0 && x.Server == slot && (x.Tag == 0 || x.Tag == uint32(sport))
}

// natOut rewrites frame i, from a server of ts, to come from the VIP, adds
// the flow's sequence offset delta (TCP, not injected) and addresses it to
// the client's next hop.
func (e *Engine) natOut(frame []byte, ts *TargetSet, i int, delta uint32) Action {
	f := &e.flows[i]
	hop, ok := e.clientHop(&f.Dst)
	if !ok {
		return Drop
	}
	if f.ICMPError {
		natICMP(frame, f, false, &ts.VIP)
		e.local.ICMPForwarded++
	} else {
		natAddr(frame, f, false, &ts.VIP)
		if delta != 0 && f.Proto == packet.ProtoTCP && !e.noPunt {
			tcp := frame[f.L4Off:]
			adjust32(tcp, tcpSeqOff, delta)
		}
	}
	e.toward(frame, i, hop.Iface, hop.MAC)
	e.local.Forwarded[FwdNAT]++
	return Transmit
}

// clientHop returns the next hop towards client dst, counting a drop when
// there is none.
func (e *Engine) clientHop(dst *[16]byte) (Hop, bool) {
	rt := e.tables.Routes.Load()
	if rt == nil {
		e.local.Drops[DropNATNoRoute]++
		return Hop{}, false
	}
	n := &e.nat
	lo, hi := binary.LittleEndian.Uint64(dst[:8]), binary.LittleEndian.Uint64(dst[8:])
	if rt != n.lastRoutes || lo != n.lastLo || hi != n.lastHi {
		n.lastHop, n.lastRouted, n.lastOK = rt.Lookup(dst)
		n.lastRoutes, n.lastLo, n.lastHi = rt, lo, hi
	}
	switch {
	case !n.lastRouted:
		e.local.Drops[DropNATNoRoute]++
		return Hop{}, false
	case !n.lastOK:
		// Not known to the kernel yet: the hop the client's own frames
		// came from, if it came by the route's interface (learn.go).
		if h, ok := e.learnedHop(dst, n.lastHop.Iface); ok {
			return h, true
		}
		e.local.Drops[DropNeighborUnresolved]++
		return Hop{}, false
	}
	return n.lastHop, true
}

// natData handles frame i, a client's packet (or an ICMP error about a
// reply to one) to a VIP port no set serves: a helper's data connection,
// found by its flow record or admitted by a passive expectation.
func (e *Engine) natData(frame []byte, sets []*TargetSet, i int, now uint32) Action {
	f := &e.flows[i]
	bit := ProtoBit(f.Proto)
	syn := f.Proto == packet.ProtoTCP && !f.ICMPError && f.TCPFlags&(packet.TCPFlagSYN|packet.TCPFlagACK) == packet.TCPFlagSYN
	for _, ts := range sets {
		if ts.Helper == HelperNone || ts.Protos&bit == 0 {
			continue
		}
		k := assoc.Key{Addr: f.Src, Port: f.SrcPort, Proto: f.Proto, Set: ts.ID}
		v, idx, found := e.natLookup(&k)
		var slot uint8
		var xv assoc.Value
		expected := false
		if syn {
			x := k
			x.Kind, x.Port = assoc.KindExpect, f.DstPort
			var ok bool
			xv, ok = e.expectation(ts, &x, now)
			expected = ok && xv.Flags&ExpectActive == 0
		}
		switch {
		case expected:
			// A passive data connection the control connection announced,
			// whatever an older flow of the same client port recorded
			// (clients reuse a port towards other destinations; a
			// retransmitted SYN records the flow again).
			slot = xv.Server
			e.natNew(ts, &k, slot, now)
		case found:
			slot = v.Server
			srv := &ts.Servers[slot&(MaxServers-1)]
			if !srv.Present || srv.Gen != v.Gen {
				continue
			}
			if idx >= 0 && !f.ICMPError {
				if fl := teardownFlags(f); fl != 0 {
					e.shard.Mark(idx, fl)
					e.emit(ChangeUpsert, idx)
				}
				e.shard.Touch(idx, now)
			}
		default:
			continue
		}
		srv := &ts.Servers[slot&(MaxServers-1)]
		if !srv.HasMAC[srv.Egress] {
			e.local.Drops[DropNeighborUnresolved]++
			return Drop
		}
		to := srv.Addr.As16()
		if f.ICMPError {
			natICMP(frame, f, true, &to)
			e.local.ICMPForwarded++
		} else {
			if syn && !e.noPunt {
				e.learnClient(frame, f)
			}
			natAddr(frame, f, true, &to)
		}
		e.toward(frame, i, srv.Egress, srv.MAC[srv.Egress])
		j := ts.ID*MaxServers + uint16(slot&(MaxServers-1))
		e.local.ServerPackets[j]++
		e.local.ServerBytes[j] += uint64(len(frame))
		e.markDirty(j)
		e.local.Forwarded[FwdNAT]++
		return Transmit
	}
	e.local.Drops[DropNoTargetSet]++
	return Drop
}

// TCP header offsets the NAT path rewrites.
const (
	tcpSeqOff   = 4
	tcpAckOff   = 8
	tcpDOffOff  = 12
	tcpCsumOff  = 16
	udpCsumOff  = 6
	tcpOptSACK  = 5
	tcpOptEnd   = 0
	tcpOptNOP   = 1
	ipv4SrcOff  = 12
	ipv4CsumOff = 10
	ipv6SrcOff  = 8
	ipv6NextOff = 6
)

// tcpPayload returns the number of payload bytes of frame's TCP segment.
func tcpPayload(frame []byte, f *packet.Flow) int {
	tcp := frame[f.L4Off:]
	return int(f.L3Off) + int(f.Len) - int(f.L4Off) - int(tcp[tcpDOffOff]>>4)*4
}

// addrOff returns the offset in the IP header of its source (src) or
// destination address and the address's length.
func addrOff(family uint8, src bool) (off, n int) {
	if family == 4 {
		if src {
			return ipv4SrcOff, 4
		}
		return ipv4SrcOff + 4, 4
	}
	if src {
		return ipv6SrcOff, 16
	}
	return ipv6SrcOff + 16, 16
}

// natAddr rewrites frame's destination address (toServer) or source
// address to `to` (16 bytes, IPv4-mapped for IPv4), updating the IPv4 header
// checksum and the TCP or UDP checksum.
func natAddr(frame []byte, f *packet.Flow, toServer bool, to *[16]byte) {
	ip := frame[f.L3Off:]
	off, n := addrOff(f.Family, !toServer)
	field := ip[off : off+n]
	newA := to[16-n:]
	var csum uint16
	l4 := frame[f.L4Off:]
	switch f.Proto {
	case packet.ProtoTCP:
		csum = binary.BigEndian.Uint16(l4[tcpCsumOff:])
		binary.BigEndian.PutUint16(l4[tcpCsumOff:], updateAddr(csum, field, newA))
	case packet.ProtoUDP:
		if csum = binary.BigEndian.Uint16(l4[udpCsumOff:]); csum != 0 || f.Family == 6 {
			binary.BigEndian.PutUint16(l4[udpCsumOff:], udpSum(updateAddr(csum, field, newA)))
		}
	}
	if f.Family == 4 {
		c := binary.BigEndian.Uint16(ip[ipv4CsumOff:])
		binary.BigEndian.PutUint16(ip[ipv4CsumOff:], updateAddr(c, field, newA))
	}
	copy(field, newA)
}

// natICMP translates an ICMP error. toServer: an error about a reply
// (quoting VIP -> client) goes to the server: the outer destination and the
// quoted source become `to`. Otherwise an error a server sent about a
// client's packet (quoting client -> server) leaves from the VIP: the outer
// source and the quoted destination become `to`.
func natICMP(frame []byte, f *packet.Flow, toServer bool, to *[16]byte) {
	ip := frame[f.L3Off:]
	icmp := frame[f.L4Off : int(f.L3Off)+int(f.Len)]
	csum := binary.BigEndian.Uint16(icmp[2:])
	off, n := addrOff(f.Family, !toServer)
	outer := ip[off : off+n]
	newA := to[16-n:]
	q := icmp[packet.ICMPHeaderLen:]
	qoff, _ := addrOff(f.Family, toServer)
	inner := q[qoff : qoff+n]
	// The outer address is the translated one unless a router between
	// ipfront and the servers sent the error: its address stays.
	if string(outer) == string(inner) {
		if f.Family == 4 {
			c := binary.BigEndian.Uint16(ip[ipv4CsumOff:])
			binary.BigEndian.PutUint16(ip[ipv4CsumOff:], updateAddr(c, outer, newA))
		} else {
			csum = updateAddr(csum, outer, newA) // ICMPv6 covers the pseudo-header
		}
		copy(outer, newA)
	}
	var l4 []byte
	var proto uint8
	if f.Family == 4 {
		hl := int(q[0]&0xf) * 4
		l4, proto = q[hl:], q[9]
		old := binary.BigEndian.Uint16(q[ipv4CsumOff:])
		upd := updateAddr(old, inner, newA)
		binary.BigEndian.PutUint16(q[ipv4CsumOff:], upd)
		csum = packet.ChecksumUpdate16(csum, old, upd)
	} else if p := q[ipv6NextOff]; p == packet.ProtoTCP || p == packet.ProtoUDP {
		l4, proto = q[packet.IPv6HeaderLen:], p
	}
	switch {
	case proto == packet.ProtoTCP && len(l4) >= tcpCsumOff+2:
		old := binary.BigEndian.Uint16(l4[tcpCsumOff:])
		upd := updateAddr(old, inner, newA)
		binary.BigEndian.PutUint16(l4[tcpCsumOff:], upd)
		csum = packet.ChecksumUpdate16(csum, old, upd)
	case proto == packet.ProtoUDP && len(l4) >= udpCsumOff+2:
		if old := binary.BigEndian.Uint16(l4[udpCsumOff:]); old != 0 || f.Family == 6 {
			upd := udpSum(updateAddr(old, inner, newA))
			binary.BigEndian.PutUint16(l4[udpCsumOff:], upd)
			csum = packet.ChecksumUpdate16(csum, old, upd)
		}
	}
	csum = updateAddr(csum, inner, newA)
	copy(inner, newA)
	binary.BigEndian.PutUint16(icmp[2:], csum)
}

// updateAddr returns checksum sum after an address it covers (4 or 16
// bytes at an even offset) changes from `from` to `to`.
func updateAddr(sum uint16, from, to []byte) uint16 {
	for i := 0; i+4 <= len(from); i += 4 {
		sum = packet.ChecksumUpdate32(sum, binary.BigEndian.Uint32(from[i:]), binary.BigEndian.Uint32(to[i:]))
	}
	return sum
}

// udpSum is a computed UDP checksum as it goes on the wire: zero would mean
// "none" (RFC 768), so it is sent as 0xffff.
func udpSum(sum uint16) uint16 {
	if sum == 0 {
		return 0xffff
	}
	return sum
}

// adjust32 adds delta to the 32-bit field at off of a TCP header, updating
// its checksum.
func adjust32(tcp []byte, off int, delta uint32) {
	old := binary.BigEndian.Uint32(tcp[off:])
	binary.BigEndian.PutUint32(tcp[off:], old+delta)
	c := binary.BigEndian.Uint16(tcp[tcpCsumOff:])
	binary.BigEndian.PutUint16(tcp[tcpCsumOff:], packet.ChecksumUpdate32(c, old, old+delta))
}

// adjustAck subtracts delta from a client segment's acknowledgement number
// and from the edges of its SACK blocks, which count the server -> client
// stream the helper lengthened by delta.
func adjustAck(frame []byte, f *packet.Flow, delta uint32) {
	tcp := frame[f.L4Off:]
	adjust32(tcp, tcpAckOff, -delta)
	doff := int(tcp[tcpDOffOff]>>4) * 4
	seg := int(f.L3Off) + int(f.Len) - int(f.L4Off)
	opts := tcp[packet.TCPMinHeaderLen:doff]
	for j := 0; j < len(opts); {
		switch opts[j] {
		case tcpOptEnd:
			return
		case tcpOptNOP:
			j++
			continue
		}
		if j+1 >= len(opts) || opts[j+1] < 2 || j+int(opts[j+1]) > len(opts) {
			return
		}
		if l := int(opts[j+1]); opts[j] == tcpOptSACK {
			for b := j + 2; b+4 <= j+l; b += 4 {
				// Options may sit at odd offsets, where a 32-bit field is
				// not two checksum words: update byte-wise (an odd byte
				// is the low half of its word).
				adjustOdd(tcp, seg, packet.TCPMinHeaderLen+b, -delta)
			}
		}
		j += int(opts[j+1])
	}
}

// adjustOdd adds delta to the 32-bit field at off of tcp, at any
// alignment, updating the checksum word by word; seg is the length of the
// TCP segment (header and payload), which the last word may end past.
func adjustOdd(tcp []byte, seg, off int, delta uint32) {
	if off%2 == 0 {
		adjust32(tcp, off, delta)
		return
	}
	// The words (off-1, off), (off+1, off+2) and (off+3, off+4) change; a
	// byte past the segment counts as the zero padding of its last word.
	word := func(i int) uint16 {
		w := uint16(tcp[i]) << 8
		if i+1 < seg {
			w |= uint16(tcp[i+1])
		}
		return w
	}
	var old [3]uint16
	for w := range old {
		old[w] = word(off - 1 + 2*w)
	}
	binary.BigEndian.PutUint32(tcp[off:], binary.BigEndian.Uint32(tcp[off:])+delta)
	c := binary.BigEndian.Uint16(tcp[tcpCsumOff:])
	for w := range old {
		c = packet.ChecksumUpdate16(c, old[w], word(off-1+2*w))
	}
	binary.BigEndian.PutUint16(tcp[tcpCsumOff:], c)
}
