//go:build linux

package steer

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Frames addressed to another host. A NIC filters unicast frames by its MAC
// unless it is promiscuous; a bridge or switch that floods a frame whose
// destination it has not learned (its owner just failed, say) puts it on
// every port. Two ipfront instances on one segment would then both forward
// the flooded frame, and a flow would reach its server twice. The program
// passes a unicast frame whose destination is not the interface's own MAC to
// the kernel, which drops it as another host's (PASS_OTHER_HOST). Group
// addresses are left to the rest of the program and to the workers
// (l2_not_unicast).
//
// The interfaces' MACs are in a small array indexed by ifindex mod
// ifMACSlots, each entry naming its ifindex: an array lookup, which the
// verifier turns into plain memory access, instead of a hash lookup per
// frame. An interface without an entry (or whose slot another one holds) is
// not checked.
//
// In C, before the Ethernet header is parsed:
//
//	struct ifmac *m = bpf_map_lookup_elem(&ifmacs, &(__u32){ctx->ingress_ifindex % SLOTS});
//	if (m && m->ifindex == ctx->ingress_ifindex && !(eth->h_dest[0] & 1) &&
//	    memcmp(eth->h_dest, m->mac, 6)) { ctr = PASS_OTHER_HOST; goto out; }

// ifMACSlots is the size of the MAC array.
const ifMACSlots = 64

// xdpMDIngressIfindex is struct xdp_md's ingress_ifindex.
const xdpMDIngressIfindex = 12

// ifMACValue is one entry: the ifindex it belongs to and its MAC.
type ifMACValue struct {
	Ifindex uint32
	_       uint32
	MAC     [6]byte
	_       [2]byte
}

// newIfMACMap creates the MAC array.
func newIfMACMap() (*ebpf.Map, error) {
	m, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "ipfront_ifmac", Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: ifMACSlots,
	})
	if err != nil {
		return nil, fmt.Errorf("steer: create interface MAC map: %w", err)
	}
	return m, nil
}

// SetInterfaceMAC makes the program pass frames that reach ifindex
// addressed to another host's MAC than mac. Call before attaching.
func (p *Program) SetInterfaceMAC(ifindex int, mac [6]byte) error {
	if ifindex <= 0 {
		return fmt.Errorf("steer: invalid ifindex %d", ifindex)
	}
	slot := uint32(ifindex % ifMACSlots)
	var old ifMACValue
	if err := p.ifmacs.Lookup(slot, &old); err == nil && old.Ifindex != 0 && old.Ifindex != uint32(ifindex) {
		return nil // the slot is another interface's: this one goes unchecked
	}
	if err := p.ifmacs.Put(slot, ifMACValue{Ifindex: uint32(ifindex), MAC: mac}); err != nil {
		return fmt.Errorf("steer: set the MAC of ifindex %d: %w", ifindex, err)
	}
	return nil
}

// ifMACInstructions checks the destination MAC (R6 the context; R2 and R3
// data and data_end, the Ethernet header known to fit). It jumps to "out"
// with ctrPassOtherHost in R8 for another host's frame, else continues with
// R2 and R3 reloaded.
func ifMACInstructions(ifmacsFD int) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R4, asm.R2, 0, asm.Byte),
		asm.And.Imm(asm.R4, 1),
		asm.JNE.Imm(asm.R4, 0, "mac_ok"), // group address
		asm.LoadMem(asm.R4, asm.R6, xdpMDIngressIfindex, asm.Word),
		asm.Mod.Imm(asm.R4, ifMACSlots),
		asm.StoreMem(asm.RFP, -56, asm.R4, asm.Word),
		asm.LoadMapPtr(asm.R1, ifmacsFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -56),
		asm.FnMapLookupElem.Call(),
		// Helper calls clobber R1-R5: the frame's bounds again.
		asm.LoadMem(asm.R2, asm.R6, xdpMDData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, xdpMDDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, ethHdrLen),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.JEq.Imm(asm.R0, 0, "mac_ok"),
		asm.LoadMem(asm.R4, asm.R0, 0, asm.Word),
		asm.LoadMem(asm.R5, asm.R6, xdpMDIngressIfindex, asm.Word),
		asm.JNE.Reg(asm.R4, asm.R5, "mac_ok"), // the slot is another interface's
		asm.LoadMem(asm.R4, asm.R0, 8, asm.Word),
		asm.LoadMem(asm.R5, asm.R2, 0, asm.Word),
		asm.JNE.Reg(asm.R4, asm.R5, "other_host"),
		asm.LoadMem(asm.R4, asm.R0, 12, asm.Half),
		asm.LoadMem(asm.R5, asm.R2, 4, asm.Half),
		asm.JEq.Reg(asm.R4, asm.R5, "mac_ok"),
		asm.Mov.Imm(asm.R8, ctrPassOtherHost).WithSymbol("other_host"),
		asm.Ja.Label("out"),
	}
}
