package fastpath

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// Addresses of the encapsulation fixtures: servers on other subnets, and the
// prefixes ipfront draws outer sources from.
var (
	encapSrv4   = netip.MustParseAddr("203.0.113.21")
	encapSrv6   = netip.MustParseAddr("2001:db8:21::21")
	encapSrc4   = netip.MustParsePrefix("198.51.100.0/24")
	encapSrc6   = netip.MustParsePrefix("2001:db8:e::/64")
	encapVIP4x6 = netip.MustParseAddr("192.0.2.31") // an IPv4 VIP served over IPv6
	encapVIP6x4 = netip.MustParseAddr("2001:db8::31")
	encapNoSrc  = netip.MustParseAddr("192.0.2.32") // its IPv6 server has no outer source
	encapNoMAC  = netip.MustParseAddr("192.0.2.33")
	encapSmall  = netip.MustParseAddr("192.0.2.34") // encap MTU 1400
)

// encapTables has one server per set, on another subnet: set 1 on vip4
// (TCP 80, UDP 53) and set 2 on vip6 (TCP, UDP 443) over their own family;
// set 3 an IPv4 VIP over IPv6, set 4 an IPv6 VIP over IPv4; set 5 without
// an IPv6 source, set 6 with its next hop unresolved, set 7 with an MTU of
// 1400. The sets are made by buildTables and turned into encapsulating
// ones before any engine sees them.
func encapTables(t *testing.T, fwd uint8) *Tables {
	tab := buildTables(t, 1,
		setSpec{id: 1, vip: vip4, protos: ProtoBitTCP | ProtoBitUDP, ports: []PortRange{{53, 53}, {vipPort, vipPort}}, servers: weighted(1)},
		setSpec{id: 2, vip: vip6, protos: ProtoBitTCP | ProtoBitUDP, ports: []PortRange{{443, 443}}, servers: weighted(1)},
		setSpec{id: 3, vip: encapVIP4x6, servers: weighted(1)},
		setSpec{id: 4, vip: encapVIP6x4, servers: weighted(1)},
		setSpec{id: 5, vip: encapNoSrc, servers: weighted(1)},
		setSpec{id: 6, vip: encapNoMAC, servers: []srv{{weight: 1, noMAC: true}}},
		setSpec{id: 7, vip: encapSmall, servers: weighted(1)},
	)
	addrs := map[uint16]netip.Addr{1: encapSrv4, 2: encapSrv6, 3: encapSrv6, 4: encapSrv4, 5: encapSrv6, 6: encapSrv4, 7: encapSrv4}
	for id, a := range addrs {
		ts := tab.Set(id)
		ts.Forwarding = fwd
		ts.Encap = Encap{Src4: NewEncapSource(encapSrc4), Src6: NewEncapSource(encapSrc6), Port: 7777}
		if id == 5 {
			ts.Encap.Src6 = EncapSource{}
		}
		if id == 7 {
			ts.Encap.MTU = 1400
		}
		ts.Servers[0].Addr = a
		ts.Servers[0].Egress = testIface
	}
	return tab
}

// encapWant is the frame the wire must carry for in, encapsulated by hand
// (not by the code under test) to server dst through next hop mac: in's
// Ethernet header (and VLAN tag) with the outer EtherType, the outer IP
// header, for GUE the UDP and GUE headers, then in's IP packet.
func encapWant(t *testing.T, in packet.FrameSpec, gue bool, dst netip.Addr, mac [6]byte, port uint16) []byte {
	t.Helper()
	frame := encode(t, in)
	l3 := packet.EthernetHeaderLen
	if in.VLAN != 0 {
		l3 += 4
	}
	inner := frame[l3:]
	// The flow the frame belongs to: the client's, also for an ICMP error
	// about a reply to it (the quote's destination).
	c, cport, proto := in.Src, in.SrcPort, in.Proto
	if in.Proto == packet.ProtoICMP || in.Proto == packet.ProtoICMPv6 {
		q := in.Quote
		if in.Dst.Is4() {
			c, proto = netip.AddrFrom4([4]byte(q[16:20])), q[9]
			cport = binary.BigEndian.Uint16(q[packet.IPv4(q).HeaderLen()+2:])
		} else {
			c, proto = netip.AddrFrom16([16]byte(q[24:40])), q[6]
			cport = binary.BigEndian.Uint16(q[packet.IPv6HeaderLen+2:])
		}
	}
	ca := c.As16()
	pk := assoc.PackFlow(&ca, cport, proto, setOf(in.Dst))
	h := pk.Hash()
	var tos, innerProto byte = inner[1], 4
	if in.Dst.Is6() {
		tos, innerProto = inner[0]<<4|inner[1]>>4, 41
	}
	var src netip.Addr
	if dst.Is4() {
		host := uint32(h) & 0xff
		if host == 0 {
			host = 1
		} else if host == 0xff {
			host = 0xfe
		}
		src = netip.AddrFrom4([4]byte{198, 51, 100, byte(host)})
	} else {
		a := encapSrc6.Addr().As16()
		host := uint32(h) // a /64: the last 32 host bits vary
		if host == 0 {
			host = 1
		} else if host == 0xffffffff {
			host--
		}
		binary.BigEndian.PutUint32(a[12:], host)
		src = netip.AddrFrom16(a)
	}
	var l4 []byte
	next := innerProto
	if gue {
		next = packet.ProtoUDP
		l4 = binary.BigEndian.AppendUint16(l4, 0xc000|uint16(h>>32)&0x3fff)
		l4 = binary.BigEndian.AppendUint16(l4, port)
		l4 = binary.BigEndian.AppendUint16(l4, uint16(12+len(inner)))
		l4 = append(l4, 0, 0, 0, innerProto, 0, 0)
		l4 = append(l4, inner...)
	} else {
		l4 = append(l4, inner...)
	}
	out := append([]byte(nil), frame[:l3]...)
	copy(out[0:6], mac[:])
	copy(out[6:12], lbMAC[:])
	if dst.Is4() {
		binary.BigEndian.PutUint16(out[l3-2:], 0x0800)
		ip := []byte{0x45, tos, 0, 0, 0, 0, 0x40, 0, 64, next, 0, 0}
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(l4)))
		ip = append(ip, src.AsSlice()...)
		ip = append(ip, dst.AsSlice()...)
		binary.BigEndian.PutUint16(ip[10:], ^packet.Checksum(ip, 0))
		out = append(out, ip...)
	} else {
		binary.BigEndian.PutUint16(out[l3-2:], 0x86dd)
		ip := binary.BigEndian.AppendUint32(nil, 6<<28|uint32(tos)<<20|uint32(h>>40)&0xfffff)
		ip = binary.BigEndian.AppendUint16(ip, uint16(len(l4)))
		ip = append(ip, next, 64)
		ip = append(ip, src.AsSlice()...)
		ip = append(ip, dst.AsSlice()...)
		if gue {
			sum := ^packet.Checksum(l4, packet.PseudoHeaderSum6(src.As16(), dst.As16(), packet.ProtoUDP, uint32(len(l4))))
			if sum == 0 {
				sum = 0xffff
			}
			binary.BigEndian.PutUint16(l4[6:], sum)
		}
		out = append(out, ip...)
	}
	return append(out, l4...)
}

// setOf is the id of encapTables' set on vip.
func setOf(vip netip.Addr) uint16 {
	switch vip {
	case vip4:
		return 1
	case vip6:
		return 2
	case encapVIP4x6:
		return 3
	case encapVIP6x4:
		return 4
	case encapNoSrc:
		return 5
	case encapNoMAC:
		return 6
	case encapSmall:
		return 7
	}
	return 0
}

// encapFixture is one row of the encapsulation fixture tables.
type encapFixture struct {
	desc   string
	in     packet.FrameSpec
	pad    int        // Ethernet padding after the IP packet (a short frame)
	srv    netip.Addr // the server the frame must reach; invalid for a drop
	act    Action
	reason Reason // counted for a drop
}

// runEncapFixtures processes each fixture's frame, in a buffer with the
// capacity of a UMEM frame (2048 bytes less the kernel's 256 of headroom),
// through an engine on tab, and compares verdict, bytes and drop reason.
func runEncapFixtures(t *testing.T, tab *Tables, gue bool, fixtures []encapFixture) {
	t.Helper()
	for _, fx := range fixtures {
		t.Run(fx.desc, func(t *testing.T) {
			e := newEngine(t, 64, tab)
			in := append(encode(t, fx.in), make([]byte, fx.pad)...)
			buf := make([]byte, 1792)
			frames := [][]byte{buf[:copy(buf, in)]}
			acts := make([]Action, 1)
			e.Process(frames, acts, 1)
			if acts[0] != fx.act {
				t.Fatalf("verdict = %d, want %d (drops %v)", acts[0], fx.act, e.local.Drops)
			}
			want := in
			if fx.act == Transmit {
				set := setOf(fx.in.Dst)
				want = encapWant(t, fx.in, gue, fx.srv, serverMAC(set, 0, 1, testIface), 7777)
			} else if got := e.local.Drops[fx.reason]; got != 1 {
				t.Fatalf("drops[%s] = %d, want 1", fx.reason, got)
			}
			if !bytes.Equal(frames[0], want) {
				t.Fatalf("frame out differs from the fixture\ngot:\n%swant:\n%s", hex.Dump(frames[0]), hex.Dump(want))
			}
			if fx.act == Transmit {
				checkEncapChecksums(t, frames[0], gue)
			}
		})
	}
}

// checkEncapChecksums verifies what a receiver verifies: the outer IPv4
// header checksum, the outer UDP checksum over IPv6, and the inner packet
// parses cleanly once the outer headers are stripped.
func checkEncapChecksums(t *testing.T, frame []byte, gue bool) {
	t.Helper()
	l3 := packet.EthernetHeaderLen
	if binary.BigEndian.Uint16(frame[12:]) == 0x8100 {
		l3 += 4
	}
	ip := frame[l3:]
	hl := 40
	if ip[0]>>4 == 4 {
		hl = 20
		if !packet.IPv4(ip).IsChecksumValid() {
			t.Errorf("outer IPv4 header checksum invalid")
		}
	} else if gue {
		udp := ip[40:]
		if s := packet.Checksum(udp, packet.PseudoHeaderSum6([16]byte(ip[8:24]), [16]byte(ip[24:40]), packet.ProtoUDP, uint32(len(udp)))); s != 0xffff {
			t.Errorf("outer UDP checksum sums to %#x, want 0xffff", s)
		}
	}
	if gue {
		hl += 12
	}
	inner := append(append([]byte(nil), frame[:l3]...), ip[hl:]...)
	et := uint16(0x0800)
	if ip[hl]>>4 == 6 {
		et = 0x86dd
	}
	binary.BigEndian.PutUint16(inner[l3-2:], et)
	var f packet.Flow
	if r := packet.Parse(inner, &f); r != packet.OK {
		t.Errorf("inner packet after decapsulation: Parse = %s, want ok", r)
	}
}

// TestEncapFixtures: IPIP and GUE put the client's packet, byte for byte,
// behind an outer header to the server's address, from a per-flow source of
// the configured prefix, through the server's next hop; every checksum a
// receiver checks is right; a frame that cannot be encapsulated is dropped
// untouched under its named reason.
func TestEncapFixtures(t *testing.T) {
	c4, c6 := client(false, 1), client(true, 1)
	tcp4 := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c4, Dst: vip4, Proto: packet.ProtoTCP,
		SrcPort: 40000, DstPort: vipPort, TCPFlags: packet.TCPFlagSYN, Seq: 7, Payload: []byte("GET / HTTP/1.0\r\n")}
	udp6 := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c6, Dst: vip6, Proto: packet.ProtoUDP,
		SrcPort: 40001, DstPort: 443, Payload: []byte{0xc0, 0, 0, 0, 1}}
	vlan := tcp4
	vlan.VLAN = 100
	x4over6 := tcp4
	x4over6.Dst = encapVIP4x6
	x6over4 := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c6, Dst: encapVIP6x4, Proto: packet.ProtoTCP,
		SrcPort: 40004, DstPort: vipPort, TCPFlags: packet.TCPFlagACK, Seq: 9, Ack: 10}
	icmp := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: router4, Dst: vip4, Proto: packet.ProtoICMP,
		ICMPType: packet.ICMPv4DestUnreachable, ICMPCode: packet.ICMPv4CodeFragNeeded, ICMPRest: 1400,
		Quote: quote(t, vip4, c4, 40002)}
	noSrc := tcp4
	noSrc.Dst = encapNoSrc
	noMAC := tcp4
	noMAC.Dst = encapNoMAC
	big := tcp4
	big.Payload = make([]byte, 1460) // a full 1500-byte IP packet
	bigMTU := big
	bigMTU.Dst = encapSmall
	fits := tcp4
	fits.Dst = encapSmall
	fits.Payload = make([]byte, 1400-20-20-32) // outer packet exactly 1400 with GUE, 1388 with IPIP
	tooBig := tcp4
	tooBig.Payload = make([]byte, 1792-14-20-20-20+1) // one byte past the UMEM frame with IPIP (and GUE)
	for _, mode := range []struct {
		name string
		fwd  uint8
	}{{"ipip", FwdIPIP}, {"gue", FwdGUE}} {
		t.Run(mode.name, func(t *testing.T) {
			tab := encapTables(t, mode.fwd)
			tab.AllowVLANs([]uint16{100})
			runEncapFixtures(t, tab, mode.fwd == FwdGUE, []encapFixture{
				{desc: "IPv4 TCP with payload over IPv4", in: tcp4, srv: encapSrv4, act: Transmit},
				{desc: "IPv6 UDP over IPv6", in: udp6, srv: encapSrv6, act: Transmit},
				{desc: "VLAN-tagged IPv4 keeps its tag", in: vlan, srv: encapSrv4, act: Transmit},
				{desc: "IPv4 VIP over an IPv6 server", in: x4over6, srv: encapSrv6, act: Transmit},
				{desc: "IPv6 VIP over an IPv4 server", in: x6over4, srv: encapSrv4, act: Transmit},
				{desc: "Ethernet padding is not encapsulated", in: tcp4, pad: 6, srv: encapSrv4, act: Transmit},
				{desc: "ICMPv4 fragmentation needed goes to the quoted flow's server", in: icmp, srv: encapSrv4, act: Transmit},
				{desc: "a full-size packet fits the UMEM frame", in: big, srv: encapSrv4, act: Transmit},
				{desc: "a packet within the encap MTU", in: fits, srv: encapSrv4, act: Transmit},
				{desc: "no outer source for the server's family: dropped untouched", in: noSrc, act: Drop, reason: DropEncapNoSource},
				{desc: "next hop unresolved: dropped untouched", in: noMAC, act: Drop, reason: DropNeighborUnresolved},
				{desc: "past the encap MTU: dropped untouched", in: bigMTU, act: Drop, reason: DropEncapTooBig},
				{desc: "past the UMEM frame: dropped untouched", in: tooBig, act: Drop, reason: DropEncapTooBig},
			})
		})
	}
}

// TestEncapSpreadsSources: different flows get different outer sources
// (IPIP: the server's NIC hashes the outer addresses) and GUE source ports,
// one flow always the same, and never a /24's network or broadcast address.
func TestEncapSpreadsSources(t *testing.T) {
	for _, fwd := range []uint8{FwdIPIP, FwdGUE} {
		e := newEngine(t, 1<<12, encapTables(t, fwd))
		srcs, sports := map[[4]byte]bool{}, map[uint16]bool{}
		for i := range 256 {
			for range 2 {
				buf := make([]byte, 1792)
				frames := [][]byte{buf[:copy(buf, tcp(t, client(false, i), 40000, packet.TCPFlagSYN))]}
				acts := make([]Action, 1)
				e.Process(frames, acts, 1)
				if acts[0] != Transmit {
					t.Fatalf("%s: flow %d: verdict %d, want Transmit", ForwardingName(fwd), i, acts[0])
				}
				ip := frames[0][packet.EthernetHeaderLen:]
				src := [4]byte(ip[12:16])
				if src[3] == 0 || src[3] == 255 || src[0] != 198 {
					t.Fatalf("%s: outer source %v, want a host of %v", ForwardingName(fwd), netip.AddrFrom4(src), encapSrc4)
				}
				srcs[src] = true
				if fwd == FwdGUE {
					sports[binary.BigEndian.Uint16(ip[20:])] = true
				}
			}
		}
		// 256 flows over 254 hosts: a fair hash hits well over half.
		if len(srcs) < 128 {
			t.Errorf("%s: 256 flows used %d outer sources, want >= 128", ForwardingName(fwd), len(srcs))
		}
		if fwd == FwdGUE && len(sports) < 200 {
			t.Errorf("gue: 256 flows used %d UDP source ports, want >= 200", len(sports))
		}
	}
}

// TestEncapZeroAllocs: encapsulating a batch (IPIP, GUE with the IPv6 UDP
// checksum) allocates nothing.
func TestEncapZeroAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation changes allocation behaviour")
	}
	for _, fwd := range []uint8{FwdIPIP, FwdGUE} {
		e := newEngine(t, 1<<12, encapTables(t, fwd))
		var ins [][]byte
		for i := range 16 {
			ins = append(ins, tcp(t, client(false, i), 3000, packet.TCPFlagACK), tcpTo(t, client(true, i), 3000, vip6, 443, packet.TCPFlagACK),
				tcpTo(t, client(false, i), 3000, encapVIP4x6, vipPort, packet.TCPFlagACK))
		}
		bufs := make([][]byte, len(ins))
		for i := range bufs {
			bufs[i] = make([]byte, 1792)
		}
		frames := make([][]byte, len(ins))
		acts := make([]Action, len(ins))
		run := func() {
			for i, in := range ins {
				frames[i] = bufs[i][:copy(bufs[i], in)]
			}
			e.Process(frames, acts, 1)
		}
		run()
		if allocs := testing.AllocsPerRun(100, run); allocs != 0 {
			t.Errorf("%s: Process of %d frames allocates %.1f times, want 0", ForwardingName(fwd), len(ins), allocs)
		}
		for i, a := range acts {
			if a != Transmit {
				t.Fatalf("%s: frame %d: verdict %d, want Transmit", ForwardingName(fwd), i, a)
			}
		}
		if got, want := e.local.Forwarded[fwd], uint64(102*len(ins)); got != want { // run, AllocsPerRun's warm-up, 100 runs
			t.Errorf("%s: Forwarded = %d, want %d", ForwardingName(fwd), got, want)
		}
	}
}
