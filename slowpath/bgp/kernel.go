package bgp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/vishvananda/netlink"

	"github.com/ipfront/ipfront/slowpath/config"
)

// RouteProtocol marks the routes kernel mode installs (the rtnetlink
// protocol field, "proto 199" in ip route): a start removes those a killed
// predecessor left in the table, and a site's routing daemon can select
// them (BIRD's kernel protocol learns routes of any protocol but "kernel").
const RouteProtocol netlink.RouteProtocol = 199

// Kernel installs each announced VIP as a host route in a kernel routing
// table ([bgp] kernel_table) through ipfront's first data-plane interface:
// "192.0.2.10/32 dev eth1 proto 199 scope link table 100". The site's
// routing daemon exports that table to its peers; ipfront never consults
// it itself (no rule points at it).
type Kernel struct {
	table int
	link  int
	log   zerolog.Logger

	mu     sync.Mutex // serialises Announce and Close; guards routes
	routes map[netip.Prefix]bool
}

// NewKernel returns a kernel-mode announcer for the interface named ifname,
// after removing routes of RouteProtocol left in the table by an earlier
// run that could not withdraw them.
func NewKernel(cfg config.BGP, ifname string, log zerolog.Logger) (*Kernel, error) {
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("bgp kernel mode: interface %s: %w", ifname, err)
	}
	k := &Kernel{table: int(cfg.KernelTable), link: link.Attrs().Index, log: log, routes: map[netip.Prefix]bool{}}
	stale, err := k.list()
	if err != nil {
		return nil, err
	}
	for _, p := range stale {
		if err := k.del(p); err != nil {
			return nil, err
		}
		log.Info().Str("prefix", p.String()).Int("table", k.table).Msg("removed a VIP route left by an earlier run")
	}
	return k, nil
}

// list returns the routes of RouteProtocol in the table.
func (k *Kernel) list() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: k.table, Protocol: RouteProtocol},
			netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
		if err != nil {
			return nil, fmt.Errorf("list routes of table %d: %w", k.table, err)
		}
		for _, r := range rs {
			if r.Dst == nil {
				continue
			}
			a, _ := netip.AddrFromSlice(r.Dst.IP)
			ones, _ := r.Dst.Mask.Size()
			out = append(out, netip.PrefixFrom(a.Unmap(), ones))
		}
	}
	slices.SortFunc(out, comparePrefix)
	return out, nil
}

func (k *Kernel) route(p netip.Prefix) *netlink.Route {
	return &netlink.Route{
		LinkIndex: k.link,
		Dst:       &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Table:     k.table,
		Protocol:  RouteProtocol,
		Scope:     netlink.SCOPE_LINK,
		Type:      syscall.RTN_UNICAST,
	}
}

func (k *Kernel) del(p netip.Prefix) error {
	if err := netlink.RouteDel(k.route(p)); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("withdraw %s from table %d: %w", p, k.table, err)
	}
	return nil
}

// Announce implements Announcer.
func (k *Kernel) Announce(prefixes []netip.Prefix) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	add, del := diff(k.routes, prefixes)
	var errs []error
	for _, p := range del {
		if err := k.del(p); err != nil {
			errs = append(errs, err)
			continue
		}
		delete(k.routes, p)
	}
	for _, p := range add {
		if err := netlink.RouteReplace(k.route(p)); err != nil {
			errs = append(errs, fmt.Errorf("announce %s in table %d: %w", p, k.table, err))
			continue
		}
		k.routes[p] = true
	}
	return errors.Join(errs...)
}

// Status implements Announcer.
func (k *Kernel) Status() Status {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := Status{Mode: config.BGPKernel}
	for p := range k.routes {
		st.Announced = append(st.Announced, p)
	}
	slices.SortFunc(st.Announced, comparePrefix)
	return st
}

// Close implements Announcer: it removes every route it installed.
func (k *Kernel) Close() error { return k.Announce(nil) }
