//go:build linux

package steer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// Return traffic of NAT target sets. Servers of a NAT set route their
// replies through ipfront; the program hands those to the workers and leaves
// everything else (the servers' other traffic, which the kernel may route,
// and anything addressed to the host itself) to the kernel. A frame that is
// not addressed to a VIP is redirected when
//
//   - its source address is a NAT server's (the return map), and
//   - it is TCP, UDP or SCTP (IPv4 without options or with, not a non-first
//     fragment; IPv6 with the transport header right after the fixed
//     header) of a protocol the server's sets balance, from a source port in
//     one of the rule's ranges, or an ICMP or ICMPv6 error (the worker
//     checks the quoted flow), and
//   - its destination is not one of the host's own addresses (the local
//     map): health checks and neighbour resolution of the slow path talk to
//     the servers from the host's addresses, and their answers must reach
//     the kernel.
//
// In C, after the VIP lookup missed (l3 is the IP header, key the
// destination's map key, as for the VIP lookup):
//
//	struct ret *r = bpf_map_lookup_elem(&returns, src_key(l3));
//	if (!r) goto out;                               // PASS_MISS
//	if (icmp_error(l3)) { if (!(r->flags & RET_ICMP)) goto out; }
//	else if (!(r->protos & proto_bit(l3)) || !in_ranges(r, sport(l3))) goto out;
//	ctr = PASS_LOCAL;
//	if (bpf_map_lookup_elem(&local, key)) goto out;
//	verdict = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
//	ctr = verdict == XDP_REDIRECT ? REDIRECTED_RETURN : PASS_NO_SOCKET;

// MaxReturns is the capacity of the return map: NAT server addresses.
const MaxReturns = 4096

// MaxLocal is the capacity of the local-address map.
const MaxLocal = 1024

// MaxReturnRanges is how many source port ranges a return rule holds; a
// rule with more is widened (the closest ranges joined), which steers a few
// ports more to the workers, who drop what no association claims.
const MaxReturnRanges = 8

// Protocol bits of ReturnRule.Protos (those of fastpath.ProtoBit).
const (
	ProtoTCP  uint8 = 1
	ProtoUDP  uint8 = 2
	ProtoSCTP uint8 = 4
)

// ReturnRule steers a NAT server's traffic to the workers.
type ReturnRule struct {
	Addr       netip.Addr
	Protos     uint8       // ProtoTCP, ProtoUDP, ProtoSCTP bits
	Ports      [][2]uint16 // inclusive source port ranges
	ICMPErrors bool        // also ICMP and ICMPv6 errors from Addr
}

// retValue is the return map's value: protos, range count, flags, then the
// ranges in host byte order.
type retValue struct {
	Protos uint8
	N      uint8
	Flags  uint8
	_      uint8
	Ranges [MaxReturnRanges][2]uint16
}

const (
	retValueSize = 4 + 4*MaxReturnRanges
	retICMP      = 1 // retValue.Flags: ICMP errors
)

// MarshalBinary encodes v as the program reads it.
func (v retValue) MarshalBinary() ([]byte, error) {
	b := make([]byte, retValueSize)
	b[0], b[1], b[2] = v.Protos, v.N, v.Flags
	for i, r := range v.Ranges {
		binary.NativeEndian.PutUint16(b[4+4*i:], r[0])
		binary.NativeEndian.PutUint16(b[6+4*i:], r[1])
	}
	return b, nil
}

// newReturnMaps creates the return and local maps.
func newReturnMaps() (ret, local *ebpf.Map, err error) {
	ret, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "ipfront_ret", Type: ebpf.Hash, KeySize: 16, ValueSize: retValueSize, MaxEntries: MaxReturns,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("steer: create return map: %w", err)
	}
	local, err = ebpf.NewMap(&ebpf.MapSpec{
		Name: "ipfront_local", Type: ebpf.Hash, KeySize: 16, ValueSize: 4, MaxEntries: MaxLocal,
	})
	if err != nil {
		ret.Close()
		return nil, nil, fmt.Errorf("steer: create local map: %w", err)
	}
	return ret, local, nil
}

// encodeRule turns a rule into its map value, widening it to
// MaxReturnRanges ranges if it has more.
func encodeRule(r ReturnRule) retValue {
	rs := append([][2]uint16(nil), r.Ports...)
	sort.Slice(rs, func(i, j int) bool { return rs[i][0] < rs[j][0] })
	var merged [][2]uint16
	for _, x := range rs {
		if n := len(merged); n > 0 && uint32(x[0]) <= uint32(merged[n-1][1])+1 {
			merged[n-1][1] = max(merged[n-1][1], x[1])
			continue
		}
		merged = append(merged, x)
	}
	for len(merged) > MaxReturnRanges {
		// Join the two neighbours with the smallest gap.
		best := 0
		for i := 1; i+1 < len(merged); i++ {
			if merged[i+1][0]-merged[i][1] < merged[best+1][0]-merged[best][1] {
				best = i
			}
		}
		merged[best][1] = merged[best+1][1]
		merged = append(merged[:best+1], merged[best+2:]...)
	}
	v := retValue{Protos: r.Protos, N: uint8(len(merged))}
	if r.ICMPErrors {
		v.Flags |= retICMP
	}
	copy(v.Ranges[:], merged)
	return v
}

// SetReturns makes the return map hold exactly rules and the local map
// exactly local (the host's own addresses). Entries are added or updated
// before stale ones are deleted, so a rule in both the old and the new set
// steers throughout.
func (p *Program) SetReturns(rules []ReturnRule, local []netip.Addr) error {
	want := make(map[[16]byte]retValue, len(rules))
	for _, r := range rules {
		if !r.Addr.IsValid() {
			return fmt.Errorf("steer: invalid return rule address %v", r.Addr)
		}
		want[vipKey(r.Addr)] = encodeRule(r)
	}
	if len(want) > MaxReturns {
		return fmt.Errorf("steer: %d NAT servers exceed the return map's %d entries", len(want), MaxReturns)
	}
	loc := make(map[[16]byte]uint32, len(local))
	for _, a := range local {
		if a.IsValid() {
			loc[vipKey(a.Unmap())] = 1
		}
	}
	if len(loc) > MaxLocal {
		return fmt.Errorf("steer: %d local addresses exceed the local map's %d entries", len(loc), MaxLocal)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := syncMap(p.ret, want); err != nil {
		return fmt.Errorf("steer: return map: %w", err)
	}
	if err := syncMap(p.local, loc); err != nil {
		return fmt.Errorf("steer: local map: %w", err)
	}
	return nil
}

// syncMap puts every entry of want into m, then deletes m's other keys.
func syncMap[V any](m *ebpf.Map, want map[[16]byte]V) error {
	for k, v := range want {
		if err := m.Put(k, v); err != nil {
			return fmt.Errorf("put %v: %w", netip.AddrFrom16(k).Unmap(), err)
		}
	}
	have, err := mapKeys(m)
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	for _, k := range have {
		if _, ok := want[k]; ok {
			continue
		}
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("delete %v: %w", netip.AddrFrom16(k).Unmap(), err)
		}
	}
	return nil
}

// mapKeys lists the keys of a map with 16-byte keys.
func mapKeys(m *ebpf.Map) ([][16]byte, error) {
	var out [][16]byte
	var next [16]byte
	var prev any // nil: the first key
	for {
		if err := m.NextKey(prev, &next); err != nil {
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return out, nil
			}
			return nil, err
		}
		out = append(out, next)
		k := next
		prev = &k
	}
}

// Returns lists the addresses of the return map (IPv4 unmapped), in no
// order.
func (p *Program) Returns() ([]netip.Addr, error) {
	keys, err := mapKeys(p.ret)
	if err != nil {
		return nil, fmt.Errorf("steer: list return map: %w", err)
	}
	out := make([]netip.Addr, len(keys))
	for i, k := range keys {
		out[i] = netip.AddrFrom16(k).Unmap()
	}
	return out, nil
}

// Stack slots of the return block (the VIP block uses fp-16..fp-1 for the
// destination key and countAndReturn fp-20).
const (
	stackSrcKey = -40 // fp-40..fp-25: the source address as a map key
	stackFamily = -44 // 4 or 6, set with r9 = the IP header by the VIP block
	stackProto  = -48
)

// returnInstructions is the block labelled "nat" that the VIP lookup jumps
// to when it misses; see the C above. On entry r6 is the context, r9 the IP
// header (bounds checked for its fixed part), the destination key at fp-16
// and the family at fp-44.
func returnInstructions(retFD, localFD, xsksFD int) asm.Instructions {
	insns := asm.Instructions{
		asm.LoadMem(asm.R3, asm.R6, xdpMDDataEnd, asm.Word).WithSymbol("nat"),
		asm.LoadMem(asm.R1, asm.RFP, stackFamily, asm.Word),
		asm.JEq.Imm(asm.R1, 6, "nat6"),

		// IPv4: key = ::ffff:saddr; no non-first fragments. (The family
		// is on the stack, so the verifier needs the bounds again.)
		asm.Mov.Reg(asm.R4, asm.R9),
		asm.Add.Imm(asm.R4, ipv4HdrLen),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.LoadMem(asm.R1, asm.R9, 12, asm.Word),
		asm.StoreImm(asm.RFP, stackSrcKey, 0, asm.Word),
		asm.StoreImm(asm.RFP, stackSrcKey+4, 0, asm.Word),
		asm.StoreImm(asm.RFP, stackSrcKey+8, -0x10000, asm.Word),
		asm.StoreMem(asm.RFP, stackSrcKey+12, asm.R1, asm.Word),
		asm.LoadMem(asm.R1, asm.R9, 6, asm.Half),
		asm.And.Imm(asm.R1, 0xff3f), // htons(0x3fff): MF and the offset, little-endian view
		asm.JNE.Imm(asm.R1, 0, "out"),
		asm.LoadMem(asm.R5, asm.R9, 9, asm.Byte),
		asm.LoadMem(asm.R4, asm.R9, 0, asm.Byte),
		asm.And.Imm(asm.R4, 0xf),
		asm.LSh.Imm(asm.R4, 2),
		asm.JLT.Imm(asm.R4, ipv4HdrLen, "out"),
		asm.Add.Reg(asm.R9, asm.R4), // r9 = the L4 header
		asm.Ja.Label("natkey"),

		// IPv6: key = saddr; the transport header right after.
		asm.Mov.Reg(asm.R4, asm.R9).WithSymbol("nat6"),
		asm.Add.Imm(asm.R4, ipv6HdrLen),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.LoadMem(asm.R1, asm.R9, 8, asm.DWord),
		asm.StoreMem(asm.RFP, stackSrcKey, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.R9, 16, asm.DWord),
		asm.StoreMem(asm.RFP, stackSrcKey+8, asm.R1, asm.DWord),
		asm.LoadMem(asm.R5, asm.R9, 6, asm.Byte),
		asm.Add.Imm(asm.R9, ipv6HdrLen),

		asm.StoreMem(asm.RFP, stackProto, asm.R5, asm.Word).WithSymbol("natkey"),
		asm.LoadMapPtr(asm.R1, retFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, stackSrcKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R5, asm.RFP, stackProto, asm.Word),
		asm.JEq.Imm(asm.R5, 1, "naticmp"),  // ICMP
		asm.JEq.Imm(asm.R5, 58, "naticmp"), // ICMPv6

		// TCP, UDP or SCTP of the rule's protocols, from one of its ports.
		asm.Mov.Imm(asm.R4, int32(ProtoTCP)),
		asm.JEq.Imm(asm.R5, 6, "natproto"),
		asm.Mov.Imm(asm.R4, int32(ProtoUDP)),
		asm.JEq.Imm(asm.R5, 17, "natproto"),
		asm.Mov.Imm(asm.R4, int32(ProtoSCTP)),
		asm.JEq.Imm(asm.R5, 132, "natproto"),
		asm.Ja.Label("out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Byte).WithSymbol("natproto"),
		asm.And.Reg(asm.R1, asm.R4),
		asm.JEq.Imm(asm.R1, 0, "out"),
		asm.LoadMem(asm.R3, asm.R6, xdpMDDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R9),
		asm.Add.Imm(asm.R4, 4),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.LoadMem(asm.R1, asm.R9, 0, asm.Half),
		asm.HostTo(asm.BE, asm.R1, asm.Half), // network to host order (a swap either way)
		asm.LoadMem(asm.R3, asm.R0, 1, asm.Byte),
	}
	for i := range MaxReturnRanges {
		next := fmt.Sprintf("natr%d", i+1)
		insns = append(insns,
			asm.JLE.Imm(asm.R3, int32(i), "out").WithSymbol(fmt.Sprintf("natr%d", i)),
			asm.LoadMem(asm.R4, asm.R0, int16(4+4*i), asm.Half),
			asm.JLT.Reg(asm.R1, asm.R4, next),
			asm.LoadMem(asm.R4, asm.R0, int16(6+4*i), asm.Half),
			asm.JLE.Reg(asm.R1, asm.R4, "natmatch"),
		)
	}
	insns = append(insns,
		asm.Ja.Label("out").WithSymbol(fmt.Sprintf("natr%d", MaxReturnRanges)),

		// ICMP errors: IPv4 types 3, 11, 12; ICMPv6 types 1-4.
		asm.LoadMem(asm.R1, asm.R0, 2, asm.Byte).WithSymbol("naticmp"),
		asm.And.Imm(asm.R1, retICMP),
		asm.JEq.Imm(asm.R1, 0, "out"),
		asm.LoadMem(asm.R3, asm.R6, xdpMDDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R9),
		asm.Add.Imm(asm.R4, 1),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
		asm.LoadMem(asm.R1, asm.R9, 0, asm.Byte),
		asm.JEq.Imm(asm.R5, 58, "naticmp6"),
		asm.JEq.Imm(asm.R1, 3, "natmatch"),
		asm.JEq.Imm(asm.R1, 11, "natmatch"),
		asm.JEq.Imm(asm.R1, 12, "natmatch"),
		asm.Ja.Label("out"),
		asm.Add.Imm(asm.R1, -1).WithSymbol("naticmp6"),
		asm.JGT.Imm(asm.R1, 3, "out"),

		// Not to the host itself: then to the queue's socket.
		asm.Mov.Imm(asm.R8, ctrPassLocal).WithSymbol("natmatch"),
		asm.LoadMapPtr(asm.R1, localFD),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.FnMapLookupElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "out"),
	)
	insns = append(insns, redirectToQueue(xsksFD, ctrRedirectedReturn)...)
	return append(insns, asm.Ja.Label("out"))
}
