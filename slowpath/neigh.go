package slowpath

import (
	"net"
	"net/netip"
	"sync"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Neighbors resolves servers' MAC addresses from the kernel's neighbour
// table, the same table the kernel's own forwarding uses, so ipfront follows
// ARP/ND as a router would. Missing entries are resolved by sending the
// server one UDP datagram to the discard port, which makes the kernel run
// ARP or ND for it.
//
// Unlike a router, it keeps a server's last known MAC when the kernel's
// entry fails or disappears, until the kernel learns another MAC or the
// server leaves the configuration. A flood that fills the interface's
// queues loses the ARP/ND replies of the kernel's re-confirmation like any
// frame; dropping the MAC then would black-hole every connection of a
// server that is still there, while a server that is really gone is taken
// out by its health checks, and one that moved is re-learnt.
type Neighbors struct {
	mu    sync.Mutex
	known map[neighKey][6]byte
}

type neighKey struct {
	ifindex int
	addr    netip.Addr
}

// NewNeighbors returns an empty cache.
func NewNeighbors() *Neighbors { return &Neighbors{known: map[neighKey][6]byte{}} }

// usable neighbour states: the kernel has a link-layer address it would use.
const usableNUD = netlink.NUD_REACHABLE | netlink.NUD_STALE | netlink.NUD_DELAY | netlink.NUD_PROBE |
	netlink.NUD_PERMANENT | netlink.NUD_NOARP

// Refresh reads the neighbour table of each interface for addrs, triggers
// resolution of every address without a usable entry (and of stale ones, so
// the kernel re-confirms them), and reports whether any MAC changed and how
// many addresses have no MAC, neither the kernel's nor a held one. The
// kernel is asked without holding the cache's lock, so Lookup never waits
// for it.
func (n *Neighbors) Refresh(ifindexes []int, ifnames []string, addrs []netip.Addr) (changed bool, missing int) {
	type poked struct {
		ifname string
		addr   netip.Addr
	}
	var pokes []poked
	seen := map[neighKey][6]byte{}    // usable entries found
	unresolved := map[neighKey]bool{} // entries the kernel has no usable MAC for
	for i, ifindex := range ifindexes {
		table := neighbors(&netlink.Handle{}, ifindex) // route.go; the zero handle is this thread's namespace
		for _, addr := range addrs {
			k := neighKey{ifindex, addr}
			e, found := table[addr]
			if mac, ok := usableNeigh(e, found); ok {
				seen[k] = mac
				if e.State&netlink.NUD_STALE != 0 {
					pokes = append(pokes, poked{ifnames[i], addr})
				}
				continue
			}
			unresolved[k] = true
			pokes = append(pokes, poked{ifnames[i], addr})
		}
	}
	n.mu.Lock()
	for k, mac := range seen {
		if old, had := n.known[k]; !had || old != mac {
			n.known[k] = mac
			changed = true
		}
	}
	for k := range unresolved {
		if _, held := n.known[k]; !held {
			missing++
		}
	}
	for k := range n.known {
		if _, used := seen[k]; !used && !unresolved[k] {
			delete(n.known, k) // its server left the configuration
			changed = true
		}
	}
	n.mu.Unlock()
	for _, p := range pokes {
		poke(p.ifname, p.addr)
	}
	return changed, missing
}

// Lookup returns the cached MAC of addr on ifindex.
func (n *Neighbors) Lookup(ifindex int, addr netip.Addr) ([6]byte, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	mac, ok := n.known[neighKey{ifindex, addr}]
	return mac, ok
}

// poke sends one empty datagram to addr's discard port out of ifname; the
// kernel resolves the neighbour to send it. Errors are irrelevant: the
// datagram is only a means to the resolution.
func poke(ifname string, addr netip.Addr) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = unix.SetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname)
		})
	}}
	conn, err := d.Dial("udp", netip.AddrPortFrom(addr, 9).String())
	if err != nil {
		return
	}
	_, _ = conn.Write([]byte{0})
	conn.Close()
}
