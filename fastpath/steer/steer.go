//go:build linux

// Package steer builds and manages ipfront's steering XDP program: frames
// addressed to a VIP are redirected to the AF_XDP socket of the queue they
// arrived on, everything else (other addresses, ARP, NDP, non-IP, runts)
// continues into the kernel with XDP_PASS.
//
// There is no clang on the build machines, so the programs are written with
// cilium/ebpf's asm package; the instruction listings below carry the
// equivalent C as comments.
//
// The package also has small helper programs for labs and benchmarks:
// NewPassProgram (an XDP_PASS program, which a veth peer needs before XDP_TX
// or redirect into it succeeds), CountDrop (a counting sink) and MACRewriteTX
// (an in-kernel forwarder, the "ceiling" to compare the AF_XDP path with).
package steer

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// XDP verdicts.
const (
	xdpAborted  = 0
	xdpDrop     = 1
	xdpPass     = 2
	xdpTX       = 3
	xdpRedirect = 4
)

// EtherTypes as a little-endian 16-bit load from the packet sees them (the
// programs compare the raw network-order bytes).
const (
	leEthIPv4  = 0x0008 // 0x0800
	leEthIPv6  = 0xdd86 // 0x86dd
	leEthVLAN  = 0x0081 // 0x8100, 802.1Q
	leEthQinQ  = 0xa888 // 0x88a8, 802.1ad
	ethHdrLen  = 14
	vlanHdrLen = 4
	ipv4HdrLen = 20 // without options; only the fixed part is read
	ipv6HdrLen = 40
)

// Offsets in struct xdp_md.
const (
	xdpMDData         = 0
	xdpMDDataEnd      = 4
	xdpMDRxQueueIndex = 16
)

// MaxVIPs is the capacity of the VIP map.
const MaxVIPs = 4096

// vipActive is the value stored for a VIP (flags; the program only checks
// that the key is present).
const vipActive uint32 = 1

// Counter slots of the steering program's per-CPU counter array.
const (
	ctrRedirected       = iota // redirected into an AF_XDP socket
	ctrPassMiss                // IPv4/IPv6, destination not a VIP
	ctrPassNotIP               // not IP, too short, or more than 2 VLAN tags
	ctrPassNoSocket            // VIP, but no socket registered for the queue
	ctrRedirectedReturn        // a NAT server's return traffic redirected (nat.go)
	ctrPassLocal               // a NAT server's traffic to the host itself (nat.go)
	ctrPassOtherHost           // unicast to another host's MAC (ifmac.go)
	ctrShedOpening             // an opening to a VIP dropped while its worker is overloaded (overload.go)
	numCounters
)

// XDPMode selects how a program is attached.
type XDPMode int

const (
	// ModeAuto tries native (driver) mode and falls back to generic.
	ModeAuto XDPMode = iota
	// ModeNative attaches in the driver (XDP_FLAGS_DRV_MODE).
	ModeNative
	// ModeGeneric attaches in the generic, skb-based hook (XDP_FLAGS_SKB_MODE).
	ModeGeneric
)

// String returns the mode's configuration name.
func (m XDPMode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeNative:
		return "native"
	case ModeGeneric:
		return "generic"
	}
	return fmt.Sprintf("XDPMode(%d)", int(m))
}

// Attachment is an XDP program attached to an interface through a BPF link:
// the kernel detaches it when Close is called or the process dies.
type Attachment struct {
	link link.Link
	mode XDPMode
}

// Mode returns the mode the program was attached in (ModeNative or
// ModeGeneric, never ModeAuto).
func (a *Attachment) Mode() XDPMode { return a.mode }

// Close detaches the program.
func (a *Attachment) Close() error { return a.link.Close() }

// attach attaches prog to ifindex in mode; ModeAuto tries native first.
func attach(prog *ebpf.Program, ifindex int, mode XDPMode) (*Attachment, error) {
	try := func(m XDPMode) (*Attachment, error) {
		flags := link.XDPDriverMode
		if m == ModeGeneric {
			flags = link.XDPGenericMode
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifindex, Flags: flags})
		if err != nil {
			return nil, fmt.Errorf("attach XDP %v to ifindex %d: %w", m, ifindex, err)
		}
		return &Attachment{link: l, mode: m}, nil
	}
	switch mode {
	case ModeNative, ModeGeneric:
		return try(mode)
	case ModeAuto:
		a, errNative := try(ModeNative)
		if errNative == nil {
			return a, nil
		}
		a, errGeneric := try(ModeGeneric)
		if errGeneric == nil {
			return a, nil
		}
		return nil, errors.Join(errNative, errGeneric)
	}
	return nil, fmt.Errorf("unknown XDP mode %v", mode)
}

// Program is the loaded steering program and its maps. Its methods may be
// called from any goroutine.
type Program struct {
	prog     *ebpf.Program
	vips     *ebpf.Map    // hash: [16]byte address (IPv4 as ::ffff:a.b.c.d) -> uint32 flags
	xsks     *ebpf.Map    // xskmap: rx queue -> AF_XDP socket
	counters *ebpf.Map    // per-CPU array of uint64, ctr* slots
	ret      *ebpf.Map    // hash: [16]byte NAT server address -> retValue (nat.go)
	local    *ebpf.Map    // hash: [16]byte host address -> uint32 (nat.go)
	ifmacs   *ebpf.Map    // array: ifindex % ifMACSlots -> ifMACValue (ifmac.go)
	overload *overloadMap // array: rx queue -> the worker's overload cell (overload.go)

	maxQueues int
	mu        sync.Mutex // serialises SetVIPs
}

// Load creates the maps and loads the steering program for interfaces with up
// to maxQueues RX queues. It lifts RLIMIT_MEMLOCK for kernels that still
// charge BPF memory to it.
func Load(maxQueues int) (*Program, error) {
	if maxQueues < 1 {
		return nil, fmt.Errorf("steer: maxQueues %d < 1", maxQueues)
	}
	if err := removeMemlock(); err != nil {
		return nil, err
	}
	p := &Program{maxQueues: maxQueues}
	var err error
	if p.vips, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "ipfront_vips", Type: ebpf.Hash, KeySize: 16, ValueSize: 4, MaxEntries: MaxVIPs,
	}); err != nil {
		return nil, fmt.Errorf("steer: create VIP map: %w", err)
	}
	if p.xsks, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "ipfront_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(maxQueues),
	}); err != nil {
		p.Close()
		return nil, fmt.Errorf("steer: create XSK map: %w", err)
	}
	if p.counters, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "ipfront_steer_c", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: numCounters,
	}); err != nil {
		p.Close()
		return nil, fmt.Errorf("steer: create counter map: %w", err)
	}
	if p.ret, p.local, err = newReturnMaps(); err != nil {
		p.Close()
		return nil, err
	}
	if p.ifmacs, err = newIfMACMap(); err != nil {
		p.Close()
		return nil, err
	}
	if p.overload, err = newOverloadMap(maxQueues); err != nil {
		p.Close()
		return nil, err
	}
	insns := append(steerInstructions(p.vips.FD(), p.xsks.FD(), p.counters.FD(), p.ifmacs.FD(), p.overload.m.FD()),
		returnInstructions(p.ret.FD(), p.local.FD(), p.xsks.FD())...)
	if p.prog, err = newXDP("ipfront_steer", insns); err != nil {
		p.Close()
		return nil, fmt.Errorf("steer: load program: %w", err)
	}
	return p, nil
}

// removeMemlock lifts RLIMIT_MEMLOCK for kernels that still charge BPF
// memory to it.
func removeMemlock() error {
	if err := rlimit.RemoveMemlock(); err != nil {
		return fmt.Errorf("steer: remove memlock rlimit: %w", err)
	}
	return nil
}

// newXDP loads the XDP program insns under name.
func newXDP(name string, insns asm.Instructions) (*ebpf.Program, error) {
	return ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         name,
		Type:         ebpf.XDP,
		License:      "Dual BSD/GPL",
		Instructions: insns,
	})
}

// steerInstructions is the steering program. In C:
//
//	int steer(struct xdp_md *ctx) {
//		void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
//		__u32 ctr = PASS_NOT_IP, verdict = XDP_PASS;
//		__u8 key[16];
//		if (data + 14 > end) goto out;
//		__u16 proto = *(__u16 *)(data + 12); data += 14;
//		for (int i = 0; i < 2 && (proto == htons(0x8100) || proto == htons(0x88a8)); i++) {
//			if (data + 4 > end) goto out;
//			proto = *(__u16 *)(data + 2); data += 4;
//		}
//		if (proto == htons(ETH_P_IP)) {
//			if (data + 20 > end) goto out;
//			key = ::ffff:<iph->daddr>;
//		} else if (proto == htons(ETH_P_IPV6)) {
//			if (data + 40 > end) goto out;
//			if (ipv6_addr_v4mapped(&ip6h->daddr)) goto out; // never on the wire
//			key = ip6h->daddr;
//		} else goto out;
//		ctr = PASS_MISS;
//		if (!bpf_map_lookup_elem(&vips, key)) goto nat; // NAT return traffic (nat.go)
//		if (overloaded(ctx) && opening(data)) { verdict = XDP_DROP; ctr = SHED_OPENING; goto out; } // overload.go
//	steer_vip:
//		verdict = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
//		ctr = verdict == XDP_REDIRECT ? REDIRECTED : PASS_NO_SOCKET;
//	out:
//		__u64 *c = bpf_map_lookup_elem(&counters, &ctr);
//		if (c) (*c)++;
//		return verdict;
//	}
//
// Registers: r6 ctx, r7 verdict, r8 counter slot, r2 cursor, r3 data_end,
// r9 the IP header (for the return block).
// Stack: fp-16..fp-1 key, fp-20 counter slot, fp-44 family; nat.go's block
// uses fp-48..fp-25 too.
func steerInstructions(vipsFD, xsksFD, countersFD, ifmacsFD, overloadFD int) asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.Mov.Imm(asm.R7, xdpPass),
		asm.Mov.Imm(asm.R8, ctrPassNotIP),
		asm.LoadMem(asm.R2, asm.R6, xdpMDData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, xdpMDDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, ethHdrLen),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
	}
	insns = append(insns, ifMACInstructions(ifmacsFD)...) // ifmac.go
	insns = append(insns,
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half).WithSymbol("mac_ok"),
		asm.Add.Imm(asm.R2, ethHdrLen),
	)
	// Up to two VLAN tags (802.1Q, 802.1ad); a third one is "not IP".
	for i := range 2 {
		tag := fmt.Sprintf("vlan%d", i)
		insns = append(insns,
			asm.JEq.Imm(asm.R5, leEthVLAN, tag),
			asm.JEq.Imm(asm.R5, leEthQinQ, tag),
			asm.Ja.Label("l3"),
			asm.Mov.Reg(asm.R4, asm.R2).WithSymbol(tag),
			asm.Add.Imm(asm.R4, vlanHdrLen),
			asm.JGT.Reg(asm.R4, asm.R3, "out"),
			asm.LoadMem(asm.R5, asm.R2, 2, asm.Half),
			asm.Add.Imm(asm.R2, vlanHdrLen),
		)
	}
	insns = append(insns,
		asm.JEq.Imm(asm.R5, leEthIPv4, "ipv4").WithSymbol("l3"),
		asm.JEq.Imm(asm.R5, leEthIPv6, "ipv6"),
		asm.Ja.Label("out"),

		// IPv4: key = ::ffff:daddr
		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("ipv4"),
		asm.Add.Imm(asm.R4, ipv4HdrLen),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.Mov.Reg(asm.R9, asm.R2),
		asm.StoreImm(asm.RFP, stackFamily, 4, asm.Word),
		asm.LoadMem(asm.R5, asm.R2, 16, asm.Word),
		asm.StoreImm(asm.RFP, -16, 0, asm.Word),
		asm.StoreImm(asm.RFP, -12, 0, asm.Word),
		asm.StoreImm(asm.RFP, -8, -0x10000, asm.Word), // bytes 00 00 ff ff
		asm.StoreMem(asm.RFP, -4, asm.R5, asm.Word),
		asm.Ja.Label("lookup"),

		// IPv6: key = daddr, unless it is IPv4-mapped.
		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("ipv6"),
		asm.Add.Imm(asm.R4, ipv6HdrLen),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.Mov.Reg(asm.R9, asm.R2),
		asm.StoreImm(asm.RFP, stackFamily, 6, asm.Word),
		asm.LoadMem(asm.R5, asm.R2, 24, asm.DWord),
		asm.StoreMem(asm.RFP, -16, asm.R5, asm.DWord),
		asm.LoadMem(asm.R4, asm.R2, 32, asm.DWord),
		asm.StoreMem(asm.RFP, -8, asm.R4, asm.DWord),
		asm.JNE.Imm(asm.R5, 0, "lookup"),
		asm.JEq.Imm32(asm.R4, -0x10000, "out"), // low word 00 00 ff ff: ::ffff:0:0/96

		asm.Mov.Imm(asm.R8, ctrPassMiss).WithSymbol("lookup"),
		asm.LoadMapPtr(asm.R1, vipsFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "nat"),
	)
	insns = append(insns, overloadInstructions(overloadFD)...)
	redirect := redirectToQueue(xsksFD, ctrRedirected)
	redirect[0] = redirect[0].WithSymbol("steer_vip")
	insns = append(insns, redirect...)
	insns = append(insns, countAndReturn(countersFD)...)
	return insns
}

// redirectToQueue redirects the frame to the socket of its RX queue (R6 is
// the xdp_md context) and leaves the verdict in R7 and the counter to bump
// in R8: counter on success, ctrPassNoSocket when the queue has no socket
// (the frame then passes to the kernel). Both end at label "out".
func redirectToQueue(xsksFD int, counter int32) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, asm.R6, xdpMDRxQueueIndex, asm.Word),
		asm.LoadMapPtr(asm.R1, xsksFD),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Mov.Reg(asm.R7, asm.R0),
		asm.Mov.Imm(asm.R8, counter),
		asm.JEq.Imm(asm.R0, xdpRedirect, "out"),
		asm.Mov.Imm(asm.R8, ctrPassNoSocket),
	}
}

// The program is steerInstructions followed by returnInstructions (nat.go),
// whose "nat" label the VIP lookup jumps to on a miss.

// countAndReturn is the common tail: labelled "out", it increments the
// per-CPU counter slot in r8 and returns r7.
func countAndReturn(countersFD int) asm.Instructions {
	return asm.Instructions{
		asm.StoreMem(asm.RFP, -20, asm.R8, asm.Word).WithSymbol("out"),
		asm.LoadMapPtr(asm.R1, countersFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -20),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "ret"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R0, asm.R7).WithSymbol("ret"),
		asm.Return(),
	}
}

// Attach attaches the steering program to ifindex through a BPF link, so it
// is detached when the returned Attachment is closed or the process dies.
// The interface is looked up in the calling thread's network namespace.
func (p *Program) Attach(ifindex int, mode XDPMode) (*Attachment, error) {
	return AttachProgram(p.prog, ifindex, mode)
}

// RegisterSocket makes queueID's frames for VIPs go to the AF_XDP socket fd.
// The socket must already be bound (to that queue of the interface the
// program is attached to).
func (p *Program) RegisterSocket(queueID int, fd int) error {
	if queueID < 0 || queueID >= p.maxQueues {
		return fmt.Errorf("steer: queue %d out of range [0, %d)", queueID, p.maxQueues)
	}
	if err := p.xsks.Put(uint32(queueID), uint32(fd)); err != nil {
		return fmt.Errorf("steer: register socket for queue %d: %w", queueID, err)
	}
	return nil
}

// UnregisterSocket removes queueID's socket: its VIP frames pass to the
// kernel again (counted as "no socket").
func (p *Program) UnregisterSocket(queueID int) error {
	if err := p.xsks.Delete(uint32(queueID)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("steer: unregister socket for queue %d: %w", queueID, err)
	}
	return nil
}

// vipKey is the map key of addr: the 16-byte address, IPv4 as IPv4-mapped
// IPv6 (::ffff:a.b.c.d), so an IPv4 VIP and its mapped form are one entry.
func vipKey(addr netip.Addr) [16]byte { return addr.As16() }

// SetVIPs makes the VIP map contain exactly addrs: it adds the new ones, then
// deletes those no longer listed; unchanged entries are not touched, so
// traffic to them is steered throughout. Called at run time by the slow path.
func (p *Program) SetVIPs(addrs []netip.Addr) error {
	want := make(map[[16]byte]struct{}, len(addrs))
	for _, a := range addrs {
		if !a.IsValid() {
			return fmt.Errorf("steer: invalid VIP address %v", a)
		}
		want[vipKey(a)] = struct{}{}
	}
	if len(want) > MaxVIPs {
		return fmt.Errorf("steer: %d VIPs exceed the map's %d entries", len(want), MaxVIPs)
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	have, err := p.vipKeys()
	if err != nil {
		return err
	}
	for k := range want {
		if _, ok := have[k]; ok {
			continue
		}
		if err := p.vips.Put(k, vipActive); err != nil {
			return fmt.Errorf("steer: add VIP %v: %w", netip.AddrFrom16(k).Unmap(), err)
		}
	}
	for k := range have {
		if _, ok := want[k]; ok {
			continue
		}
		if err := p.vips.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("steer: delete VIP %v: %w", netip.AddrFrom16(k).Unmap(), err)
		}
	}
	return nil
}

func (p *Program) vipKeys() (map[[16]byte]struct{}, error) {
	have := make(map[[16]byte]struct{})
	var k [16]byte
	var v uint32
	it := p.vips.Iterate()
	for it.Next(&k, &v) {
		have[k] = struct{}{}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("steer: list VIPs: %w", err)
	}
	return have, nil
}

// VIPs returns the addresses in the VIP map (IPv4 unmapped), in no order.
func (p *Program) VIPs() ([]netip.Addr, error) {
	have, err := p.vipKeys()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(have))
	for k := range have {
		out = append(out, netip.AddrFrom16(k).Unmap())
	}
	return out, nil
}

// Stats are the steering program's counters, summed over CPUs.
type Stats struct {
	Redirected   uint64 // to an AF_XDP socket
	PassMiss     uint64 // IP, destination not a VIP, not a NAT server's return traffic
	PassNotIP    uint64 // not IPv4/IPv6 (ARP, ...), runt, or more than 2 VLAN tags
	PassNoSocket uint64 // VIP or return traffic, but no socket registered for the RX queue
	// RedirectedReturn counts NAT servers' return traffic redirected to an
	// AF_XDP socket (not in Redirected).
	RedirectedReturn uint64
	// PassLocal counts NAT servers' traffic to the host's own addresses.
	PassLocal uint64
	// PassOtherHost counts unicast frames addressed to another host's MAC
	// (flooded by a switch; ifmac.go), which the kernel drops.
	PassOtherHost uint64
	// ShedOpenings counts openings to a VIP dropped while their worker
	// was overloaded (overload.go).
	ShedOpenings uint64
}

// Passed is the number of frames the program passed to the kernel.
func (s Stats) Passed() uint64 {
	return s.PassMiss + s.PassNotIP + s.PassNoSocket + s.PassLocal + s.PassOtherHost
}

// Stats reads the counters.
func (p *Program) Stats() (Stats, error) {
	var c [numCounters]uint64
	if err := sumPerCPU(p.counters, c[:]); err != nil {
		return Stats{}, fmt.Errorf("steer: read counters: %w", err)
	}
	return Stats{
		Redirected:   c[ctrRedirected],
		PassMiss:     c[ctrPassMiss],
		PassNotIP:    c[ctrPassNotIP],
		PassNoSocket: c[ctrPassNoSocket],

		RedirectedReturn: c[ctrRedirectedReturn],
		PassLocal:        c[ctrPassLocal],
		PassOtherHost:    c[ctrPassOtherHost],
		ShedOpenings:     c[ctrShedOpening],
	}, nil
}

// sumPerCPU reads slots 0..len(out)-1 of a per-CPU array of uint64 and sums
// each over CPUs.
func sumPerCPU(m *ebpf.Map, out []uint64) error {
	var vals []uint64
	for i := range out {
		if err := m.Lookup(uint32(i), &vals); err != nil {
			return err
		}
		var sum uint64
		for _, v := range vals {
			sum += v
		}
		out[i] = sum
	}
	return nil
}

// Program returns the underlying program (e.g. for BPF_PROG_TEST_RUN).
func (p *Program) Program() *ebpf.Program { return p.prog }

// Close unloads the program and its maps. Attachments hold their own
// reference: close them to detach.
func (p *Program) Close() error {
	var errs []error
	if p.prog != nil {
		errs = append(errs, p.prog.Close())
	}
	for _, m := range []*ebpf.Map{p.vips, p.xsks, p.counters, p.ret, p.local, p.ifmacs} {
		if m != nil {
			errs = append(errs, m.Close())
		}
	}
	errs = append(errs, p.overload.close())
	return errors.Join(errs...)
}
