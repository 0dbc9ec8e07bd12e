//go:build linux

package main

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf"

	"github.com/ipfront/ipfront/fastpath/steer"
	"github.com/ipfront/ipfront/internal/lab"
)

// The benchmark topology: one L2 segment (a bridge in its own namespace) and
// hosts attached to it by veth pairs, named like internal/lab's hosts so
// lab.Remove and lab.RemoveStale clean up after a harness that died:
//
//	<prefix>-c    generator and TCP/UDP client  veth-c   198.51.100.2   2 queues
//	<prefix>-lb   device under test (DUT)       veth-lb  198.51.100.1   2 queues
//	<prefix>-sN   server / sink N (1..16)       veth-sN  198.51.100.1N  1 queue
//	<prefix>-sw   bridge br0, ports p-c, p-lb, p-s1 .. p-s16
//
// internal/lab is not used to build it because its veth pairs have one
// queue, and the scaling step needs two on the generator and DUT links.
//
// Frames from the generator reach the DUT through the bridge; every DUT
// sends them back out of veth-lb onto the bridge towards the sinks (L2 DSR,
// the same path for every peer). While packets are counted, each server's
// veth carries a CountDrop XDP program: it counts and drops every frame, so
// the sink count is exactly what the DUT delivered. The bridge neither
// learns nor floods unknown unicast (static FDB entries), and every host has
// static neighbour entries, so no ARP is needed while the sinks drop
// everything and no frame is counted twice.
type topo struct {
	prefix  string
	sw      string
	client  host
	lb      host
	servers []host
	vip     netip.Addr

	pass     *ebpf.Program     // XDP_PASS on p-lb: veth XDP_TX needs a program on the peer
	passAtt  *steer.Attachment //
	sink     *steer.CountDrop  // one program, attached to every server's veth
	sinkAtts []*steer.Attachment

	mu    sync.Mutex
	procs []*proc
}

// host is one namespace on the segment.
type host struct {
	role   string
	ns     string
	ifname string
	port   string // its bridge port in the switch namespace
	mac    net.HardwareAddr
	ip     netip.Addr
}

const (
	numServers = 16
	multiQueue = 2
	dutCPU     = 1 // the DUT's core
	genCPU     = 0 // the generator's core
)

var (
	vip4     = netip.MustParseAddr("192.0.2.10")
	clientIP = netip.MustParseAddr("198.51.100.2")
	lbIP     = netip.MustParseAddr("198.51.100.1")
)

func hostMAC(last byte) net.HardwareAddr { return net.HardwareAddr{0x02, 0x1b, 0, 0, 0, last} }

// newTopo builds the topology. On error it removes what it made.
func newTopo(prefix string) (_ *topo, err error) {
	t := &topo{
		prefix: prefix, sw: prefix + "-sw", vip: vip4,
		client: host{role: "c", ns: prefix + "-c", ifname: "veth-c", port: "p-c", mac: hostMAC(2), ip: clientIP},
		lb:     host{role: "lb", ns: prefix + "-lb", ifname: "veth-lb", port: "p-lb", mac: hostMAC(1), ip: lbIP},
	}
	for i := 1; i <= numServers; i++ {
		r := "s" + strconv.Itoa(i)
		t.servers = append(t.servers, host{role: r, ns: prefix + "-" + r, ifname: "veth-" + r, port: "p-" + r,
			mac: hostMAC(byte(10 + i)), ip: netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})})
	}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if err := t.build(); err != nil {
		return nil, fmt.Errorf("build topology %s: %w", prefix, err)
	}
	return t, nil
}

func (t *topo) hosts() []host { return append([]host{t.client, t.lb}, t.servers...) }

func (t *topo) build() error {
	for _, ns := range append([]string{t.sw}, nsNames(t.hosts())...) {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			return fmt.Errorf("ip netns add %s: %v: %s", ns, err, bytes.TrimSpace(out))
		}
	}
	// No IPv6 anywhere: nothing but the benchmark's frames (no router
	// solicitations, no MLD) may reach a sink.
	noV6 := [][2]string{{"net.ipv6.conf.all.disable_ipv6", "1"}, {"net.ipv6.conf.default.disable_ipv6", "1"}}
	if err := lab.Sysctl(t.sw, noV6); err != nil {
		return err
	}
	// Where br_netfilter is loaded, bridged frames would also traverse
	// the netfilter hooks: a plain switch does not.
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err == nil {
		if err := lab.Sysctl(t.sw, [][2]string{{"net.bridge.bridge-nf-call-iptables", "0"},
			{"net.bridge.bridge-nf-call-ip6tables", "0"}, {"net.bridge.bridge-nf-call-arptables", "0"}}); err != nil {
			return err
		}
	}
	if err := lab.Sysctl(t.client.ns, append(noV6, [2]string{"net.ipv4.ip_local_port_range", "1024 65535"})); err != nil {
		return err
	}
	if err := lab.Sysctl(t.lb.ns, append(noV6,
		[2]string{"net.ipv4.ip_forward", "0"},
		[2]string{"net.ipv4.conf.all.rp_filter", "0"},
		[2]string{"net.ipv4.conf.default.rp_filter", "0"},
		// Forwarding back out of the interface a frame came in on would
		// otherwise send an ICMP redirect per flow.
		[2]string{"net.ipv4.conf.all.send_redirects", "0"},
		[2]string{"net.ipv4.conf.default.send_redirects", "0"},
	)); err != nil {
		return err
	}
	for _, s := range t.servers {
		if err := lab.Sysctl(s.ns, append(noV6, lab.DSRServerSysctls()...)); err != nil {
			return err
		}
	}

	var sw strings.Builder
	fmt.Fprintf(&sw, "link add br0 type bridge stp_state 0 mcast_snooping 0\n")
	for _, h := range t.hosts() {
		q := ""
		if h.role == "c" || h.role == "lb" {
			q = fmt.Sprintf(" numtxqueues %d numrxqueues %d", multiQueue, multiQueue)
		}
		fmt.Fprintf(&sw, "link add %s%s type veth peer name %s address %s netns %s%s\n", h.port, q, h.ifname, h.mac, h.ns, q)
		fmt.Fprintf(&sw, "link set %s master br0 up\n", h.port)
	}
	fmt.Fprintf(&sw, "link set br0 up\n")
	if err := ipBatch(t.sw, sw.String()); err != nil {
		return err
	}
	var br strings.Builder
	for _, h := range t.hosts() {
		fmt.Fprintf(&br, "link set dev %s learning off flood off\n", h.port)
		fmt.Fprintf(&br, "fdb replace %s dev %s master static\n", h.mac, h.port)
	}
	if err := run("bridge", "-n", t.sw, "-batch", "-", br.String()); err != nil {
		return err
	}

	// Wire-like links: the client's and servers' frames carry complete
	// checksums and are never bigger than the MTU. The DUT keeps GRO on:
	// that gives its veth a NAPI instance (as XDP does), so its receive
	// path can run in a thread of its own (see placement).
	// p-lb sends the bridge's frames to the DUT: without TSO on the sender
	// veth hands them to the DUT's GRO NAPI instead of the sender's backlog.
	if err := run("ip", "netns", "exec", t.sw, "ethtool", "-K", t.lb.port, "tso", "off"); err != nil {
		return err
	}
	for _, h := range t.hosts() {
		if h.role == "lb" {
			if err := run("ip", "netns", "exec", h.ns, "ethtool", "-K", h.ifname, "tx", "off", "tso", "off", "gso", "off", "gro", "on"); err != nil {
				return err
			}
			continue
		}
		if err := lab.DisableOffloads(h.ns, h.ifname); err != nil {
			return err
		}
	}

	for _, h := range t.hosts() {
		var b strings.Builder
		fmt.Fprintf(&b, "link set lo up\n")
		fmt.Fprintf(&b, "addr add %s/24 dev %s\n", h.ip, h.ifname)
		for _, o := range t.hosts() {
			if o.role != h.role {
				fmt.Fprintf(&b, "neigh replace %s lladdr %s dev %s nud permanent\n", o.ip, o.mac, h.ifname)
			}
		}
		if h.role[0] == 's' {
			fmt.Fprintf(&b, "addr add %s/32 dev lo\n", t.vip)
		}
		fmt.Fprintf(&b, "link set %s up\n", h.ifname)
		if h.role == "c" {
			fmt.Fprintf(&b, "route add %s/32 via %s\n", t.vip, t.lb.ip)
		}
		if err := ipBatch(h.ns, b.String()); err != nil {
			return err
		}
	}

	// The DUT's frames go back onto the bridge through p-lb: XDP_TX into
	// a veth only works when the peer has an XDP program.
	var err error
	if t.pass, err = steer.NewPassProgram(); err != nil {
		return err
	}
	if err := lab.Do(t.sw, func() error {
		ifc, err := net.InterfaceByName(t.lb.port)
		if err != nil {
			return err
		}
		t.passAtt, err = steer.AttachProgram(t.pass, ifc.Index, steer.ModeNative)
		return err
	}); err != nil {
		return fmt.Errorf("attach XDP_PASS to %s: %w", t.lb.port, err)
	}
	if t.sink, err = steer.NewCountDrop(); err != nil {
		return err
	}
	if err := t.setThreaded(true); err != nil {
		return err
	}
	return t.setQueues(1, 1)
}

// setThreaded moves the NAPI processing of the DUT's receive side (veth-lb)
// and of the bridge's egress towards the sinks (p-lb) into kernel threads
// (on), so that it can be placed and measured (see placement), or back into
// softirq context (off), where it runs on the core that raised it.
func (t *topo) setThreaded(on bool) error {
	v := "0"
	if on {
		v = "1"
	}
	for _, x := range []struct{ ns, dev string }{{t.lb.ns, t.lb.ifname}, {t.sw, t.lb.port}} {
		// ip netns exec mounts the namespace's own /sys.
		if err := run("ip", "netns", "exec", x.ns, "sh", "-c", "echo "+v+" > /sys/class/net/"+x.dev+"/threaded"); err != nil {
			return fmt.Errorf("threaded NAPI %s on %s: %w", v, x.dev, err)
		}
	}
	return nil
}

// setNAPIDefer sets the DUT interface's napi_defer_hard_irqs and
// gro_flush_timeout ("N T") and returns the function that restores them.
func (t *topo) setNAPIDefer(v string) (func(), error) {
	f := strings.Fields(v)
	if len(f) != 2 {
		return nil, fmt.Errorf("napi defer %q: want \"napi_defer_hard_irqs gro_flush_timeout\"", v)
	}
	dir := "/sys/class/net/" + t.lb.ifname + "/"
	set := func(a, b string) error {
		return run("ip", "netns", "exec", t.lb.ns, "sh", "-c", "echo "+a+" > "+dir+"napi_defer_hard_irqs && echo "+b+" > "+dir+"gro_flush_timeout")
	}
	if err := set(f[0], f[1]); err != nil {
		return nil, err
	}
	return func() { _ = set("0", "0") }, nil
}

// setRPS sets the RPS CPU mask of every receive queue of the DUT's
// interface (0: RPS off).
func (t *topo) setRPS(mask int) error {
	cmd := fmt.Sprintf("for q in /sys/class/net/%s/queues/rx-*; do echo %x > $q/rps_cpus; done", t.lb.ifname, mask)
	if err := run("ip", "netns", "exec", t.lb.ns, "sh", "-c", cmd); err != nil {
		return fmt.Errorf("RPS mask %x on %s: %w", mask, t.lb.ifname, err)
	}
	return nil
}

// setQueues sets the channel counts: gen queues on the generator's link
// (veth-c -> p-c) and dut queues on the DUT's (p-lb -> veth-lb, where the
// bridge spreads flows over the queues by their hash, as RSS would).
func (t *topo) setQueues(gen, dut int) error {
	type link struct {
		ns, dev string
		n       int
	}
	todo := []link{{t.client.ns, t.client.ifname, gen}, {t.sw, t.client.port, gen}, {t.lb.ns, t.lb.ifname, dut}, {t.sw, t.lb.port, dut}}
	// With an XDP program on p-lb the kernel refuses a channel count that
	// leaves the peer's TX queues without an RX queue: whichever order is
	// wrong now works after the other end changed, so retry. A DUT that just
	// exited may still hold its XDP link on veth-lb for a moment (the kernel
	// releases it asynchronously), so later attempts wait a little first.
	var err error
	for attempt := range 10 {
		if attempt > 1 {
			time.Sleep(100 * time.Millisecond)
		}
		var failed []link
		err = nil
		for _, x := range todo {
			e := run("ip", "netns", "exec", x.ns, "ethtool", "-L", x.dev, "rx", strconv.Itoa(x.n), "tx", strconv.Itoa(x.n))
			if e != nil && !strings.Contains(e.Error(), "unmodified") {
				failed, err = append(failed, x), e
			}
		}
		if todo = failed; len(todo) == 0 {
			return nil
		}
	}
	return err
}

// sinks attaches (on) or detaches the CountDrop programs on the servers'
// veths. With them attached the servers receive nothing.
func (t *topo) sinks(on bool) error {
	if !on {
		var first error
		for _, a := range t.sinkAtts {
			if err := a.Close(); err != nil && first == nil {
				first = err
			}
		}
		t.sinkAtts = nil
		return first
	}
	if t.sinkAtts != nil {
		return nil
	}
	for _, s := range t.servers {
		if err := lab.Do(s.ns, func() error {
			ifc, err := net.InterfaceByName(s.ifname)
			if err != nil {
				return err
			}
			a, err := t.sink.Attach(ifc.Index)
			if err != nil {
				return err
			}
			t.sinkAtts = append(t.sinkAtts, a)
			return nil
		}); err != nil {
			return fmt.Errorf("attach sink to %s: %w", s.ifname, err)
		}
	}
	return nil
}

// sinkCount returns the frames the sinks have counted so far.
func (t *topo) sinkCount() (uint64, error) {
	p, _, err := t.sink.Count()
	return p, err
}

func (t *topo) serverMACs() [][6]byte {
	var m [][6]byte
	for _, s := range t.servers {
		m = append(m, [6]byte(s.mac))
	}
	return m
}

// close stops every process and removes the namespaces (which removes the
// links and detaches whatever XDP programs are on them).
func (t *topo) close() error {
	t.mu.Lock()
	procs := t.procs
	t.procs = nil
	t.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	_ = t.sinks(false)
	if t.passAtt != nil {
		t.passAtt.Close()
	}
	if t.pass != nil {
		t.pass.Close()
	}
	if t.sink != nil {
		t.sink.Close()
	}
	_, err := lab.Remove(t.prefix)
	return err
}

func nsNames(hs []host) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.ns)
	}
	return out
}

func ipBatch(ns, cmds string) error {
	return run("ip", "-n", ns, "-batch", "-", cmds)
}

// run runs a command; a last argument ending in a newline is its stdin.
func run(name string, args ...string) error {
	var stdin string
	if n := len(args); n > 0 && strings.HasSuffix(args[n-1], "\n") {
		stdin, args = args[n-1], args[:n-1]
	}
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// output runs a command and returns its standard output.
func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return string(out), fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(ee.Stderr))
		}
		return string(out), err
	}
	return string(out), nil
}

// napiThreads returns the pids of the NAPI kernel threads of interface dev
// ("napi/<dev>-<id>", truncated to 15 characters by the kernel).
func napiThreads(dev string) []int {
	want := "napi/" + dev + "-"
	if len(want) > 15 {
		want = want[:15]
	}
	var pids []int
	ents, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, e := range ents {
		b, err := os.ReadFile(e)
		if err != nil || !strings.HasPrefix(string(b), want) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(e))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
