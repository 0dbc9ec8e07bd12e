//go:build linux

package steer

// Overload shedding: when a worker cannot keep up, the frames it loses are
// lost where the kernel finds its RX ring full, whatever they are, so a
// flood of openings (spoofed SYNs) costs established connections their
// segments as often as it costs the flood its own. The steering program
// can tell the two apart for next to nothing before the ring, and a worker
// knows when its ring is close to full: each queue has a cell in the
// overload map, shared with its worker through memory both map
// (BPF_F_MMAPABLE), no system call either side. While a cell says
// OverloadShedding, openings to a VIP (a TCP SYN without ACK, an SCTP
// packet whose first chunk is INIT) are dropped in the program, counted as
// shed openings, and everything else still reaches the worker. An opening
// that is shed is retransmitted by its client like any lost SYN; a
// connection under way loses nothing. In normal operation the program
// reads the state word and nothing else.

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// mmapableFlag is BPF_F_MMAPABLE (include/uapi/linux/bpf.h): the process
// may map the array's memory.
const mmapableFlag = 1 << 10

// States of an overload cell.
const (
	// OverloadNormal: every frame for a VIP goes to the worker.
	OverloadNormal uint32 = 0
	// OverloadShedding: openings to a VIP are dropped in the program.
	OverloadShedding uint32 = 1
)

// overloadCellSize is one cell: the state (u32) and padding, the element
// size of an mmapable array either way.
const overloadCellSize = 8

// stackQueue is the stack slot holding the RX queue index as the overload
// map's key (fp-52; nat.go and ifmac.go use the slots around it).
const stackQueue = -52

// OverloadCell is one queue's cell, written by its worker.
type OverloadCell struct {
	mem *ebpf.Memory // the map's memory, mapped by cilium/ebpf
	off int64
}

// SetState publishes the worker's overload state. The program reads the
// word as it is; only its low byte changes between the states, so no
// interleaving of the copy and a read can show another value. Bounds and
// writability were checked when the cell was made.
func (c *OverloadCell) SetState(s uint32) {
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], s)
	_, _ = c.mem.WriteAt(b[:], c.off)
}

// overloadMap is the map and its memory, mapped into this process.
type overloadMap struct {
	m   *ebpf.Map
	mem *ebpf.Memory
}

// newOverloadMap creates the map of maxQueues cells and maps it.
func newOverloadMap(maxQueues int) (*overloadMap, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "ipfront_ovl", Type: ebpf.Array, KeySize: 4, ValueSize: overloadCellSize,
		MaxEntries: uint32(maxQueues), Flags: mmapableFlag,
	})
	if err != nil {
		return nil, fmt.Errorf("steer: create overload map: %w", err)
	}
	mem, err := m.Memory()
	if err == nil && (mem.ReadOnly() || int(mem.Size()) < maxQueues*overloadCellSize) {
		err = fmt.Errorf("%d bytes, read-only %v", mem.Size(), mem.ReadOnly())
	}
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("steer: map overload cells: %w", err)
	}
	return &overloadMap{m: m, mem: mem}, nil
}

// cell returns queue's cell.
func (o *overloadMap) cell(queue int) *OverloadCell {
	return &OverloadCell{mem: o.mem, off: int64(queue * overloadCellSize)}
}

func (o *overloadMap) close() error {
	if o == nil {
		return nil
	}
	return o.m.Close() // cilium/ebpf unmaps the memory once nothing refers to it
}

// Overload returns queue's overload cell, for its worker.
func (p *Program) Overload(queue int) (*OverloadCell, error) {
	if queue < 0 || queue >= p.maxQueues {
		return nil, fmt.Errorf("steer: queue %d out of range [0, %d)", queue, p.maxQueues)
	}
	return p.overload.cell(queue), nil
}

// overloadInstructions decide, for a frame to a VIP, whether to shed it. In
// C, entered with r9 the IP header (fixed part in bounds) and the family on
// the stack:
//
//	__u32 *state = bpf_map_lookup_elem(&overload, &ctx->rx_queue_index);
//	if (!state || *state == NORMAL) goto steer_vip;
//	l4 = ip + (v4 ? ihl * 4 : 40); proto = v4 ? iph->protocol : ip6h->nexthdr;
//	if (v4 && (frag offset || ihl < 5)) goto steer_vip;
//	if (proto == TCP && (tcph->flags & (SYN|ACK)) == SYN) goto shed;
//	if (proto == SCTP && first_chunk_type == INIT) goto shed;
//	goto steer_vip;
//	shed: verdict = XDP_DROP; ctr = SHED_OPENING; goto out;
func overloadInstructions(overloadFD int) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R1, asm.R6, xdpMDRxQueueIndex, asm.Word),
		asm.StoreMem(asm.RFP, stackQueue, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, overloadFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stackQueue),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "steer_vip"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.JEq.Imm(asm.R1, int32(OverloadNormal), "steer_vip"),

		asm.LoadMem(asm.R3, asm.R6, xdpMDDataEnd, asm.Word),
		asm.LoadMem(asm.R1, asm.RFP, stackFamily, asm.Word),
		asm.JEq.Imm(asm.R1, 6, "shed6"),
		// IPv4: the bounds again (the family came from the stack), no
		// non-first fragment (no transport header), options skipped.
		asm.Mov.Reg(asm.R4, asm.R9),
		asm.Add.Imm(asm.R4, ipv4HdrLen),
		asm.JGT.Reg(asm.R4, asm.R3, "steer_vip"),
		asm.LoadMem(asm.R1, asm.R9, 6, asm.Half),
		asm.And.Imm(asm.R1, 0xff1f), // htons(0x1fff): the offset, little-endian view
		asm.JNE.Imm(asm.R1, 0, "steer_vip"),
		asm.LoadMem(asm.R5, asm.R9, 9, asm.Byte),
		asm.LoadMem(asm.R4, asm.R9, 0, asm.Byte),
		asm.And.Imm(asm.R4, 0xf),
		asm.LSh.Imm(asm.R4, 2),
		asm.JLT.Imm(asm.R4, ipv4HdrLen, "steer_vip"),
		asm.Mov.Reg(asm.R2, asm.R9),
		asm.Add.Reg(asm.R2, asm.R4),
		asm.Ja.Label("shed_l4"),

		asm.Mov.Reg(asm.R4, asm.R9).WithSymbol("shed6"),
		asm.Add.Imm(asm.R4, ipv6HdrLen),
		asm.JGT.Reg(asm.R4, asm.R3, "steer_vip"),
		asm.LoadMem(asm.R5, asm.R9, 6, asm.Byte),
		asm.Mov.Reg(asm.R2, asm.R9),
		asm.Add.Imm(asm.R2, ipv6HdrLen),

		// r2: the transport header, r5: its protocol.
		asm.JEq.Imm(asm.R5, 6, "shed_tcp").WithSymbol("shed_l4"),
		asm.JEq.Imm(asm.R5, 132, "shed_sctp"),
		asm.Ja.Label("steer_vip"),

		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("shed_tcp"),
		asm.Add.Imm(asm.R4, 14),
		asm.JGT.Reg(asm.R4, asm.R3, "steer_vip"),
		asm.LoadMem(asm.R1, asm.R2, 13, asm.Byte),
		asm.And.Imm(asm.R1, 0x12), // SYN | ACK
		asm.JNE.Imm(asm.R1, 0x02, "steer_vip"),
		asm.Ja.Label("shed"),

		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("shed_sctp"),
		asm.Add.Imm(asm.R4, 13),
		asm.JGT.Reg(asm.R4, asm.R3, "steer_vip"),
		asm.LoadMem(asm.R1, asm.R2, 12, asm.Byte),
		asm.JNE.Imm(asm.R1, 1, "steer_vip"), // INIT

		asm.Mov.Imm(asm.R7, xdpDrop).WithSymbol("shed"),
		asm.Mov.Imm(asm.R8, ctrShedOpening),
		asm.Ja.Label("out"),
	}
}
