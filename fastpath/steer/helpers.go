//go:build linux

package steer

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// NewPassProgram loads an XDP program that returns XDP_PASS. On veth, XDP_TX
// or a redirect into a device only succeeds when the receiving peer has an
// XDP program attached; this one is enough.
func NewPassProgram() (*ebpf.Program, error) {
	if err := removeMemlock(); err != nil {
		return nil, err
	}
	prog, err := newXDP("ipfront_pass", asm.Instructions{
		asm.Mov.Imm(asm.R0, xdpPass),
		asm.Return(),
	})
	if err != nil {
		return nil, fmt.Errorf("steer: load pass program: %w", err)
	}
	return prog, nil
}

// AttachProgram attaches any XDP program (e.g. from NewPassProgram) to
// ifindex through a BPF link.
func AttachProgram(prog *ebpf.Program, ifindex int, mode XDPMode) (*Attachment, error) {
	a, err := attach(prog, ifindex, mode)
	if err != nil {
		return nil, fmt.Errorf("steer: %w", err)
	}
	return a, nil
}

// CountDrop is a sink: an XDP program that counts frames and bytes in a
// per-CPU array, then drops them.
type CountDrop struct {
	prog     *ebpf.Program
	counters *ebpf.Map // per-CPU array, one entry {pkts, bytes uint64}
}

// NewCountDrop loads a CountDrop program.
func NewCountDrop() (*CountDrop, error) {
	if err := removeMemlock(); err != nil {
		return nil, err
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "ipfront_cdrop", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 16, MaxEntries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("steer: create countdrop map: %w", err)
	}
	// C: __u64 *c = lookup(&counters, &zero);
	//    if (c) { c[0]++; c[1] += ctx->data_end - ctx->data; }
	//    return XDP_DROP;
	prog, err := newXDP("ipfront_cdrop", asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, xdpMDData, asm.Word),
		asm.LoadMem(asm.R6, asm.R1, xdpMDDataEnd, asm.Word),
		asm.Sub.Reg(asm.R6, asm.R2), // r6 = length (pointer difference, root only)
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R0, 8, asm.DWord),
		asm.Add.Reg(asm.R1, asm.R6),
		asm.StoreMem(asm.R0, 8, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("drop"),
		asm.Return(),
	})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("steer: load countdrop program: %w", err)
	}
	return &CountDrop{prog: prog, counters: m}, nil
}

// Attach attaches the sink to ifindex (native mode, generic if native fails).
func (c *CountDrop) Attach(ifindex int) (*Attachment, error) {
	return AttachProgram(c.prog, ifindex, ModeAuto)
}

// Count returns the frames and bytes dropped so far, summed over CPUs.
func (c *CountDrop) Count() (pkts, bytes uint64, err error) {
	var vals [][2]uint64
	if err := c.counters.Lookup(uint32(0), &vals); err != nil {
		return 0, 0, fmt.Errorf("steer: read countdrop counters: %w", err)
	}
	for _, v := range vals {
		pkts += v[0]
		bytes += v[1]
	}
	return pkts, bytes, nil
}

// Program returns the underlying program.
func (c *CountDrop) Program() *ebpf.Program { return c.prog }

// Close unloads the program and its map.
func (c *CountDrop) Close() error {
	return errors.Join(c.prog.Close(), c.counters.Close())
}

// MACRewriteTX is an in-kernel L2 forwarder for benchmark ceilings: for each
// IPv4 frame it picks a destination MAC by a hash of the source address,
// rewrites the Ethernet destination and source and returns XDP_TX. Other
// frames pass.
type MACRewriteTX struct {
	prog *ebpf.Program
	macs *ebpf.Map // array: index -> {dst[6], pad[2], src[6], pad[2]}
}

// MACRewriteIndex is the hash MACRewriteTX uses to pick dstMACs[i] for an
// IPv4 source address: h = the 4 address bytes as a little-endian uint32,
// h ^= h >> 16, i = h % n.
func MACRewriteIndex(src [4]byte, n int) int {
	h := uint32(src[0]) | uint32(src[1])<<8 | uint32(src[2])<<16 | uint32(src[3])<<24
	h ^= h >> 16
	return int(h % uint32(n))
}

// NewMACRewriteTX loads a forwarder that sends IPv4 frames back out of the
// interface they came in on, to dstMACs[MACRewriteIndex(saddr)] from srcMAC.
func NewMACRewriteTX(dstMACs [][6]byte, srcMAC [6]byte) (*MACRewriteTX, error) {
	n := len(dstMACs)
	if n == 0 || n > 1<<16 {
		return nil, fmt.Errorf("steer: MACRewriteTX needs 1..65536 destination MACs, got %d", n)
	}
	if err := removeMemlock(); err != nil {
		return nil, err
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "ipfront_macs", Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: uint32(n),
	})
	if err != nil {
		return nil, fmt.Errorf("steer: create MAC map: %w", err)
	}
	for i, d := range dstMACs {
		var v [16]byte
		copy(v[0:6], d[:])
		copy(v[8:14], srcMAC[:])
		if err := m.Put(uint32(i), v); err != nil {
			m.Close()
			return nil, fmt.Errorf("steer: fill MAC map: %w", err)
		}
	}
	// C: if (data + 34 > end || eth->h_proto != htons(ETH_P_IP)) return XDP_PASS;
	//    __u32 h = *(__u32 *)&iph->saddr; h ^= h >> 16; __u32 i = h % n;
	//    struct macs *v = lookup(&macs, &i); if (!v) return XDP_PASS;
	//    memcpy(eth->h_dest, v->dst, 6); memcpy(eth->h_source, v->src, 6);
	//    return XDP_TX;
	prog, err := newXDP("ipfront_macrw", asm.Instructions{
		asm.LoadMem(asm.R7, asm.R1, xdpMDData, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, xdpMDDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R7),
		asm.Add.Imm(asm.R4, ethHdrLen+ipv4HdrLen),
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),
		asm.LoadMem(asm.R5, asm.R7, 12, asm.Half),
		asm.JNE.Imm(asm.R5, leEthIPv4, "pass"),
		asm.LoadMem(asm.R5, asm.R7, ethHdrLen+12, asm.Word), // saddr
		asm.Mov.Reg(asm.R4, asm.R5),
		asm.RSh.Imm(asm.R4, 16),
		asm.Xor.Reg(asm.R5, asm.R4),
		asm.Mod.Imm(asm.R5, int32(n)),
		asm.StoreMem(asm.RFP, -4, asm.R5, asm.Word),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.StoreMem(asm.R7, 0, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R0, 4, asm.Half),
		asm.StoreMem(asm.R7, 4, asm.R1, asm.Half),
		asm.LoadMem(asm.R1, asm.R0, 8, asm.Word),
		asm.StoreMem(asm.R7, 6, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R0, 12, asm.Half),
		asm.StoreMem(asm.R7, 10, asm.R1, asm.Half),
		asm.Mov.Imm(asm.R0, xdpTX),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol("pass"),
		asm.Return(),
	})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("steer: load MACRewriteTX program: %w", err)
	}
	return &MACRewriteTX{prog: prog, macs: m}, nil
}

// Attach attaches the forwarder to ifindex in mode. The interface's peer
// (for veth) needs an XDP program too, or XDP_TX frames are dropped.
func (f *MACRewriteTX) Attach(ifindex int, mode XDPMode) (*Attachment, error) {
	return AttachProgram(f.prog, ifindex, mode)
}

// Program returns the underlying program.
func (f *MACRewriteTX) Program() *ebpf.Program { return f.prog }

// Close unloads the program and its map.
func (f *MACRewriteTX) Close() error {
	return errors.Join(f.prog.Close(), f.macs.Close())
}
