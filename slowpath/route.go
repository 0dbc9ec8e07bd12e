package slowpath

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/slowpath/config"
)

// NATResolver finds where NAT frames leave ipfront: the interface and next
// hop towards each server, and the client-side routes of replies. *NATRoutes
// (the kernel's routing and neighbour tables) implements it; daemon tests
// replace it.
type NATResolver interface {
	// Refresh re-reads the routes and neighbours of the data-plane
	// interfaces for servers, publishes the client-side routes into
	// Routes' cell, and reports whether a server's hop changed and how
	// many servers (or gateways) are not resolved.
	Refresh(ifindexes []int, ifnames []string, servers []netip.Addr) (changed bool, missing int)
	// Hop returns the data-plane interface (index into the interfaces
	// Refresh was given) and next-hop MAC towards server addr.
	Hop(addr netip.Addr) (iface int, mac [6]byte, ok bool)
	// Routes is the cell every table generation shares for the client-side
	// routes of NAT replies.
	Routes() *fastpath.RouteCell
	// Close stops watching the kernel.
	Close()
}

// NATRoutes resolves NAT egress from the kernel, as a router would:
//
//   - towards a server, the route the kernel has for it (ip route get):
//     its interface must be a data-plane one; the next hop is the route's
//     gateway, or the server itself on its subnet, and its MAC comes from
//     the neighbour table (a missing entry is resolved by sending the next
//     hop one datagram, as for DSR servers);
//   - towards clients, every route of the main table on a data-plane
//     interface: a gateway route leaves to the gateway's MAC (the default
//     route too), an on-link route to the client's own, taken from the
//     neighbour table, which the clients' own ARP and ND for ipfront's
//     address fill. Neighbour changes on those interfaces are watched, so a
//     new on-link client is routable about as soon as the kernel knows it;
//     until then the workers answer it through the MAC its own frames came
//     from (fastpath/learn.go). Route changes are picked up at the next
//     refresh (every second, or 100 ms while something is unresolved).
//
// The client-side routes are published into one fastpath.RouteCell shared by
// every table generation, so a change costs one atomic store, not a rebuild.
// Refresh, Hop and Close may be called from any goroutine.
type NATRoutes struct {
	cell *fastpath.RouteCell

	mu      sync.Mutex
	hops    map[netip.Addr]natHop // by server
	clients string                // canonical form of the routes last published
	watch   chan struct{}         // closed by Close; nil until the watch started
	// nl asks the kernel of the network namespace the first Refresh ran
	// in, whichever thread asks later (the watch's goroutine included).
	nl *netlink.Handle
	ns netns.NsHandle
}

type natHop struct {
	iface int
	mac   [6]byte
}

// NewNATRoutes returns a resolver that has resolved nothing yet.
func NewNATRoutes() *NATRoutes {
	return &NATRoutes{cell: new(fastpath.RouteCell), hops: map[netip.Addr]natHop{}}
}

// Routes implements NATResolver.
func (r *NATRoutes) Routes() *fastpath.RouteCell { return r.cell }

// Hop implements NATResolver.
func (r *NATRoutes) Hop(addr netip.Addr) (int, [6]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h, ok := r.hops[addr]
	return h.iface, h.mac, ok
}

// Close implements NATResolver.
func (r *NATRoutes) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.watch != nil {
		close(r.watch)
		r.watch = nil
	}
	if r.nl != nil {
		r.nl.Close()
		r.ns.Close()
		r.nl = nil
	}
}

// handle returns the netlink handle of the namespace of the first call.
func (r *NATRoutes) handle() (*netlink.Handle, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nl != nil {
		return r.nl, nil
	}
	ns, err := netns.Get()
	if err != nil {
		return nil, fmt.Errorf("current network namespace: %w", err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	r.nl, r.ns = h, ns
	return h, nil
}

// neighbors reads the usable neighbour entries of a link, both families.
func neighbors(h *netlink.Handle, ifindex int) map[netip.Addr]netlink.Neigh {
	table := map[netip.Addr]netlink.Neigh{}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		list, err := h.NeighList(ifindex, fam)
		if err != nil {
			continue
		}
		for _, e := range list {
			if a, ok := netip.AddrFromSlice(e.IP); ok {
				table[a.Unmap()] = e
			}
		}
	}
	return table
}

// usableNeigh returns e's MAC if the kernel would use it.
func usableNeigh(e netlink.Neigh, ok bool) ([6]byte, bool) {
	if !ok || e.State&usableNUD == 0 || len(e.HardwareAddr) != 6 {
		return [6]byte{}, false
	}
	return [6]byte(e.HardwareAddr), true
}

// Refresh implements NATResolver. The kernel is asked without holding the
// resolver's lock.
func (r *NATRoutes) Refresh(ifindexes []int, ifnames []string, servers []netip.Addr) (changed bool, missing int) {
	h, err := r.handle()
	if err != nil {
		return false, len(servers)
	}
	r.startWatch(ifindexes)
	neigh := make([]map[netip.Addr]netlink.Neigh, len(ifindexes))
	for i, idx := range ifindexes {
		neigh[i] = neighbors(h, idx)
	}
	type poked struct {
		ifname string
		addr   netip.Addr
	}
	var pokes []poked
	hops := map[netip.Addr]natHop{}
	for _, s := range servers {
		i, via, ok := routeVia(h, ifindexes, s)
		if !ok {
			missing++
			continue
		}
		e, found := neigh[i][via]
		mac, usable := usableNeigh(e, found)
		if !usable || e.State&netlink.NUD_STALE != 0 {
			pokes = append(pokes, poked{ifnames[i], via})
		}
		if !usable {
			missing++
			continue
		}
		hops[s] = natHop{iface: i, mac: mac}
	}
	routes, hosts, unresolved := clientRoutes(h, ifindexes, neigh)
	for _, gw := range unresolved {
		pokes = append(pokes, poked{ifnames[gw.iface], gw.addr})
	}
	missing += len(unresolved)
	r.mu.Lock()
	if !mapsEqual(r.hops, hops) {
		r.hops = hops
		changed = true
	}
	r.mu.Unlock()
	r.publish(routes, hosts)
	for _, p := range pokes {
		poke(p.ifname, p.addr)
	}
	return changed, missing
}

// routeVia asks the kernel for its route to addr: the index (into
// ifindexes) of its interface, if a data-plane one, and the next hop.
func routeVia(h *netlink.Handle, ifindexes []int, addr netip.Addr) (int, netip.Addr, bool) {
	rs, err := h.RouteGet(addr.AsSlice())
	if err != nil || len(rs) == 0 {
		return 0, netip.Addr{}, false
	}
	i := slices.Index(ifindexes, rs[0].LinkIndex)
	if i < 0 {
		return 0, netip.Addr{}, false
	}
	via := addr
	if gw, ok := netip.AddrFromSlice(rs[0].Gw); ok && !gw.IsUnspecified() {
		via = gw.Unmap()
	}
	return i, via, true
}

// gateway is a client-side gateway whose MAC is not known.
type gateway struct {
	iface int
	addr  netip.Addr
}

// clientRoutes reads the main table's routes of the data-plane interfaces
// and the on-link neighbours they cover.
func clientRoutes(h *netlink.Handle, ifindexes []int, neigh []map[netip.Addr]netlink.Neigh) ([]fastpath.Route, map[netip.Addr][6]byte, []gateway) {
	var routes []fastpath.Route
	var unresolved []gateway
	hosts := map[netip.Addr][6]byte{}
	var onlink []netip.Prefix
	var onlinkIface []int
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := h.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			continue
		}
		for _, rt := range rs {
			if rt.Type != unix.RTN_UNICAST {
				continue
			}
			// A multipath route (ECMP) leaves by its first next hop on
			// a data-plane interface: replies are not spread.
			link, gwIP := rt.LinkIndex, rt.Gw
			for _, nh := range rt.MultiPath {
				if slices.Contains(ifindexes, nh.LinkIndex) {
					link, gwIP = nh.LinkIndex, nh.Gw
					break
				}
			}
			i := slices.Index(ifindexes, link)
			if i < 0 {
				continue
			}
			p := defaultPrefix(fam)
			if rt.Dst != nil {
				a, ok := netip.AddrFromSlice(rt.Dst.IP)
				bits, _ := rt.Dst.Mask.Size()
				if !ok {
					continue
				}
				p = netip.PrefixFrom(a.Unmap(), bits)
			}
			if p.Addr().Is6() && (p.Addr().IsLinkLocalUnicast() || p.Addr().IsMulticast()) {
				continue
			}
			route := fastpath.Route{Prefix: fastpath.MappedPrefix(p.Masked()), Iface: uint8(i)}
			if gw, ok := netip.AddrFromSlice(gwIP); ok && !gw.IsUnspecified() {
				gw = gw.Unmap()
				e, found := neigh[i][gw]
				route.MAC, route.HasMAC = usableNeigh(e, found)
				if !route.HasMAC || e.State&netlink.NUD_STALE != 0 {
					unresolved = append(unresolved, gateway{i, gw})
				}
			} else {
				route.OnLink = true
				onlink = append(onlink, p.Masked())
				onlinkIface = append(onlinkIface, i)
			}
			routes = append(routes, route)
		}
	}
	// The neighbours on the on-link routes, each from the interface its
	// route leaves by; the longest route decides, as it does for frames.
	order := make([]int, len(onlink))
	for j := range order {
		order[j] = j
	}
	sort.SliceStable(order, func(a, b int) bool { return onlink[order[a]].Bits() > onlink[order[b]].Bits() })
	for i := range ifindexes {
		for a, e := range neigh[i] {
			mac, ok := usableNeigh(e, true)
			if !ok {
				continue
			}
			for _, j := range order {
				if onlink[j].Contains(a) {
					if onlinkIface[j] == i {
						hosts[fastpath.MappedPrefix(netip.PrefixFrom(a, a.BitLen())).Addr()] = mac
					}
					break
				}
			}
		}
	}
	return routes, hosts, unresolved
}

// defaultPrefix is the default route's prefix of a family.
func defaultPrefix(fam int) netip.Prefix {
	if fam == netlink.FAMILY_V4 {
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
}

// publish stores the client routes into the cell if they changed.
func (r *NATRoutes) publish(routes []fastpath.Route, hosts map[netip.Addr][6]byte) {
	var b strings.Builder
	for _, rt := range routes {
		fmt.Fprintf(&b, "%v %d %v %x %v;", rt.Prefix, rt.Iface, rt.OnLink, rt.MAC, rt.HasMAC)
	}
	keys := make([]netip.Addr, 0, len(hosts))
	for a := range hosts {
		keys = append(keys, a)
	}
	slices.SortFunc(keys, netip.Addr.Compare)
	for _, a := range keys {
		fmt.Fprintf(&b, "%v %x;", a, hosts[a])
	}
	canon := b.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	if canon == r.clients && r.cell.Load() != nil {
		return
	}
	rt, err := fastpath.NewRoutes(routes, hosts)
	if err != nil {
		return // cannot happen: the hosts are those of the on-link routes
	}
	r.clients = canon
	r.cell.Store(rt)
}

// startWatch starts, once, a goroutine that re-reads the client-side routes
// when a neighbour of a data-plane interface changes: an on-link client
// becomes routable as soon as the kernel has its MAC.
func (r *NATRoutes) startWatch(ifindexes []int) {
	r.mu.Lock()
	if r.watch != nil {
		r.mu.Unlock()
		return
	}
	done := make(chan struct{})
	r.watch = done
	ns := r.ns
	r.mu.Unlock()
	// A handle of its own: netlink handles are not safe for concurrent use.
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return // the periodic refresh still runs
	}
	ifindexes = slices.Clone(ifindexes)
	ch := make(chan netlink.NeighUpdate, 64)
	if err := netlink.NeighSubscribeWithOptions(ch, done, netlink.NeighSubscribeOptions{Namespace: &ns}); err != nil {
		h.Close()
		return
	}
	go func() {
		defer h.Close()
		for u := range ch {
			if !slices.Contains(ifindexes, u.LinkIndex) {
				continue
			}
			// Coalesce a burst of updates into one re-read.
			for len(ch) > 0 {
				<-ch
			}
			neigh := make([]map[netip.Addr]netlink.Neigh, len(ifindexes))
			for i, idx := range ifindexes {
				neigh[i] = neighbors(h, idx)
			}
			routes, hosts, _ := clientRoutes(h, ifindexes, neigh)
			r.publish(routes, hosts)
		}
	}()
}

// mapsEqual reports whether two hop maps are equal.
func mapsEqual(a, b map[netip.Addr]natHop) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

var _ NATResolver = (*NATRoutes)(nil)

// forwardings maps configuration names to fastpath strategies.
var forwardings = map[string]uint8{
	config.ForwardDSR:  fastpath.FwdDSR,
	config.ForwardNAT:  fastpath.FwdNAT,
	config.ForwardIPIP: fastpath.FwdIPIP,
	config.ForwardGUE:  fastpath.FwdGUE,
}

// hasNAT reports whether spec has a NAT set.
func hasNAT(spec *config.Spec) bool {
	for i := range spec.TargetSets {
		if spec.TargetSets[i].Forwarding == config.ForwardNAT {
			return true
		}
	}
	return false
}

// resolveNATServer fills a NAT server's egress: the interface its route leaves by and
// the next hop's MAC, the same from every interface (the frame is handed
// to the egress interface's worker), so every worker may choose it.
func resolveNATServer(s *fastpath.Server, in Inputs) {
	if in.NAT == nil {
		return
	}
	iface, mac, ok := in.NAT.Hop(s.Addr)
	if !ok || iface < 0 || iface >= in.Interfaces {
		return
	}
	s.Egress = uint8(iface)
	for ifc := 0; ifc < in.Interfaces; ifc++ {
		s.MAC[ifc], s.HasMAC[ifc] = mac, true
	}
}

// splitServers returns the addresses of spec's DSR servers, which must be
// on a data-plane interface's subnet, and of its NAT, IPIP and GUE servers,
// which the routes lead to.
func splitServers(spec *config.Spec) (dsr, nat []netip.Addr) {
	seen := map[netip.Addr]bool{}
	for _, ts := range spec.TargetSets {
		if ts.Forwarding != config.ForwardNAT && !ts.Encapsulates() {
			continue
		}
		for _, s := range ts.Servers {
			if !seen[s.Address] {
				seen[s.Address] = true
				nat = append(nat, s.Address)
			}
		}
	}
	for _, a := range serverAddrs(spec) {
		if !seen[a] {
			dsr = append(dsr, a)
		}
	}
	return dsr, nat
}
