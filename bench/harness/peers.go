//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/ipfront/ipfront/fastpath/steer"
	"github.com/ipfront/ipfront/internal/lab"
)

// env is what the peers need besides the topology.
type env struct {
	t      *topo
	bin    string // directory of ipfront, iplab, xskfwd
	out    string // output directory (logs, configs)
	logDir string
}

// ceiling: an in-kernel XDP program on the DUT's interface that rewrites the
// MACs (server by a hash of the source address) and bounces the frame with
// XDP_TX. No load-balancing logic: nothing on this path can be faster.
func (e *env) ceiling(ctx context.Context, l load) (r pktResult) {
	r = pktResult{Key: "ceiling", Peer: "ceiling: XDP MAC rewrite + XDP_TX", Workload: l.name()}
	f, err := steer.NewMACRewriteTX(e.t.serverMACs(), [6]byte(e.t.lb.mac))
	if err != nil {
		r.Err = err
		return r
	}
	defer f.Close()
	var att *steer.Attachment
	if err := lab.Do(e.t.lb.ns, func() error {
		ifc, err := net.InterfaceByName(e.t.lb.ifname)
		if err != nil {
			return err
		}
		att, err = f.Attach(ifc.Index, steer.ModeNative)
		return err
	}); err != nil {
		r.Err = err
		return r
	}
	defer att.Close()
	r.Err = e.t.packetRun(ctx, l, nil, &r)
	return r
}

// xskfwd: the raw AF_XDP forwarder (bench/xskfwd) on ipfront's socket
// adapter and steering program: receive, set the MACs, transmit; with the
// rings and batch of ipfront's runs.
func (e *env) xskfwd(ctx context.Context, l load, busyPoll bool) pktResult {
	key := "xskfwd-busy"
	if !busyPoll {
		key = "xskfwd-nobusy"
	}
	return e.xskfwdWith(ctx, l, key, defaultIPF(busyPoll, 0))
}

// xskfwdWith runs xskfwd with c's rings, batch, busy polling, queues and
// CPUs under load l.
func (e *env) xskfwdWith(ctx context.Context, l load, key string, c ipfCfg) (r pktResult) {
	r = pktResult{Key: key, Cfg: c, Peer: fmt.Sprintf("raw AF_XDP forwarder (xskfwd, busy_poll=%v)", c.busyPoll), Workload: l.name()}
	if c.queues > 1 {
		r.Peer = fmt.Sprintf("raw AF_XDP forwarder (xskfwd, busy_poll=%v queues=%d)", c.busyPoll, c.queues)
	}
	p, err := e.startXskfwd(ctx, key, c)
	if err != nil {
		r.Err = err
		return r
	}
	defer p.stop(5 * time.Second)
	r.Err = e.t.packetRun(ctx, l, []int{p.pid()}, &r)
	if err := p.stop(5 * time.Second); err != nil && r.Err == nil {
		r.Err = err
	}
	var raw struct {
		TxDropped uint64 `json:"tx_dropped"`
		KernelRx  uint64 `json:"kernel_rx_dropped"`
		NoFrame   uint64 `json:"rx_dropped_no_frame"`
		RingFull  uint64 `json:"rx_ring_full"`
		FillEmpty uint64 `json:"rx_fill_ring_empty"`
		TxKicks   uint64 `json:"tx_kicks"`
		RxWakeups uint64 `json:"rx_wakeups"`
		RxPackets uint64 `json:"rx_packets"`
		TxPackets uint64 `json:"tx_packets"`
	}
	for _, line := range strings.Split(p.output(), "\n") {
		if strings.HasPrefix(line, "{") {
			_ = json.Unmarshal([]byte(line), &raw)
		}
	}
	r.Extra = map[string]float64{"tx_ring_full": float64(raw.TxDropped), "kernel_rx_dropped": float64(raw.KernelRx)}
	if raw.KernelRx > 0 || raw.TxDropped > 0 {
		r.Note = fmt.Sprintf("xskfwd drops over its run (warm-up included): no fill-ring frame %d, RX ring full %d, TX ring full %d; %d TX kicks and %d fill-ring wake-ups for %d frames",
			raw.NoFrame, raw.RingFull, raw.TxDropped, raw.TxKicks, raw.RxWakeups, raw.TxPackets)
	}
	return r
}

// startXskfwd starts xskfwd on the DUT with the rings, batch, queues and
// CPUs of c (the settings ipfront gets in the run it is compared with) and
// waits until it is ready.
func (e *env) startXskfwd(ctx context.Context, name string, c ipfCfg) (*proc, error) {
	var macs []string
	for _, m := range e.t.serverMACs() {
		macs = append(macs, net.HardwareAddr(m[:]).String())
	}
	queues, cpus := make([]string, c.queues), make([]string, c.queues)
	for q := range c.queues {
		queues[q], cpus[q] = fmt.Sprint(q), fmt.Sprint(c.cpus[q%len(c.cpus)])
	}
	p, err := e.t.start(e.t.lb.ns, name, e.logDir, filepath.Join(e.bin, "xskfwd"),
		"--dev", e.t.lb.ifname, "--vip", e.t.vip.String(), "--dst-mac", strings.Join(macs, ","),
		"--queues", strings.Join(queues, ","), "--cpus", strings.Join(cpus, ","), "--busy-poll="+fmt.Sprint(c.busyPoll),
		"--batch", fmt.Sprint(c.batch), "--ring", fmt.Sprint(c.ring),
		"--mode", "copy", "--xdp-mode", "native", "-o", "json")
	if err != nil {
		return nil, err
	}
	if err := p.waitOutput(ctx, "ready", 10*time.Second); err != nil {
		p.kill()
		return nil, err
	}
	return p, nil
}

// ipfCfg is the part of ipfront's configuration a run varies.
type ipfCfg struct {
	busyPoll bool
	batch    int
	ring     int
	queues   int   // 1: queue 0 only; more: "all"
	cpus     []int // one per worker
	maxAssoc int
	pprof    bool
	binary   string // the daemon to run; empty: <bin>/ipfront
	// extra are more [dataplane] lines ("key = value"), for experiments.
	extra []string
	// forwarding is the target set's forwarding key ("nat"); empty: the
	// default, DSR.
	forwarding string
	// ftp makes the target set an FTP one (natftp.go): TCP port 21,
	// helper = "ftp", the servers' passive range, the first ftpServers
	// servers.
	ftp bool
	// napiDefer, if set, is "napi_defer_hard_irqs gro_flush_timeout" for
	// the DUT's interface while ipfront runs (preferred busy polling).
	napiDefer string
}

func defaultIPF(busy bool, flows int) ipfCfg {
	return ipfCfg{busyPoll: busy, batch: 64, ring: 2048, queues: 1, cpus: []int{dutCPU}, maxAssoc: max(flows, 1024)}
}

func (c ipfCfg) String() string {
	return fmt.Sprintf("busy_poll=%v batch_size=%d ring_size=%d queues=%d", c.busyPoll, c.batch, c.ring, c.queues)
}

const apiAddr = "127.0.0.1:9180"

// ipfrontConfig writes the TOML for one run: one VIP (TCP and UDP, every
// port), 16 servers, health checks off (the sinks answer nothing).
func (e *env) ipfrontConfig(name string, c ipfCfg) (string, error) {
	var b strings.Builder
	// One queue of the DUT's two-queue veth: partial_queues says the
	// generator's traffic is meant for queue 0 only (ipfront refuses a
	// subset of queues otherwise). A base daemon (c.binary, the overhead
	// profile's before column) predates the key and refuses it as unknown.
	queues := "[0]\npartial_queues = true"
	if c.binary != "" {
		queues = "[0]"
	}
	if c.queues > 1 {
		queues = `"all"`
	}
	cpus := make([]string, len(c.cpus))
	for i, v := range c.cpus {
		cpus[i] = fmt.Sprint(v)
	}
	fmt.Fprintf(&b, "# Written by bench/harness for one benchmark run.\n[dataplane]\n")
	fmt.Fprintf(&b, "interfaces = [%q]\nqueues = %s\ncpus = [%s]\nxdp_mode = \"native\"\nbusy_poll = %v\n",
		e.t.lb.ifname, queues, strings.Join(cpus, ", "), c.busyPoll)
	fmt.Fprintf(&b, "batch_size = %d\nring_size = %d\nmax_associations = %d\nzero_copy = \"auto\"\n", c.batch, c.ring, c.maxAssoc)
	for _, x := range c.extra {
		fmt.Fprintf(&b, "%s\n", x)
	}
	fmt.Fprintf(&b, "\n[log]\nlevel = \"info\"\nformat = \"json\"\n\n[api]\nlisten = %q\npprof = %v\n", apiAddr, c.pprof)
	protos, ports, servers := `["tcp", "udp"]`, `["*"]`, e.t.servers
	if c.ftp {
		protos, ports, servers = `["tcp"]`, `["21"]`, servers[:ftpServers]
	}
	fmt.Fprintf(&b, "\n[[target_set]]\nname = \"bench\"\naddress = %q\nprotocols = %s\nports = %s\n", e.t.vip, protos, ports)
	if c.forwarding != "" {
		fmt.Fprintf(&b, "forwarding = %q\n", c.forwarding)
	}
	if c.ftp {
		fmt.Fprintf(&b, "helper = \"ftp\"\npassive_ports = [%q]\n", ftpPassive)
	}
	fmt.Fprintf(&b, "  [target_set.health]\n  type = \"none\"\n")
	for _, s := range servers {
		fmt.Fprintf(&b, "  [[target_set.server]]\n  address = %q\n  name = %q\n", s.ip, s.role)
	}
	path := filepath.Join(e.out, "configs", name+".toml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// ipfront is a running daemon.
type ipfront struct {
	p      *proc
	status statusReply
}

type statusReply struct {
	Ready      bool `json:"ready"`
	Interfaces []struct {
		Name    string `json:"name"`
		XDPMode string `json:"xdp_mode"`
		Queues  []int  `json:"queues"`
	} `json:"interfaces"`
	Workers []struct {
		Name     string `json:"name"`
		CPU      int    `json:"cpu"`
		Capacity int    `json:"capacity"`
	} `json:"workers"`
}

type countersReply struct {
	RxPackets       uint64            `json:"rx_packets"`
	TxPackets       uint64            `json:"tx_packets"`
	Dropped         uint64            `json:"dropped"`
	Drops           map[string]uint64 `json:"drops"`
	Associations    int               `json:"associations"`
	NewAssociations uint64            `json:"new_associations"`
	Stateless       uint64            `json:"stateless"`
	SteeredToXSK    uint64            `json:"steered_to_xsk"`
	PassedToKernel  uint64            `json:"passed_to_kernel"`
	ShedOpenings    uint64            `json:"shed_openings"`
}

func (e *env) startIPFront(ctx context.Context, name string, c ipfCfg) (*ipfront, error) {
	path, err := e.ipfrontConfig(name, c)
	if err != nil {
		return nil, err
	}
	bin := filepath.Join(e.bin, "ipfront")
	if c.binary != "" {
		bin = c.binary
	}
	p, err := e.t.start(e.t.lb.ns, name, e.logDir, bin, "run", "--config", path)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := lab.WaitReady(wctx, e.t.lb.ns, "http://"+apiAddr+"/v1/status", p.done); err != nil {
		p.kill()
		return nil, fmt.Errorf("ipfront %s not ready: %w; log %s:\n%s", name, err, p.log, tail(p.output(), 3000))
	}
	ipf := &ipfront{p: p}
	body, err := lab.GetJSON(ctx, e.t.lb.ns, "http://"+apiAddr+"/v1/status")
	if err == nil {
		err = json.Unmarshal(body, &ipf.status)
	}
	if err != nil {
		p.kill()
		return nil, err
	}
	return ipf, nil
}

func (e *env) counters(ctx context.Context) (countersReply, error) {
	var c countersReply
	body, err := lab.GetJSON(ctx, e.t.lb.ns, "http://"+apiAddr+"/v1/counters")
	if err != nil {
		return c, err
	}
	return c, json.Unmarshal(body, &c)
}

// ipfrontRun measures ipfront under one load and configuration, in a daemon
// of its own (so every run starts from an empty association table).
func (e *env) ipfrontRun(ctx context.Context, name string, l load, c ipfCfg) (r pktResult) {
	r = pktResult{Key: name, Cfg: c, Peer: "ipfront DSR (" + c.String() + ")", Workload: l.name()}
	ipf, err := e.startIPFront(ctx, name, c)
	if err != nil {
		r.Err = err
		return r
	}
	defer ipf.p.stop(10 * time.Second)
	if c.napiDefer != "" {
		undo, err := e.t.setNAPIDefer(c.napiDefer)
		if err != nil {
			r.Err = err
			return r
		}
		defer undo()
	}
	// The warm-up's associations are the established flows of the run;
	// c0 is taken after it.
	var c0 countersReply
	l.onStart = func() error {
		var err error
		c0, err = e.counters(ctx)
		return err
	}
	if r.Err = e.t.packetRun(ctx, l, []int{ipf.p.pid()}, &r); r.Err != nil {
		return r
	}
	c1, err := e.counters(ctx)
	if err != nil {
		r.Err = err
		return r
	}
	r.Extra = map[string]float64{
		"associations":     float64(c1.Associations),
		"new_associations": float64(c1.NewAssociations - c0.NewAssociations),
		"stateless":        float64(c1.Stateless),
		"dropped":          float64(c1.Dropped - c0.Dropped),
		"rx":               float64(c1.RxPackets - c0.RxPackets),
		"tx":               float64(c1.TxPackets - c0.TxPackets),
		"passed_to_kernel": float64(c1.PassedToKernel),
	}
	var reasons []string
	for _, k := range sortedKeys(c1.Drops) {
		if v := c1.Drops[k] - c0.Drops[k]; v > 0 {
			reasons = append(reasons, fmt.Sprintf("%s %d", k, v))
		}
	}
	if v := c1.ShedOpenings - c0.ShedOpenings; v > 0 {
		// Dropped by the steering program before an overloaded
		// worker's RX ring, not by the worker: a reason of their own.
		reasons = append(reasons, fmt.Sprintf("openings shed %d", v))
	}
	if len(reasons) > 0 {
		r.Note = "ipfront drops in the window: " + strings.Join(reasons, ", ")
	}
	if len(ipf.status.Interfaces) > 0 {
		r.Extra["xdp_native"] = b2f(ipf.status.Interfaces[0].XDPMode == "native")
	}
	if err := ipf.p.stop(10 * time.Second); err != nil {
		r.Err = err
	}
	return r
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// linuxForward: the DUT's kernel routes the VIP to server 1 (IP forwarding,
// no load balancing: one next hop).
func (e *env) linuxForward(ctx context.Context, l load) (r pktResult) {
	r = pktResult{Key: "linux", Peer: "Linux IP forwarding (one server)", Workload: l.name()}
	undo, err := e.linuxForwardOn()
	if err != nil {
		r.Err = err
		return r
	}
	defer undo()
	r.Err = e.t.packetRun(ctx, l, nil, &r)
	return r
}

// linuxForwardOn makes the DUT's kernel route the VIP to server 1 and
// returns the function that undoes it.
func (e *env) linuxForwardOn() (undo func(), err error) {
	lb := e.t.lb
	if err := lab.Sysctl(lb.ns, [][2]string{{"net.ipv4.ip_forward", "1"}}); err != nil {
		return nil, err
	}
	if err := ipBatch(lb.ns, fmt.Sprintf("route add %s/32 via %s\n", e.t.vip, e.t.servers[0].ip)); err != nil {
		lab.Sysctl(lb.ns, [][2]string{{"net.ipv4.ip_forward", "0"}})
		return nil, err
	}
	return func() {
		ipBatch(lb.ns, fmt.Sprintf("route del %s/32\n", e.t.vip))
		lab.Sysctl(lb.ns, [][2]string{{"net.ipv4.ip_forward", "0"}})
	}, nil
}

// nftMissing is why the nftables peers are skipped, or "" when nft(8) is
// installed.
func nftMissing() string {
	if _, err := exec.LookPath("nft"); err != nil {
		return "nft not installed (Debian package nftables)"
	}
	return ""
}

// nftMap is the body of an nftables map from server index to value(server):
// "0 : v0, 1 : v1, ...".
func (t *topo) nftMap(value func(host) any) string {
	var m []string
	for i, s := range t.servers {
		m = append(m, fmt.Sprintf("%d : %s", i, value(s)))
	}
	return strings.Join(m, ", ")
}

// nftDNAT: netfilter DNAT to jhash(source address, source port) over the 16
// servers, with conntrack (a stateful kernel load balancer).
func (e *env) nftDNAT(ctx context.Context, l load) (r pktResult) {
	r = pktResult{Key: "dnat", Peer: "nftables DNAT (jhash map, conntrack, 16 servers)", Workload: l.name()}
	if r.Skipped = nftMissing(); r.Skipped != "" {
		return r
	}
	lb := e.t.lb
	undo, err := e.nftDNATOn(nftDNATRules(e.t, e.t.servers, ""))
	if err != nil {
		r.Err = err
		return r
	}
	defer undo()
	r.Err = e.t.packetRun(ctx, l, nil, &r)
	if v, err := lab.ReadSysctl(lb.ns, "net.netfilter.nf_conntrack_count"); err == nil {
		r.Note = "conntrack entries after the run: " + v
		if m, err := os.ReadFile("/proc/sys/net/netfilter/nf_conntrack_max"); err == nil {
			r.Note += " (nf_conntrack_max " + strings.TrimSpace(string(m)) + ")"
		}
	}
	return r
}

// nftDNATRules is the DNAT table: the VIP's traffic to jhash(source address,
// source port) over servers, in a nat chain at prerouting; a nat chain at
// postrouting too, so that connections a conntrack helper expects get their
// source translated (nf_nat_ftp's active data connections leave from the
// VIP). extra is more of the table's body (a ct helper object and its
// chain).
func nftDNATRules(t *topo, servers []host, extra string) string {
	var m []string
	for i, s := range servers {
		m = append(m, fmt.Sprintf("%d : %s", i, s.ip))
	}
	return fmt.Sprintf(`table ip ipfbench {
%s	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		ip daddr %s dnat to jhash ip saddr . th sport mod %d map { %s }
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
	}
}
`, extra, t.vip, len(servers), strings.Join(m, ", "))
}

// nftDNATOn turns on IP forwarding on the DUT and loads rules (table ip
// ipfbench); the returned function removes the table, empties the
// connection table and turns forwarding off again.
func (e *env) nftDNATOn(rules string) (undo func(), err error) {
	lb := e.t.lb
	off := func() { lab.Sysctl(lb.ns, [][2]string{{"net.ipv4.ip_forward", "0"}}) }
	if err := lab.Sysctl(lb.ns, [][2]string{{"net.ipv4.ip_forward", "1"}}); err != nil {
		return nil, err
	}
	if err := run("ip", "netns", "exec", lb.ns, "nft", "-f", "-", rules); err != nil {
		off()
		return nil, err
	}
	return func() {
		_ = run("ip", "netns", "exec", lb.ns, "nft", "delete", "table", "ip", "ipfbench")
		if _, err := exec.LookPath("conntrack"); err == nil {
			_ = run("ip", "netns", "exec", lb.ns, "conntrack", "-F")
			_ = run("ip", "netns", "exec", lb.ns, "conntrack", "-F", "expect")
		}
		off()
	}, nil
}

// nftNetdev: stateless L2 DSR in an nftables netdev ingress chain: the
// destination MAC is a jhash of the source address into the 16 servers'
// MACs, the source MAC the DUT's, and the frame is sent back out (fwd).
// The like-for-like kernel peer of ipfront's DSR.
func (e *env) nftNetdev(ctx context.Context, l load) (r pktResult) {
	r = pktResult{Key: "netdev", Peer: "nftables netdev ingress L2 DSR (stateless jhash)", Workload: l.name()}
	if r.Skipped = nftMissing(); r.Skipped != "" {
		return r
	}
	undo, err := e.nftNetdevOn()
	if err != nil {
		r.Err = err
		return r
	}
	defer undo()
	r.Err = e.t.packetRun(ctx, l, nil, &r)
	return r
}

// nftNetdevOn loads the netdev DSR table and returns the function that
// removes it. nft(8) must be installed.
func (e *env) nftNetdevOn() (undo func(), err error) {
	lb := e.t.lb
	rules := fmt.Sprintf(`table netdev ipfbench {
	chain in {
		type filter hook ingress device %q priority 0; policy accept;
		ip daddr %s ether saddr set %s ether daddr set jhash ip saddr mod %d map { %s } fwd to %q
	}
}
`, lb.ifname, e.t.vip, lb.mac, len(e.t.servers), e.t.nftMap(func(s host) any { return s.mac }), lb.ifname)
	if err := run("ip", "netns", "exec", lb.ns, "nft", "-f", "-", rules); err != nil {
		return nil, err
	}
	return func() { run("ip", "netns", "exec", lb.ns, "nft", "delete", "table", "netdev", "ipfbench") }, nil
}

func sortedKeys(m map[string]uint64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
