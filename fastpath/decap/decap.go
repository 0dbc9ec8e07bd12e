//go:build linux

// Package decap is the server side of ipfront's IPIP and GUE forwarding: an
// XDP program that strips the outer headers ipfront added
// (fastpath/forward_encap.go) and passes the client's packet to the kernel
// as if it had arrived bare, for servers whose kernels have no ipip, ip6tnl
// or fou modules (as Katran ships its decap program). `ipfront decap attach`
// loads and attaches it; it stays attached after the command exits (a
// netlink attachment, not a BPF link), until `ipfront decap detach`.
//
// What it decapsulates, from frames addressed to the interface (no VLAN tag):
//
//   - mode IPIP: IPv4 (without options, not a fragment) or IPv6 (no
//     extension headers) whose protocol is 4 (IPv4 in IP) or 41 (IPv6 in IP);
//   - mode GUE: the same outer headers with UDP to the configured port,
//     then a GUE header: variant 0 without optional fields (Hlen 0, C 0),
//     protocol 4 or 41, or variant 1 (the inner IP header right after UDP).
//
// Everything else passes untouched (counted as not ours). The inner packet
// is not checked: the kernel checks it like any received packet. Fragmented
// outer packets are not reassembled: ipfront sends DF and never fragments.
//
// The program accepts tunnel packets from any source. On a server reachable
// from untrusted networks, filter IPIP / the GUE port to ipfront's outer
// source prefixes upstream (or with nftables on a tc/netdev hook before this
// one), as with any tunnel endpoint: whoever can send them can inject
// packets with any inner source.
//
// The program is written with cilium/ebpf's asm package (no clang on the
// build machines), the equivalent C in comments, like fastpath/steer.
package decap

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/rlimit"
)

// Mode is what the program decapsulates.
type Mode int

// Modes.
const (
	ModeIPIP Mode = iota // IP in IP: protocols 4 and 41
	ModeGUE              // GUE over UDP to Config.Port
)

// String returns the mode's command-line name.
func (m Mode) String() string {
	switch m {
	case ModeIPIP:
		return "ipip"
	case ModeGUE:
		return "gue"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode parses a command-line mode name.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "ipip":
		return ModeIPIP, nil
	case "gue":
		return ModeGUE, nil
	}
	return 0, fmt.Errorf("decap: unknown mode %q (want ipip or gue)", s)
}

// DefaultGUEPort is ipfront's default gue_port.
const DefaultGUEPort = 6080

// Config says what the program decapsulates.
type Config struct {
	Mode Mode
	Port uint16 // GUE's UDP destination port (ModeGUE)
}

// ProgramName is the program's kernel name, by which Detach and Status
// recognise it.
const ProgramName = "ipfront_decap"

// Counter slots of the per-CPU counter array.
const (
	CtrDecapsulated = iota // outer headers stripped, passed to the kernel
	CtrPassed              // not a tunnel packet of the mode: passed untouched
	CtrFailed              // bpf_xdp_adjust_head failed: dropped
	NumCounters
)

// XDP verdicts, EtherTypes as a little-endian 16-bit load sees them, and
// header lengths.
const (
	xdpDrop    = 1
	xdpPass    = 2
	leEthIPv4  = 0x0008
	leEthIPv6  = 0xdd86
	ethHdrLen  = 14
	ipv4HdrLen = 20
	ipv6HdrLen = 40
	udpHdrLen  = 8
	gueHdrLen  = 4
	// struct xdp_md offsets.
	xdpMDData    = 0
	xdpMDDataEnd = 4
)

// Program is the loaded decapsulation program and its counters.
type Program struct {
	prog     *ebpf.Program
	counters *ebpf.Map
}

// ErrBadConfig is returned for a configuration the program cannot follow.
var ErrBadConfig = errors.New("decap: invalid configuration")

// Load loads the program for cfg.
func Load(cfg Config) (*Program, error) {
	if cfg.Mode == ModeGUE && cfg.Port == 0 {
		return nil, fmt.Errorf("%w: GUE needs a port", ErrBadConfig)
	}
	if cfg.Mode != ModeIPIP && cfg.Mode != ModeGUE {
		return nil, fmt.Errorf("%w: mode %v", ErrBadConfig, cfg.Mode)
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, fmt.Errorf("decap: remove memlock rlimit: %w", err)
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "ipfront_decapc", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: NumCounters,
	})
	if err != nil {
		return nil, fmt.Errorf("decap: create counter map: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         ProgramName,
		Type:         ebpf.XDP,
		License:      "Dual BSD/GPL",
		Instructions: instructions(cfg, m.FD()),
	})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("decap: load program: %w", err)
	}
	return &Program{prog: prog, counters: m}, nil
}

// Program returns the XDP program.
func (p *Program) Program() *ebpf.Program { return p.prog }

// Close unloads the program unless it is attached (an attachment holds its
// own reference).
func (p *Program) Close() error {
	return errors.Join(p.prog.Close(), p.counters.Close())
}

// Counters returns the program's counters summed over CPUs, indexed by
// Ctr*.
func (p *Program) Counters() ([NumCounters]uint64, error) {
	return readCounters(p.counters)
}

// readCounters sums the per-CPU counter array m.
func readCounters(m *ebpf.Map) ([NumCounters]uint64, error) {
	var out [NumCounters]uint64
	for k := range uint32(NumCounters) {
		var per []uint64
		if err := m.Lookup(k, &per); err != nil {
			return out, fmt.Errorf("decap: read counter %d: %w", k, err)
		}
		for _, v := range per {
			out[k] += v
		}
	}
	return out, nil
}

// instructions is the program. In C (GUE mode; IPIP skips the UDP part and
// takes protocols 4 and 41 of the outer header instead of 17):
//
//	int decap(struct xdp_md *ctx) {
//		void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
//		__u32 ctr = PASSED; int verdict = XDP_PASS, hlen; __u16 inner;
//		if (data + 14 > end) goto out;
//		__u16 proto = *(__u16 *)(data + 12);
//		if (proto == htons(ETH_P_IP)) {
//			struct iphdr *ip = data + 14;
//			if ((void *)(ip + 1) > end || *(__u8 *)ip != 0x45 || ip->frag_off & htons(0x3fff)) goto out;
//			if (ip->protocol != IPPROTO_UDP) goto out; hlen = 20;
//		} else if (proto == htons(ETH_P_IPV6)) {
//			struct ipv6hdr *ip6 = data + 14;
//			if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_UDP) goto out; hlen = 40;
//		} else goto out;
//		struct udphdr *udp = data + 14 + hlen;
//		if ((void *)udp + 12 > end || udp->dest != htons(PORT)) goto out;
//		__u8 g = *(__u8 *)(udp + 1), p = *((__u8 *)(udp + 1) + 1);
//		if (g == 0 && p == 4) { hlen += 12; inner = htons(ETH_P_IP); }        // variant 0, no options
//		else if (g == 0 && p == 41) { hlen += 12; inner = htons(ETH_P_IPV6); }
//		else if (g >> 4 == 4) { hlen += 8; inner = htons(ETH_P_IP); }          // variant 1
//		else if (g >> 4 == 6) { hlen += 8; inner = htons(ETH_P_IPV6); }
//		else goto out;
//		if (data + hlen + 14 > end) goto out;
//		memcpy(data + hlen, data, 12); *(__u16 *)(data + hlen + 12) = inner;
//		ctr = DECAPSULATED;
//		if (bpf_xdp_adjust_head(ctx, hlen)) { ctr = FAILED; verdict = XDP_DROP; }
//	out:
//		__u64 *c = bpf_map_lookup_elem(&counters, &ctr); if (c) (*c)++;
//		return verdict;
//	}
//
// Registers: r6 ctx, r7 hlen, r8 inner EtherType, r9 counter slot, r2 data,
// r3 data_end, r0 the verdict at "ret".
func instructions(cfg Config, countersFD int) asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.Mov.Imm(asm.R9, CtrPassed),
		asm.LoadMem(asm.R2, asm.R6, xdpMDData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, xdpMDDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, ethHdrLen),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.JEq.Imm(asm.R5, leEthIPv4, "ipv4"),
		asm.JEq.Imm(asm.R5, leEthIPv6, "ipv6"),
		asm.Ja.Label("out"),

		// IPv4 without options, not a fragment.
		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("ipv4"),
		asm.Add.Imm(asm.R4, ethHdrLen+ipv4HdrLen),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.LoadMem(asm.R5, asm.R2, ethHdrLen, asm.Byte),
		asm.JNE.Imm(asm.R5, 0x45, "out"),
		asm.LoadMem(asm.R5, asm.R2, ethHdrLen+6, asm.Half),
		asm.And.Imm(asm.R5, 0xff3f), // frag_off & htons(0x3fff), as loaded little-endian
		asm.JNE.Imm(asm.R5, 0, "out"),
		asm.Mov.Imm(asm.R7, ipv4HdrLen),
		asm.LoadMem(asm.R5, asm.R2, ethHdrLen+9, asm.Byte),
		asm.Ja.Label("l4"),

		// IPv6 without extension headers.
		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("ipv6"),
		asm.Add.Imm(asm.R4, ethHdrLen+ipv6HdrLen),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.Mov.Imm(asm.R7, ipv6HdrLen),
		asm.LoadMem(asm.R5, asm.R2, ethHdrLen+6, asm.Byte),
	}
	// r5 is the outer protocol, r7 the outer IP header's length.
	if cfg.Mode == ModeIPIP {
		insns = append(insns,
			asm.Mov.Imm(asm.R8, leEthIPv4).WithSymbol("l4"),
			asm.JEq.Imm(asm.R5, 4, "strip"),
			asm.Mov.Imm(asm.R8, leEthIPv6),
			asm.JEq.Imm(asm.R5, 41, "strip"),
			asm.Ja.Label("out"),
		)
	} else {
		// The UDP header and GUE's first two bytes: data + 14 + r7 + 12.
		insns = append(insns,
			asm.JNE.Imm(asm.R5, 17, "out").WithSymbol("l4"),
			asm.Mov.Reg(asm.R4, asm.R2),
			asm.Add.Reg(asm.R4, asm.R7),
			asm.Mov.Reg(asm.R5, asm.R4),
			asm.Add.Imm(asm.R5, ethHdrLen+udpHdrLen+gueHdrLen),
			asm.JGT.Reg(asm.R5, asm.R3, "out"),
			asm.LoadMem(asm.R5, asm.R4, ethHdrLen+2, asm.Half), // UDP destination port
			asm.JNE.Imm(asm.R5, int32(uint16(cfg.Port>>8|cfg.Port<<8)), "out"),
			asm.LoadMem(asm.R5, asm.R4, ethHdrLen+udpHdrLen, asm.Byte),   // GUE: version, C, Hlen
			asm.LoadMem(asm.R1, asm.R4, ethHdrLen+udpHdrLen+1, asm.Byte), // GUE: protocol
			asm.JNE.Imm(asm.R5, 0, "variant1"),
			asm.Add.Imm(asm.R7, udpHdrLen+gueHdrLen),
			asm.Mov.Imm(asm.R8, leEthIPv4),
			asm.JEq.Imm(asm.R1, 4, "strip"),
			asm.Mov.Imm(asm.R8, leEthIPv6),
			asm.JEq.Imm(asm.R1, 41, "strip"),
			asm.Ja.Label("out"),
			asm.RSh.Imm(asm.R5, 4).WithSymbol("variant1"),
			asm.Add.Imm(asm.R7, udpHdrLen),
			asm.Mov.Imm(asm.R8, leEthIPv4),
			asm.JEq.Imm(asm.R5, 4, "strip"),
			asm.Mov.Imm(asm.R8, leEthIPv6),
			asm.JEq.Imm(asm.R5, 6, "strip"),
			asm.Ja.Label("out"),
		)
	}
	insns = append(insns,
		// Move the MACs in front of the inner packet, then drop what
		// precedes them.
		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("strip"),
		asm.Add.Reg(asm.R4, asm.R7),
		asm.Mov.Reg(asm.R5, asm.R4),
		asm.Add.Imm(asm.R5, ethHdrLen),
		asm.JGT.Reg(asm.R5, asm.R3, "out"),
		asm.LoadMem(asm.R1, asm.R2, 0, asm.Word),
		asm.StoreMem(asm.R4, 0, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 4, asm.Word),
		asm.StoreMem(asm.R4, 4, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R2, 8, asm.Word),
		asm.StoreMem(asm.R4, 8, asm.R1, asm.Word),
		asm.StoreMem(asm.R4, 12, asm.R8, asm.Half),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.Mov.Reg(asm.R2, asm.R7),
		asm.FnXdpAdjustHead.Call(),
		asm.Mov.Imm(asm.R9, CtrDecapsulated),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.Mov.Imm(asm.R9, CtrFailed),

		// Count in slot r9; the verdict follows from it.
		asm.StoreMem(asm.RFP, -4, asm.R9, asm.Word).WithSymbol("out"),
		asm.LoadMapPtr(asm.R1, countersFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "ret"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("ret"),
		asm.JNE.Imm(asm.R9, CtrFailed, "exit"),
		asm.Mov.Imm(asm.R0, xdpDrop),
		asm.Return().WithSymbol("exit"),
	)
	return insns
}
