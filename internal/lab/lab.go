//go:build linux

// Package lab builds ipfront's test network: one L2 segment made of a bridge
// in its own network namespace and hosts attached to it by veth pairs, each
// host in its own namespace.
//
//	<prefix>-c   client   veth-c   198.51.100.2    2001:db8:100::2
//	<prefix>-lb  ipfront  veth-lb  198.51.100.1    2001:db8:100::1
//	<prefix>-s1  server   veth-s1  198.51.100.11   2001:db8:100::11
//	<prefix>-sN  server   veth-sN  198.51.100.1N   2001:db8:100::1N
//	<prefix>-sw  bridge br0 with one port per host (p-c, p-lb, p-s1 ...)
//
// The segment is wired for L2 direct server return: the servers hold the
// VIPs (192.0.2.10 and 2001:db8:10::10 unless WithVIPs says otherwise) on lo
// and neither answer ARP for them (arp_ignore=1, arp_announce=2) nor ND (a
// /128 on lo is not an address of the veth); the client routes the VIPs via
// the load balancer's address; the load balancer does not forward (ip_forward
// off), so without ipfront nothing reaches the servers through it. Addresses
// skip duplicate address detection and the client's and servers' veths send
// wire-sized frames with complete checksums (TX checksum offload, TSO, GSO
// and GRO off), as a real NIC would put on the wire.
//
// Nothing is created in the root namespace: links are made inside the switch
// namespace and their peers moved straight into the hosts' namespaces. The
// only trace left in the root namespace is the namespaces' names under
// /run/netns, which Close removes. Namespaces of a process that died before
// closing its labs are removed by the next New (see UniquePrefix).
//
// Everything needs root and ip(8).
package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/ipfront/ipfront/internal/nsutil"
)

// Interface and bridge names. Every host's interface is called veth-<role>.
const (
	BridgeName   = "br0"
	LBIfname     = "veth-lb"
	ClientIfname = "veth-c"
)

// MaxServers bounds the number of servers: their addresses are .11 to .(10+N).
const MaxServers = 64

// The segment's prefixes, the hosts' addresses on it and the default VIPs.
var (
	Subnet4 = netip.MustParsePrefix("198.51.100.0/24")
	Subnet6 = netip.MustParsePrefix("2001:db8:100::/64")

	LBIPv4     = netip.MustParseAddr("198.51.100.1")
	LBIPv6     = netip.MustParseAddr("2001:db8:100::1")
	ClientIPv4 = netip.MustParseAddr("198.51.100.2")
	ClientIPv6 = netip.MustParseAddr("2001:db8:100::2")

	DefaultVIP4 = netip.MustParseAddr("192.0.2.10")
	DefaultVIP6 = netip.MustParseAddr("2001:db8:10::10")
)

// ErrExists is returned by New when a namespace it would create already
// exists (another lab with the same prefix, or one left behind: see Remove).
var ErrExists = errors.New("namespace already exists")

// Host is one machine on the segment.
type Host struct {
	Role   string           // "lb", "c", "s1", "s2", ...
	NS     string           // network namespace name, for ip netns exec
	Ifname string           // its interface on the segment
	MAC    net.HardwareAddr // of Ifname (fixed, locally administered)
	IPv4   netip.Addr
	IPv6   netip.Addr
}

// Addr returns the host's IPv6 address if v6, else its IPv4 address.
func (h Host) Addr(v6 bool) netip.Addr {
	if v6 {
		return h.IPv6
	}
	return h.IPv4
}

// ServerIPv4 and ServerIPv6 return server i's (1-based) addresses: .1i and ::1i
// for i < 10, and in general the IPv6 suffix reads like the IPv4 last octet.
func ServerIPv4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})
}

// ServerIPv6 returns server i's (1-based) IPv6 address; see ServerIPv4.
func ServerIPv6(i int) netip.Addr {
	return netip.MustParseAddr("2001:db8:100::" + strconv.Itoa(10+i))
}

func mac(last byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0x1b, 0, 0, 0, last} }

// Option changes what New builds.
type Option func(*options)

type options struct {
	vips []netip.Addr
}

// WithVIPs replaces the default VIPs: the servers hold each on lo and the
// client routes each via the load balancer.
func WithVIPs(vips ...netip.Addr) Option {
	return func(o *options) { o.vips = append([]netip.Addr(nil), vips...) }
}

// Lab is a running topology. Its accessors may be called from any goroutine;
// Close may be called more than once and concurrently with them.
type Lab struct {
	prefix  string
	sw      string
	lb      Host
	client  Host
	servers []Host
	vips    []netip.Addr

	mu      sync.Mutex // guards created, cmds and closed
	created []string   // namespaces New made (and only those are deleted)
	cmds    []*exec.Cmd
	closed  bool

	closeOnce sync.Once
	closeErr  error
}

// open tracks every lab not yet closed, for CloseAll.
var (
	openMu sync.Mutex
	open   = map[*Lab]struct{}{}
)

// track records l as open until it is closed (CloseAll).
func (l *Lab) track() {
	openMu.Lock()
	open[l] = struct{}{}
	openMu.Unlock()
}

// serverHosts returns servers s1 to sN of a lab with the given prefix:
// namespace <prefix>-sI, interface veth-sI, addresses .1I on the segment.
func serverHosts(prefix string, n int) []Host {
	hosts := make([]Host, 0, n)
	for i := 1; i <= n; i++ {
		role := "s" + strconv.Itoa(i)
		hosts = append(hosts, Host{
			Role: role, NS: prefix + "-" + role, Ifname: "veth-" + role,
			MAC: mac(byte(10 + i)), IPv4: ServerIPv4(i), IPv6: ServerIPv6(i),
		})
	}
	return hosts
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// New builds a lab with the given namespace name prefix and number of
// servers. On error everything already created is removed. Prefixes must not
// collide with another lab's: use UniquePrefix in tests.
func New(prefix string, servers int, opts ...Option) (_ *Lab, err error) {
	if !prefixRE.MatchString(prefix) {
		return nil, fmt.Errorf("lab prefix %q: want 1-64 characters from A-Z a-z 0-9 _ . -", prefix)
	}
	if servers < 1 || servers > MaxServers {
		return nil, fmt.Errorf("lab servers %d: want 1..%d", servers, MaxServers)
	}
	o := options{vips: []netip.Addr{DefaultVIP4, DefaultVIP6}}
	for _, opt := range opts {
		opt(&o)
	}
	for _, v := range o.vips {
		if !v.IsValid() || v.Is4In6() || Subnet4.Contains(v) || Subnet6.Contains(v) {
			return nil, fmt.Errorf("lab VIP %v: want an IPv4 or IPv6 address outside %v and %v", v, Subnet4, Subnet6)
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("lab needs ip(8) from iproute2: %w", err)
	}
	RemoveStale()

	l := &Lab{
		prefix: prefix,
		sw:     prefix + "-sw",
		lb:     Host{Role: "lb", NS: prefix + "-lb", Ifname: LBIfname, MAC: mac(1), IPv4: LBIPv4, IPv6: LBIPv6},
		client: Host{Role: "c", NS: prefix + "-c", Ifname: ClientIfname, MAC: mac(2), IPv4: ClientIPv4, IPv6: ClientIPv6},
		vips:   o.vips,
	}
	l.servers = serverHosts(prefix, servers)
	l.track()
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if err := l.build(); err != nil {
		return nil, fmt.Errorf("build lab %s: %w", prefix, err)
	}
	return l, nil
}

// build creates the namespaces and wires them; l.Close undoes any part.
func (l *Lab) build() error {
	hosts := l.Hosts()
	if err := l.addNamespaces(l.sw, nsNames(hosts)); err != nil {
		return err
	}
	if err := Sysctl(l.lb.NS, forwarding(false)); err != nil {
		return err
	}
	for _, s := range l.servers {
		if err := Sysctl(s.NS, DSRServerSysctls()); err != nil {
			return err
		}
	}

	// The bridge and every veth pair, made in the switch namespace with the
	// host end created directly in the host's namespace.
	if err := bridgeHosts(l.sw, hosts); err != nil {
		return err
	}

	// Per-interface settings, before the interfaces come up.
	for _, h := range hosts {
		kv := [][2]string{{"net.ipv6.conf." + h.Ifname + ".accept_dad", "0"}}
		if strings.HasPrefix(h.Role, "s") {
			kv = append(kv,
				[2]string{"net.ipv4.conf." + h.Ifname + ".arp_ignore", "1"},
				[2]string{"net.ipv4.conf." + h.Ifname + ".arp_announce", "2"})
		}
		if err := Sysctl(h.NS, kv); err != nil {
			return err
		}
		if h.Role != "lb" {
			if err := DisableOffloads(h.NS, h.Ifname); err != nil {
				return err
			}
		}
	}

	// Addresses, VIPs and routes; links up last.
	for _, h := range hosts {
		var b strings.Builder
		fmt.Fprintf(&b, "link set lo up\n")
		fmt.Fprintf(&b, "addr add %s/%d dev %s\n", h.IPv4, Subnet4.Bits(), h.Ifname)
		fmt.Fprintf(&b, "addr add %s/%d dev %s nodad\n", h.IPv6, Subnet6.Bits(), h.Ifname)
		if strings.HasPrefix(h.Role, "s") {
			for _, v := range l.vips {
				fmt.Fprintf(&b, "addr add %s dev lo\n", netip.PrefixFrom(v, v.BitLen()))
			}
		}
		fmt.Fprintf(&b, "link set %s up\n", h.Ifname)
		if h.Role == "c" {
			for _, v := range l.vips {
				fmt.Fprintf(&b, "route add %s via %s\n", netip.PrefixFrom(v, v.BitLen()), l.lb.Addr(v.Is6()))
			}
		}
		if err := ipBatch(h.NS, b.String()); err != nil {
			return err
		}
	}
	return nil
}

// DSRServerSysctls are the settings of a direct-server-return server that
// holds the VIPs on lo: it neither answers ARP for them (arp_ignore=1) nor
// uses them as the source of its own ARP requests (arp_announce=2), so the
// load balancer keeps the VIPs' traffic.
func DSRServerSysctls() [][2]string {
	return [][2]string{
		{"net.ipv4.conf.all.arp_ignore", "1"},
		{"net.ipv4.conf.all.arp_announce", "2"},
		{"net.ipv4.conf.default.arp_ignore", "1"},
		{"net.ipv4.conf.default.arp_announce", "2"},
	}
}

func nsNames(hosts []Host) []string {
	var names []string
	for _, h := range hosts {
		names = append(names, h.NS)
	}
	return names
}

// addNS creates a namespace and records it for Close; it fails with ErrExists
// rather than adopt a namespace it did not create.
// addNamespaces creates the switch namespace sw, then hosts', with the
// settings every lab's namespaces share, first so that the interfaces
// created later inherit them (conf/default): the switch has no addresses,
// so no IPv6 (no RS/MLD chatter from it); the hosts skip duplicate address
// detection.
func (l *Lab) addNamespaces(sw string, hosts []string) error {
	for _, ns := range append([]string{sw}, hosts...) {
		if err := l.addNS(ns); err != nil {
			return err
		}
	}
	if err := Sysctl(sw, [][2]string{{"net.ipv6.conf.all.disable_ipv6", "1"}, {"net.ipv6.conf.default.disable_ipv6", "1"}}); err != nil {
		return err
	}
	noDAD := [][2]string{{"net.ipv6.conf.all.accept_dad", "0"}, {"net.ipv6.conf.default.accept_dad", "0"}}
	for _, ns := range hosts {
		if err := Sysctl(ns, noDAD); err != nil {
			return err
		}
	}
	return nil
}

// forwarding is the sysctls that turn IPv4 and IPv6 forwarding on or off.
func forwarding(on bool) [][2]string {
	v := "0"
	if on {
		v = "1"
	}
	return [][2]string{{"net.ipv4.ip_forward", v}, {"net.ipv6.conf.all.forwarding", v}}
}

func (l *Lab) addNS(name string) error {
	if _, err := os.Stat(nsutil.Dir + "/" + name); err == nil {
		return fmt.Errorf("%s: %w", name, ErrExists)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("lab closed")
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		if bytes.Contains(out, []byte("File exists")) {
			return fmt.Errorf("%s: %w", name, ErrExists)
		}
		return fmt.Errorf("ip netns add %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	l.created = append(l.created, name)
	return nil
}

// ipBatch runs ip(8) commands, one a line, inside namespace ns.
func ipBatch(ns, cmds string) error {
	cmd := exec.Command("ip", "-n", ns, "-batch", "-")
	cmd.Stdin = strings.NewReader(cmds)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("ip -n %s -batch: %v: %s\ncommands:\n%s", ns, err, bytes.TrimSpace(out), cmds)
	}
	return nil
}

// Prefix returns the namespace name prefix.
func (l *Lab) Prefix() string { return l.prefix }

// Switch returns the bridge's namespace name.
func (l *Lab) Switch() string { return l.sw }

// LB returns the load balancer's host (ipfront runs in LB().NS).
func (l *Lab) LB() Host { return l.lb }

// Client returns the client host.
func (l *Lab) Client() Host { return l.client }

// Servers returns the servers, s1 first.
func (l *Lab) Servers() []Host { return append([]Host(nil), l.servers...) }

// Server returns server i, 1-based like its name (s1 is Server(1)).
func (l *Lab) Server(i int) Host { return l.servers[i-1] }

// Hosts returns every host: the load balancer, the client, then the servers.
func (l *Lab) Hosts() []Host { return append([]Host{l.lb, l.client}, l.servers...) }

// VIPs returns the VIPs the servers hold.
func (l *Lab) VIPs() []netip.Addr { return append([]netip.Addr(nil), l.vips...) }

// VIP returns the first VIP of the given family, or the zero Addr.
func (l *Lab) VIP(v6 bool) netip.Addr {
	for _, v := range l.vips {
		if v.Is6() == v6 {
			return v
		}
	}
	return netip.Addr{}
}

// RouteVIPsVia points the client's VIP routes at h instead of the load
// balancer: with a server as h the client reaches that server's VIP directly,
// which tests the servers and the clients without ipfront. RouteVIPsVia(LB())
// restores the normal routes.
func (l *Lab) RouteVIPsVia(h Host) error {
	var b strings.Builder
	for _, v := range l.vips {
		fmt.Fprintf(&b, "route replace %s via %s\n", netip.PrefixFrom(v, v.BitLen()), h.Addr(v.Is6()))
	}
	return ipBatch(l.client.NS, b.String())
}

// Exec runs args inside namespace ns (ip netns exec) and returns the combined
// output; the error, if any, includes it.
func (l *Lab) Exec(ns string, args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip netns exec %s %s: %w: %s", ns, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Command returns a command that runs args inside namespace ns (ip netns
// exec, which execs args, so the command's pid is the program's). The caller
// sets its I/O, starts it and waits for it; Close kills it if it still runs.
// It runs in its own process group, so a terminal's Ctrl-C reaches only this
// process, which decides how to stop it; and it is killed if this process
// dies first.
func (l *Lab) Command(ns string, args ...string) *exec.Cmd {
	return l.CommandContext(context.Background(), ns, args...)
}

// CommandContext is Command with a context that kills the command when done.
func (l *Lab) CommandContext(ctx context.Context, ns string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	l.mu.Lock()
	l.cmds = append(l.cmds, cmd)
	l.mu.Unlock()
	return cmd
}

// Start is Command followed by cmd.Start. The caller must Wait for it.
func (l *Lab) Start(ns string, args ...string) (*exec.Cmd, error) {
	cmd := l.Command(ns, args...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", strings.Join(args, " "), ns, err)
	}
	return cmd, nil
}

// Close kills every process still running in the lab's namespaces and
// deletes the namespaces (which deletes their links). It returns the first
// Close's result on later calls.
func (l *Lab) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		cmds, created := l.cmds, l.created
		l.mu.Unlock()
		for _, c := range cmds {
			if c.Process != nil && c.ProcessState == nil {
				_ = c.Process.Kill()
			}
		}
		var errs []error
		for _, ns := range created {
			if err := nsutil.Remove(ns); err != nil {
				errs = append(errs, err)
			}
		}
		l.closeErr = errors.Join(errs...)
		openMu.Lock()
		delete(open, l)
		openMu.Unlock()
	})
	return l.closeErr
}

// CloseAll closes every lab of this process not closed yet; for signal
// handlers, which cannot reach the labs' owners.
func CloseAll() error {
	openMu.Lock()
	labs := make([]*Lab, 0, len(open))
	for l := range open {
		labs = append(labs, l)
	}
	openMu.Unlock()
	var errs []error
	for _, l := range labs {
		errs = append(errs, l.Close())
	}
	return errors.Join(errs...)
}

var uniqueSeq atomic.Uint64

// UniquePrefix returns base followed by this process's id and a sequence
// number ("e2e-p1234n7"), unique among the labs of concurrently running
// processes. New removes the namespaces of such prefixes whose process has
// died (a test binary killed before its cleanups ran).
func UniquePrefix(base string) string {
	return fmt.Sprintf("%s-p%dn%d", base, os.Getpid(), uniqueSeq.Add(1))
}

var (
	staleRE = regexp.MustCompile(`^.+-p([0-9]+)n[0-9]+-(sw|lb|c|s[0-9]+)$`)
	labRE   = `^%s-(sw|lb|c|s[0-9]+)$`
)

// RemoveStale deletes the namespaces of labs whose prefix came from
// UniquePrefix in a process that no longer runs.
func RemoveStale() {
	entries, err := os.ReadDir(nsutil.Dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		m := staleRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if !nsutil.Dead(pid) {
			continue // still running
		}
		_ = nsutil.Remove(e.Name())
	}
}

// Remove deletes the namespaces of the lab with the given prefix (made by
// another process, such as "iplab up"), killing what runs in them. It
// reports whether there was any.
func Remove(prefix string) (bool, error) {
	if !prefixRE.MatchString(prefix) {
		return false, fmt.Errorf("lab prefix %q: want 1-64 characters from A-Z a-z 0-9 _ . -", prefix)
	}
	re := regexp.MustCompile(fmt.Sprintf(labRE, regexp.QuoteMeta(prefix)))
	entries, err := os.ReadDir(nsutil.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	found := false
	var errs []error
	for _, e := range entries {
		if re.MatchString(e.Name()) {
			found = true
			errs = append(errs, nsutil.Remove(e.Name()))
		}
	}
	return found, errors.Join(errs...)
}

// bridgeHosts makes, in the switch namespace sw, the lab bridge and a veth
// pair per host: the bridge port "p-<role>" enslaved and up, the host end
// created directly in the host's namespace with its name and MAC.
func bridgeHosts(sw string, hosts []Host) error {
	var b strings.Builder
	fmt.Fprintf(&b, "link add %s type bridge stp_state 0 mcast_snooping 0\n", BridgeName)
	for _, h := range hosts {
		port := "p-" + h.Role
		fmt.Fprintf(&b, "link add %s type veth peer name %s address %s netns %s\n", port, h.Ifname, h.MAC, h.NS)
		fmt.Fprintf(&b, "link set %s master %s up\n", port, BridgeName)
	}
	fmt.Fprintf(&b, "link set %s up\n", BridgeName)
	if err := ipBatch(sw, b.String()); err != nil {
		return err
	}
	return bridgeNetfilterOff(sw)
}

// bridgeNetfilterOff keeps the bridge in sw from handing frames to
// netfilter where the kernel has br_netfilter: it would check IP headers
// (IHL, total length, checksum) and silently drop malformed frames before
// ipfront sees them, which no wire switch does.
func bridgeNetfilterOff(sw string) error {
	var kv [][2]string
	for _, k := range []string{"net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables", "net.bridge.bridge-nf-call-arptables"} {
		if _, err := ReadSysctl(sw, k); err == nil {
			kv = append(kv, [2]string{k, "0"})
		}
	}
	return Sysctl(sw, kv)
}
