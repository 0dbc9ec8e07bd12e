package fastpath

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
)

// NAT fixture addresses: clients in 203.0.113.0/24 and 2001:db8:c1::/48
// behind the router, servers on 198.51.100.0/24 and 2001:db8:100::/64.
var (
	otherMAC = [6]byte{0x02, 0x1b, 0, 0, 0, 0x02} // the engine's other interface (0)
	natC4    = netip.MustParseAddr("203.0.113.7")
	natC6    = netip.MustParseAddr("2001:db8:c1::7")
	// A client no route leads to.
	unroutedC4 = netip.MustParseAddr("192.0.2.99")
)

// NAT fixture sets.
const (
	natSetV4      = 1 // vip4: TCP 80, UDP 53; one server
	natSetV6      = 2 // vip6: TCP and UDP 443; one server
	natSetNoMAC   = 3 // server's next hop unresolved
	natSetTwo     = 4 // two servers
	natSetFTP     = 5 // helper FTP on port 21
	natSetOtherIf = 6 // server behind interface 0
)

var (
	natVIPNoMAC   = netip.MustParseAddr("192.0.2.30")
	natVIPTwo     = netip.MustParseAddr("192.0.2.40")
	natVIPFTP     = netip.MustParseAddr("192.0.2.50")
	natVIPOtherIf = netip.MustParseAddr("192.0.2.60")
)

// natServer is the address of slot of set in the fixture tables.
func natServer(set uint16, slot int, v6 bool) netip.Addr {
	if v6 {
		return netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00, 14: byte(set), 15: byte(slot + 1)})
	}
	return netip.AddrFrom4([4]byte{198, 51, 100, byte(set*16 + uint16(slot) + 1)})
}

// natTables builds the NAT fixture sets the way the slow path would: every
// server reachable by testIface (natSetOtherIf's by interface 0), clients
// routed through routerMAC.
func natTables(tb testing.TB) *Tables {
	tb.Helper()
	t := buildTables(tb, 1,
		setSpec{id: natSetV4, vip: vip4, protos: ProtoBitTCP | ProtoBitUDP, ports: []PortRange{{53, 53}, {vipPort, vipPort}}, servers: weighted(1)},
		setSpec{id: natSetV6, vip: vip6, protos: ProtoBitTCP | ProtoBitUDP, ports: []PortRange{{443, 443}}, servers: weighted(1)},
		setSpec{id: natSetNoMAC, vip: natVIPNoMAC, servers: []srv{{weight: 1, noMAC: true}}},
		setSpec{id: natSetTwo, vip: natVIPTwo, servers: weighted(1, 1)},
		setSpec{id: natSetFTP, vip: natVIPFTP, ports: []PortRange{{21, 21}}, servers: weighted(1)},
		setSpec{id: natSetOtherIf, vip: natVIPOtherIf, servers: weighted(1)},
	)
	sets := t.Sets()
	for _, ts := range sets {
		ts.Forwarding = FwdNAT
		for s := range ts.Servers {
			srv := &ts.Servers[s]
			if !srv.Present {
				continue
			}
			srv.Addr = natServer(ts.ID, s, ts.ID == natSetV6)
			srv.Egress = testIface
			if ts.ID == natSetOtherIf {
				srv.Egress = 0
			}
		}
		if ts.ID == natSetFTP {
			ts.Helper = HelperFTP
			ts.ReturnPorts = []PortRange{{20, 20}}
		}
	}
	nt, err := NewTables(2, sets)
	if err != nil {
		tb.Fatalf("NewTables error: %v", err)
	}
	nt.AllowVLANs([]uint16{100})
	routes, err := NewRoutes([]Route{
		{Prefix: MappedPrefix(netip.MustParsePrefix("203.0.113.0/24")), Iface: testIface, MAC: routerMAC, HasMAC: true},
		{Prefix: netip.MustParsePrefix("2001:db8:c1::/48"), Iface: testIface, MAC: routerMAC, HasMAC: true},
	}, nil)
	if err != nil {
		tb.Fatalf("NewRoutes error: %v", err)
	}
	nt.Routes = new(RouteCell)
	nt.Routes.Store(routes)
	return nt
}

// newNATEngine is an engine on natTables that knows both interfaces' MACs.
func newNATEngine(tb testing.TB) *Engine {
	e := newEngine(tb, 64, natTables(tb))
	e.SetInterfaces([][6]byte{otherMAC, lbMAC})
	return e
}

// natFixture is a fixture whose engine first processes before (each frame
// must be transmitted or punted as its own verdict says), then in.
type natFixture struct {
	desc   string
	pre    func(e *Engine) // ahead of before
	before []packet.FrameSpec
	setup  func(e *Engine) // after before, ahead of in
	in     packet.FrameSpec
	want   packet.FrameSpec // ignored unless act is Transmit
	act    Action
	egress int // interface the frame leaves by when transmitted
}

// runNATFixtures is runFixtures with a history per fixture and the egress
// interface checked too.
func runNATFixtures(t *testing.T, fixtures []natFixture) {
	t.Helper()
	for _, fx := range fixtures {
		t.Run(fx.desc, func(t *testing.T) {
			e := newNATEngine(t)
			if fx.pre != nil {
				fx.pre(e)
			}
			for j, s := range fx.before {
				if act := send(e, 1, encode(t, s))[0]; act != Transmit {
					t.Fatalf("before[%d]: verdict = %d, want Transmit", j, act)
				}
				e.takeEgress(0)
			}
			if fx.setup != nil {
				fx.setup(e)
			}
			in := encode(t, fx.in)
			frame := bytes.Clone(in)
			if act := send(e, 2, frame)[0]; act != fx.act {
				t.Fatalf("verdict = %d, want %d (counters %+v)", act, fx.act, published(e).Drops)
			}
			want := in
			if fx.act == Transmit {
				want = encode(t, fx.want)
				if eg, _ := e.takeEgress(0); eg != fx.egress {
					t.Errorf("egress = %d, want %d", eg, fx.egress)
				}
			}
			if !bytes.Equal(frame, want) {
				t.Fatalf("frame out differs from the fixture\ngot:\n%swant:\n%s", hex.Dump(frame), hex.Dump(want))
			}
		})
	}
}

// natQuote is the start of the packet s, as an ICMP error quotes it: the IP
// header and l4 bytes of what follows.
func natQuote(tb testing.TB, s packet.FrameSpec, l4 int) []byte {
	tb.Helper()
	b := encode(tb, s)[packet.EthernetHeaderLen:]
	hl := packet.IPv6HeaderLen
	if s.Src.Is4() {
		hl = packet.IPv4(b).HeaderLen()
	}
	return b[:min(hl+l4, len(b))]
}

// TestNATFixtures: address translation both ways, byte for byte against
// frames encoded from scratch, so every checksum the engine updated
// incrementally is compared with a full computation.
func TestNATFixtures(t *testing.T) {
	s1 := serverMAC(natSetV4, 0, 1, testIface)
	s2 := serverMAC(natSetV6, 0, 1, testIface)
	srv4, srv6 := natServer(natSetV4, 0, false), natServer(natSetV6, 0, true)
	syn4 := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: natC4, Dst: vip4, Proto: packet.ProtoTCP,
		SrcPort: 40000, DstPort: vipPort, TCPFlags: packet.TCPFlagSYN, Seq: 7}
	data4 := syn4
	data4.TCPFlags, data4.Seq, data4.Ack, data4.Payload = packet.TCPFlagACK|packet.TCPFlagPSH, 8, 1001, []byte("GET / HTTP/1.0\r\n\r\n")
	// to rewrites a client's frame as it must reach server addr by mac.
	to := func(s packet.FrameSpec, addr netip.Addr, mac [6]byte) packet.FrameSpec {
		s.SrcMAC, s.DstMAC, s.Dst = lbMAC, mac, addr
		return s
	}
	// reply is the server's answer to client frame s, as the server sends it.
	reply := func(s packet.FrameSpec, srv netip.Addr, payload string) packet.FrameSpec {
		return packet.FrameSpec{SrcMAC: s1, DstMAC: lbMAC, Src: srv, Dst: s.Src, Proto: s.Proto, SrcPort: s.DstPort,
			DstPort: s.SrcPort, TCPFlags: packet.TCPFlagACK | packet.TCPFlagPSH, Seq: 5000, Ack: s.Seq + 1, Payload: []byte(payload)}
	}
	// back rewrites a server's frame as it must reach the client.
	back := func(s packet.FrameSpec, vip netip.Addr) packet.FrameSpec {
		s.SrcMAC, s.DstMAC, s.Src = lbMAC, routerMAC, vip
		return s
	}
	rep4 := reply(syn4, srv4, "HTTP/1.0 200 OK\r\n")
	udp6 := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: natC6, Dst: vip6, Proto: packet.ProtoUDP,
		SrcPort: 40001, DstPort: 443, Payload: []byte{0xc0, 0, 0, 0, 1}}
	rep6 := reply(udp6, srv6, "quic")
	rep6.TCPFlags, rep6.Seq, rep6.Ack = 0, 0, 0
	vlan4, vlanRep := syn4, rep4
	vlan4.VLAN, vlanRep.VLAN = 100, 100

	// ICMP errors from a router on the clients' side about the server's
	// replies, which left from the VIP: to the server, quoting the reply
	// as the server sent it. One quotes 8 bytes of TCP, one the whole
	// header (its checksum too), one a UDP datagram.
	repVIP4 := rep4
	repVIP4.Src = vip4
	icmp4 := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: router4, Dst: vip4, Proto: packet.ProtoICMP,
		ICMPType: packet.ICMPv4DestUnreachable, ICMPCode: packet.ICMPv4CodeFragNeeded, ICMPRest: 1400,
		Quote: natQuote(t, repVIP4, 8)}
	icmp4Out := icmp4
	icmp4Out.SrcMAC, icmp4Out.DstMAC, icmp4Out.Dst, icmp4Out.Quote = lbMAC, s1, srv4, natQuote(t, rep4, 8)
	icmp4Full, icmp4FullOut := icmp4, icmp4Out
	icmp4Full.Quote, icmp4FullOut.Quote = natQuote(t, repVIP4, 1000), natQuote(t, rep4, 1000)
	repVIP6 := rep6
	repVIP6.Src = vip6
	icmp6 := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: router6, Dst: vip6, Proto: packet.ProtoICMPv6,
		ICMPType: packet.ICMPv6PacketTooBig, ICMPRest: 1280, Quote: natQuote(t, repVIP6, 1000)}
	icmp6Out := icmp6
	icmp6Out.SrcMAC, icmp6Out.DstMAC, icmp6Out.Dst, icmp6Out.Quote = lbMAC, s2, srv6, natQuote(t, rep6, 1000)

	// ICMP errors a server sends about a client's packet (quoting client
	// -> server): from the VIP, quoting client -> VIP.
	udp4 := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: natC4, Dst: vip4, Proto: packet.ProtoUDP,
		SrcPort: 40002, DstPort: 53, Payload: []byte("query")}
	unreach4 := packet.FrameSpec{SrcMAC: s1, DstMAC: lbMAC, Src: srv4, Dst: natC4, Proto: packet.ProtoICMP,
		ICMPType: packet.ICMPv4DestUnreachable, ICMPCode: 3, Quote: natQuote(t, to(udp4, srv4, s1), 1000)}
	unreach4Out := unreach4
	unreach4Out.SrcMAC, unreach4Out.DstMAC, unreach4Out.Src, unreach4Out.Quote = lbMAC, routerMAC, vip4, natQuote(t, udp4, 1000)
	unreach6 := packet.FrameSpec{SrcMAC: s2, DstMAC: lbMAC, Src: srv6, Dst: natC6, Proto: packet.ProtoICMPv6,
		ICMPType: packet.ICMPv6DestUnreachable, ICMPCode: 4, Quote: natQuote(t, to(udp6, srv6, s2), 1000)}
	unreach6Out := unreach6
	unreach6Out.SrcMAC, unreach6Out.DstMAC, unreach6Out.Src, unreach6Out.Quote = lbMAC, routerMAC, vip6, natQuote(t, udp6, 1000)

	// The client of set 4's two servers whose flow Maglev gives slot 0.
	ts := natTables(t).Set(natSetTwo)
	port := uint16(41000)
	for maglevSlot(ts, natC4, port, packet.ProtoTCP) != 0 {
		port++
	}
	syn2 := syn4
	syn2.Dst, syn2.SrcPort = natVIPTwo, port
	wrong := reply(syn2, natServer(natSetTwo, 1, false), "")
	unresolved := syn4
	unresolved.Dst = natVIPNoMAC
	noRoute := reply(syn4, srv4, "")
	noRoute.Dst = unroutedC4
	noRouteSyn := syn4
	noRouteSyn.Src = unroutedC4
	otherIf := syn4
	otherIf.Dst = natVIPOtherIf
	otherIfOut := to(otherIf, natServer(natSetOtherIf, 0, false), serverMAC(natSetOtherIf, 0, 1, 0))
	otherIfOut.SrcMAC = otherMAC

	runNATFixtures(t, []natFixture{
		{desc: "IPv4 TCP SYN to the server", in: syn4, want: to(syn4, srv4, s1), act: Transmit, egress: testIface},
		{desc: "IPv4 TCP with payload to the server", before: []packet.FrameSpec{syn4}, in: data4, want: to(data4, srv4, s1),
			act: Transmit, egress: testIface},
		{desc: "IPv4 TCP reply from the VIP", before: []packet.FrameSpec{syn4}, in: rep4, want: back(rep4, vip4), act: Transmit,
			egress: testIface},
		{desc: "IPv6 UDP to the server", in: udp6, want: to(udp6, srv6, s2), act: Transmit, egress: testIface},
		{desc: "IPv6 UDP reply from the VIP", before: []packet.FrameSpec{udp6}, in: rep6, want: back(rep6, vip6), act: Transmit,
			egress: testIface},
		{desc: "VLAN-tagged IPv4 TCP keeps its tag", in: vlan4, want: to(vlan4, srv4, s1), act: Transmit, egress: testIface},
		{desc: "VLAN-tagged reply keeps its tag", before: []packet.FrameSpec{vlan4}, in: vlanRep, want: back(vlanRep, vip4),
			act: Transmit, egress: testIface},
		{desc: "ICMPv4 fragmentation needed about a reply goes to its server", before: []packet.FrameSpec{syn4},
			in: icmp4, want: icmp4Out, act: Transmit, egress: testIface},
		{desc: "ICMPv4 quoting a whole TCP header: quoted checksum translated", before: []packet.FrameSpec{syn4},
			in: icmp4Full, want: icmp4FullOut, act: Transmit, egress: testIface},
		{desc: "ICMPv6 packet too big about a reply goes to its server", before: []packet.FrameSpec{udp6},
			in: icmp6, want: icmp6Out, act: Transmit, egress: testIface},
		{desc: "ICMPv4 port unreachable from a server leaves from the VIP", before: []packet.FrameSpec{udp4},
			in: unreach4, want: unreach4Out, act: Transmit, egress: testIface},
		{desc: "ICMPv6 unreachable from a server leaves from the VIP", before: []packet.FrameSpec{udp6},
			in: unreach6, want: unreach6Out, act: Transmit, egress: testIface},
		{desc: "reply without an association goes where the hash sent the flow", in: rep4, want: back(rep4, vip4),
			act: Transmit, egress: testIface},
		{desc: "server behind the other interface: handed to it with its MAC", in: otherIf, want: otherIfOut, act: Transmit,
			egress: 0},
		{desc: "reply from a server the client's flow is not on: dropped untouched", before: []packet.FrameSpec{syn2},
			in: wrong, act: Drop},
		{desc: "server's next hop unresolved: dropped untouched", in: unresolved, act: Drop},
		{desc: "reply to a client no route leads to: dropped untouched", before: []packet.FrameSpec{noRouteSyn}, in: noRoute,
			act: Drop},
	})
}

// TestNATHelperFixtures: on a helper set, control segments with payload are
// punted untranslated both ways; segments without payload are translated
// with the flow's sequence offset; injected segments keep the numbers the
// helper wrote; expectations admit data connections both ways.
func TestNATHelperFixtures(t *testing.T) {
	srv := natServer(natSetFTP, 0, false)
	smac := serverMAC(natSetFTP, 0, 1, testIface)
	syn := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: natC4, Dst: natVIPFTP, Proto: packet.ProtoTCP,
		SrcPort: 40000, DstPort: 21, TCPFlags: packet.TCPFlagSYN, Seq: 100}
	cmd := syn
	cmd.TCPFlags, cmd.Seq, cmd.Ack, cmd.Payload = packet.TCPFlagACK|packet.TCPFlagPSH, 101, 5000, []byte("PASV\r\n")
	ack := cmd
	ack.TCPFlags, ack.Payload = packet.TCPFlagACK, nil
	ackOut := ack
	ackOut.SrcMAC, ackOut.DstMAC, ackOut.Dst, ackOut.Ack = lbMAC, smac, srv, ack.Ack-3
	rep := packet.FrameSpec{SrcMAC: smac, DstMAC: lbMAC, Src: srv, Dst: natC4, Proto: packet.ProtoTCP,
		SrcPort: 21, DstPort: 40000, TCPFlags: packet.TCPFlagACK | packet.TCPFlagPSH, Seq: 5000, Ack: 107,
		Payload: []byte("227 Entering Passive Mode (198,51,100,81,117,49).\r\n")}
	repAck := rep
	repAck.TCPFlags, repAck.Payload = packet.TCPFlagACK, nil
	repAckOut := repAck
	repAckOut.SrcMAC, repAckOut.DstMAC, repAckOut.Src, repAckOut.Seq = lbMAC, routerMAC, natVIPFTP, repAck.Seq+3
	// offset sets the control flow's sequence offset to 3, as the helper
	// does after lengthening a reply by 3 bytes.
	offset := func(e *Engine) {
		k := assoc.Key{Addr: natC4.As16(), Port: 40000, Proto: packet.ProtoTCP, Set: natSetFTP}
		v, ok := e.Shard().Get(&k)
		if !ok {
			t.Fatal("no record for the control connection")
		}
		v.Tag = 3
		if r := e.ApplyControl(&ControlMsg{Op: ControlUpdate, Key: k, Value: v}); r != ControlApplied {
			t.Fatalf("ApplyControl(update) = %d, want applied", r)
		}
	}
	// Expectations of the FTP set's server 0.
	expect := func(port uint16, flags uint8, tag uint32) func(e *Engine) {
		return func(e *Engine) {
			k := assoc.Key{Addr: natC4.As16(), Port: port, Proto: packet.ProtoTCP, Set: natSetFTP, Kind: assoc.KindExpect}
			v := assoc.Value{Server: 0, Gen: 1, Flags: flags, Tag: tag, LastSeen: 1}
			if r := e.ApplyControl(&ControlMsg{Op: ControlInsert, Key: k, Value: v}); r != ControlApplied {
				t.Fatalf("ApplyControl(insert expectation) = %d, want applied", r)
			}
		}
	}
	pasv := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: natC4, Dst: natVIPFTP, Proto: packet.ProtoTCP,
		SrcPort: 40010, DstPort: 30001, TCPFlags: packet.TCPFlagSYN, Seq: 1}
	pasvOut := pasv
	pasvOut.SrcMAC, pasvOut.DstMAC, pasvOut.Dst = lbMAC, smac, srv
	active := packet.FrameSpec{SrcMAC: smac, DstMAC: lbMAC, Src: srv, Dst: natC4, Proto: packet.ProtoTCP,
		SrcPort: 20, DstPort: 50000, TCPFlags: packet.TCPFlagSYN, Seq: 9}
	activeOut := active
	activeOut.SrcMAC, activeOut.DstMAC, activeOut.Src = lbMAC, routerMAC, natVIPFTP
	activeAck := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: natC4, Dst: natVIPFTP, Proto: packet.ProtoTCP,
		SrcPort: 50000, DstPort: 20, TCPFlags: packet.TCPFlagSYN | packet.TCPFlagACK, Seq: 77, Ack: 10}
	activeAckOut := activeAck
	activeAckOut.SrcMAC, activeAckOut.DstMAC, activeAckOut.Dst = lbMAC, smac, srv

	runNATFixtures(t, []natFixture{
		{desc: "client command with payload: punted untranslated", before: []packet.FrameSpec{syn}, in: cmd, act: Punt},
		{desc: "server reply with payload: punted untranslated", before: []packet.FrameSpec{syn}, in: rep, act: Punt},
		{desc: "client ACK: acknowledgement less the offset", before: []packet.FrameSpec{syn}, setup: offset,
			in: ack, want: ackOut, act: Transmit, egress: testIface},
		{desc: "server ACK: sequence plus the offset", before: []packet.FrameSpec{syn}, setup: offset,
			in: repAck, want: repAckOut, act: Transmit, egress: testIface},
		{desc: "passive data connection admitted by its expectation", setup: expect(30001, 0, 0),
			in: pasv, want: pasvOut, act: Transmit, egress: testIface},
		{desc: "passive data connection without an expectation: dropped", in: pasv, act: Drop},
		{desc: "active expectation does not admit a client's connection", setup: expect(30001, ExpectActive, 20),
			in: pasv, act: Drop},
		{desc: "active data connection from port 20 leaves from VIP:20", setup: expect(50000, ExpectActive, 20),
			in: active, want: activeOut, act: Transmit, egress: testIface},
		{desc: "active data connection from another port than announced: dropped", setup: expect(50000, ExpectActive, 21),
			in: active, act: Drop},
		{desc: "client's answer to an active data connection reaches the server", pre: expect(50000, ExpectActive, 20),
			before: []packet.FrameSpec{active}, in: activeAck, want: activeAckOut, act: Transmit, egress: testIface},
	})
}

// TestNATInjected: a segment the helper injects is translated but neither
// punted again nor given the flow's sequence offset.
func TestNATInjected(t *testing.T) {
	e := newNATEngine(t)
	srv := natServer(natSetFTP, 0, false)
	syn := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: natC4, Dst: natVIPFTP, Proto: packet.ProtoTCP,
		SrcPort: 40000, DstPort: 21, TCPFlags: packet.TCPFlagSYN, Seq: 100}
	if act := send(e, 1, encode(t, syn))[0]; act != Transmit {
		t.Fatalf("SYN verdict = %d, want Transmit", act)
	}
	k := assoc.Key{Addr: natC4.As16(), Port: 40000, Proto: packet.ProtoTCP, Set: natSetFTP}
	v, _ := e.Shard().Get(&k)
	v.Tag = 7
	e.ApplyControl(&ControlMsg{Op: ControlUpdate, Key: k, Value: v})
	cmd := syn
	cmd.TCPFlags, cmd.Seq, cmd.Ack, cmd.Payload = packet.TCPFlagACK|packet.TCPFlagPSH, 101, 5000, []byte("PORT 203,0,113,7,195,80\r\n")
	frame := encode(t, cmd)
	if act := e.ProcessInjected(frame, 2); act != Transmit {
		t.Fatalf("ProcessInjected verdict = %d, want Transmit", act)
	}
	want := cmd
	want.SrcMAC, want.DstMAC, want.Dst = lbMAC, serverMAC(natSetFTP, 0, 1, testIface), srv
	if w := encode(t, want); !bytes.Equal(frame, w) {
		t.Fatalf("injected frame out differs\ngot:\n%swant:\n%s", hex.Dump(frame), hex.Dump(w))
	}
	rep := packet.FrameSpec{SrcMAC: lbMAC, DstMAC: lbMAC, Src: srv, Dst: natC4, Proto: packet.ProtoTCP,
		SrcPort: 21, DstPort: 40000, TCPFlags: packet.TCPFlagACK | packet.TCPFlagPSH, Seq: 5000, Ack: 126, Payload: []byte("200 OK\r\n")}
	frame = encode(t, rep)
	if act := e.ProcessInjected(frame, 2); act != Transmit {
		t.Fatalf("ProcessInjected(reply) verdict = %d, want Transmit", act)
	}
	want = rep
	want.SrcMAC, want.DstMAC, want.Src = lbMAC, routerMAC, natVIPFTP
	if w := encode(t, want); !bytes.Equal(frame, w) {
		t.Fatalf("injected reply out differs\ngot:\n%swant:\n%s", hex.Dump(frame), hex.Dump(w))
	}
	if c := published(e); c.Punted != 0 || c.Forwarded[FwdNAT] != 3 {
		t.Errorf("Punted, Forwarded[nat] = %d, %d, want 0, 3", c.Punted, c.Forwarded[FwdNAT])
	}
}

// TestNATReplyAcrossShards: a reply reaching another worker than the one
// that made the association (another RX queue, or the servers' interface of
// a two-armed setup) finds it in that worker's shard, without making one.
func TestNATReplyAcrossShards(t *testing.T) {
	tab := natTables(t)
	a, b := newEngine(t, 64, tab), newEngine(t, 64, tab)
	for _, e := range []*Engine{a, b} {
		e.SetPeers([]*assoc.Shard{a.Shard(), b.Shard()})
		e.SetInterfaces([][6]byte{otherMAC, lbMAC})
	}
	ts := tab.Set(natSetTwo)
	// A client port whose stateless hash names slot 1, associated with
	// slot 0 by hand: only the record can make slot 0's reply ours.
	port := uint16(42000)
	for maglevSlot(ts, natC4, port, packet.ProtoTCP) != 1 {
		port++
	}
	k := assoc.Key{Addr: natC4.As16(), Port: port, Proto: packet.ProtoTCP, Set: natSetTwo}
	a.ApplyControl(&ControlMsg{Op: ControlInsert, Key: k, Value: assoc.Value{Server: 0, Gen: 1, NAT: true, LastSeen: 1}})
	rep := packet.FrameSpec{SrcMAC: lbMAC, DstMAC: lbMAC, Src: natServer(natSetTwo, 0, false), Dst: natC4, Proto: packet.ProtoTCP,
		SrcPort: vipPort, DstPort: port, TCPFlags: packet.TCPFlagACK, Seq: 1, Ack: 1}
	frame := encode(t, rep)
	if act := send(b, 1, frame)[0]; act != Transmit {
		t.Fatalf("reply on the other worker: verdict = %d, want Transmit", act)
	}
	if got := packet.IPv4(frame[packet.EthernetHeaderLen:]).Src(); got != natVIPTwo.As4() {
		t.Errorf("reply source = %v, want %v", got, natVIPTwo)
	}
	if n := b.Shard().Live(); n != 0 {
		t.Errorf("the replying worker's shard holds %d records, want 0", n)
	}
	// Without the peer, the reply is not the flow's.
	b.SetPeers(nil)
	if act := send(b, 1, encode(t, rep))[0]; act != Drop {
		t.Errorf("reply without the owner's shard: verdict = %d, want Drop", act)
	}
}

// TestNATReplyPastStaleRecord: a client that reuses a source port towards
// another port of a plain NAT set can reach another RX queue (RSS hashes the
// destination port too), so the new connection's record, naming server 0,
// is in one worker's shard while the finished one's, naming server 1,
// lingers in another's. Server 0's replies are translated, whichever shard
// the reply's worker reads first.
func TestNATReplyPastStaleRecord(t *testing.T) {
	tab := natTables(t)
	a, b := newEngine(t, 64, tab), newEngine(t, 64, tab)
	for _, e := range []*Engine{a, b} {
		e.SetPeers([]*assoc.Shard{a.Shard(), b.Shard()})
		e.SetInterfaces([][6]byte{otherMAC, lbMAC})
	}
	ts := tab.Set(natSetTwo)
	if ts.Helper != HelperNone {
		t.Fatalf("set %d has a helper; this test is about plain NAT sets", natSetTwo)
	}
	port := uint16(42000)
	for maglevSlot(ts, natC4, port, packet.ProtoTCP) != 1 { // the stateless hash must not make the reply ours
		port++
	}
	k := assoc.Key{Addr: natC4.As16(), Port: port, Proto: packet.ProtoTCP, Set: natSetTwo}
	b.ApplyControl(&ControlMsg{Op: ControlInsert, Key: k, Value: assoc.Value{Server: 1, Gen: 1, NAT: true, LastSeen: 1}})
	a.ApplyControl(&ControlMsg{Op: ControlInsert, Key: k, Value: assoc.Value{Server: 0, Gen: 1, NAT: true, LastSeen: 1}})
	rep := packet.FrameSpec{SrcMAC: lbMAC, DstMAC: lbMAC, Src: natServer(natSetTwo, 0, false), Dst: natC4, Proto: packet.ProtoTCP,
		SrcPort: vipPort, DstPort: port, TCPFlags: packet.TCPFlagACK, Seq: 1, Ack: 1}
	for _, e := range []*Engine{a, b} {
		frame := encode(t, rep)
		if act := send(e, 1, frame)[0]; act != Transmit {
			t.Fatalf("server 0's reply past the stale record: verdict = %d, want Transmit", act)
		}
		if got := packet.IPv4(frame[packet.EthernetHeaderLen:]).Src(); got != natVIPTwo.As4() {
			t.Errorf("reply source = %v, want %v", got, natVIPTwo)
		}
	}
	// Only records naming server 1 anywhere: server 0's packet to that
	// client port is not translated.
	other := port + 1
	for maglevSlot(ts, natC4, other, packet.ProtoTCP) != 1 {
		other++
	}
	k.Port = other
	a.ApplyControl(&ControlMsg{Op: ControlInsert, Key: k, Value: assoc.Value{Server: 1, Gen: 1, NAT: true, LastSeen: 1}})
	b.ApplyControl(&ControlMsg{Op: ControlInsert, Key: k, Value: assoc.Value{Server: 1, Gen: 1, NAT: true, LastSeen: 1}})
	rep.DstPort = other
	if act := send(b, 1, encode(t, rep))[0]; act != Drop {
		t.Errorf("server 0 to a client port only server 1 holds: verdict = %d, want Drop", act)
	}
}

// TestNATRewriteRandom checks the incremental rewrites against full
// recomputation on seeded random packets, gVisor style: each packet is
// translated in place (addresses either way, sequence and acknowledgement
// offsets, ICMP errors quoting any length of TCP or UDP) and must equal, byte
// for byte, the packet Encode builds from the translated spec, every
// checksum computed from scratch.
func TestNATRewriteRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 1))
	addr := func(v4 bool) netip.Addr {
		var a [16]byte
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		// Unicast addresses a client can have: Parse refuses martian
		// ones (packet.MartianAddress).
		if v4 {
			a[0] = 1 + a[0]%223 // 1-223: not 0/8, multicast or broadcast
			if a[0] == 127 {
				a[0] = 128
			}
			return netip.AddrFrom4([4]byte(a[:4]))
		}
		a[0] = 0x20 | a[0]&0x1f // 2000::/3: not ::ffff:0:0/96 (read as IPv4), ::, ::1 or multicast
		return netip.AddrFrom16(a)
	}
	for i := range 20000 {
		v4 := i%2 == 0
		s := packet.FrameSpec{
			Src: addr(v4), Dst: addr(v4), Proto: packet.ProtoTCP,
			SrcPort: uint16(rng.Uint32()), DstPort: uint16(rng.Uint32()),
			Seq: rng.Uint32(), Ack: rng.Uint32(), TCPFlags: uint8(rng.Uint32()) &^ packet.TCPFlagSYN,
			Payload: make([]byte, rng.IntN(64)),
		}
		if i%4 >= 2 {
			s.Proto = packet.ProtoUDP
		}
		for j := range s.Payload {
			s.Payload[j] = byte(rng.Uint32())
		}
		to := addr(v4)
		toServer := rng.IntN(2) == 0
		delta := rng.Uint32()
		want := s
		if toServer {
			want.Dst = to
			want.Ack -= delta
		} else {
			want.Src = to
			want.Seq += delta
		}
		icmp := i%3 == 0
		if icmp {
			// An error about s, quoting qlen bytes of its L4 header and
			// payload, sent to s's source (from a server) or to s's
			// destination's peer (to the VIP, about a reply).
			ql := 8 + rng.IntN(len(s.Payload)+20)
			if s.Proto == packet.ProtoTCP && ql == tcpCsumOff+1 {
				// A quote that ends inside the TCP checksum keeps its
				// half: the other half's carry is not there to update it.
				ql++
			}
			wq := want
			wq.Seq, wq.Ack = s.Seq, s.Ack
			e := packet.FrameSpec{Proto: packet.ProtoICMP, ICMPType: packet.ICMPv4DestUnreachable, ICMPCode: uint8(rng.IntN(16)),
				ICMPRest: rng.Uint32(), Quote: natQuote(t, s, ql)}
			if !v4 {
				e.Proto, e.ICMPType = packet.ProtoICMPv6, packet.ICMPv6DestUnreachable
			}
			we := e
			we.Quote = natQuote(t, wq, ql)
			if toServer {
				// About a reply s (VIP -> client): to the VIP, then the
				// server; the quote's source is translated.
				wq = s
				wq.Src = to
				we.Quote = natQuote(t, wq, ql)
				e.Src, e.Dst = addr(v4), s.Src
				we.Src, we.Dst = e.Src, to
			} else {
				// About a client's packet s (client -> server) from the
				// server: from the VIP; the quote's destination.
				wq = s
				wq.Dst = to
				we.Quote = natQuote(t, wq, ql)
				e.Src, e.Dst = s.Dst, s.Src
				we.Src, we.Dst = to, s.Src
			}
			s, want = e, we
		}
		frame := encode(t, s)
		var f packet.Flow
		if r := packet.Parse(frame, &f); r != packet.OK {
			t.Fatalf("Parse(%+v) = %v", s, r)
		}
		dst := to.As16()
		switch {
		case icmp:
			natICMP(frame, &f, toServer, &dst)
		case toServer:
			natAddr(frame, &f, true, &dst)
			if s.Proto == packet.ProtoTCP {
				adjustAck(frame, &f, delta)
			}
		default:
			natAddr(frame, &f, false, &dst)
			if s.Proto == packet.ProtoTCP {
				adjust32(frame[f.L4Off:], tcpSeqOff, delta)
			}
		}
		if s.Proto == packet.ProtoUDP {
			want.Seq, want.Ack = 0, 0
		}
		if w := encode(t, want); !bytes.Equal(frame, w) {
			t.Fatalf("case %d (icmp %v, toServer %v): %+v translated\n got %x\nwant %x", i, icmp, toServer, s, frame, w)
		}
	}
}

// TestNATZeroUDPChecksum: an IPv4 UDP datagram sent without a checksum
// (zero) keeps none through translation, inside ICMP quotes too.
func TestNATZeroUDPChecksum(t *testing.T) {
	s := packet.FrameSpec{Src: natC4, Dst: vip4, Proto: packet.ProtoUDP, SrcPort: 1, DstPort: 53, Payload: []byte("x")}
	frame := encode(t, s)
	l4 := frame[packet.EthernetHeaderLen+packet.IPv4MinHeaderLen:]
	packet.UDP(l4).SetChecksum(0)
	var f packet.Flow
	packet.Parse(frame, &f)
	to := natServer(1, 0, false).As16()
	natAddr(frame, &f, true, &to)
	if c := packet.UDP(l4).Checksum(); c != 0 {
		t.Errorf("checksum after translation = %#04x, want 0 (none)", c)
	}
	if !packet.IPv4(frame[packet.EthernetHeaderLen:]).IsChecksumValid() {
		t.Error("IPv4 header checksum invalid after translation")
	}
}

// TestNATSACK: a client ACK's SACK blocks are shifted by the offset like its
// acknowledgement number, wherever the option sits (after one NOP its
// fields are at odd offsets), and the TCP checksum still verifies.
func TestNATSACK(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	for i := range 2000 {
		// Options: 0-3 NOPs, SACK with 1-3 blocks, padding with NOPs.
		var opts []byte
		for range rng.IntN(4) {
			opts = append(opts, tcpOptNOP)
		}
		nb := 1 + rng.IntN(3)
		sackAt := len(opts)
		opts = append(opts, tcpOptSACK, byte(2+8*nb))
		edges := make([]uint32, 2*nb)
		for j := range edges {
			edges[j] = rng.Uint32()
			opts = binary.BigEndian.AppendUint32(opts, edges[j])
		}
		for len(opts)%4 != 0 {
			opts = append(opts, tcpOptEnd)
		}
		payload := make([]byte, rng.IntN(3)) // odd lengths: the last checksum word padded
		for j := range payload {
			payload[j] = byte(rng.Uint32())
		}
		frame := tcpWithOptions(t, opts, payload)
		var f packet.Flow
		if r := packet.Parse(frame, &f); r != packet.OK {
			t.Fatalf("Parse = %v", r)
		}
		delta := rng.Uint32()
		ack := packet.TCP(frame[f.L4Off:]).Ack()
		adjustAck(frame, &f, delta)
		tcp := packet.TCP(frame[f.L4Off : int(f.L3Off)+int(f.Len)])
		if got := tcp.Ack(); got != ack-delta {
			t.Fatalf("case %d: ack = %d, want %d", i, got, ack-delta)
		}
		for j, e := range edges {
			off := packet.TCPMinHeaderLen + sackAt + 2 + 4*j
			if got := binary.BigEndian.Uint32(tcp[off:]); got != e-delta {
				t.Fatalf("case %d: SACK edge %d = %d, want %d", i, j, got, e-delta)
			}
		}
		ip := packet.IPv4(frame[f.L3Off:])
		if sum := packet.Checksum(tcp, packet.PseudoHeaderSum4(ip.Src(), ip.Dst(), packet.ProtoTCP, uint16(len(tcp)))); sum != 0xffff {
			t.Fatalf("case %d: options %x: TCP checksum does not verify (%#04x)", i, opts, sum)
		}
	}
}

// tcpWithOptions is an IPv4 TCP ACK with the given options and payload and
// a correct checksum.
func tcpWithOptions(tb testing.TB, opts, payload []byte) []byte {
	tb.Helper()
	s := packet.FrameSpec{Src: natC4, Dst: vip4, Proto: packet.ProtoTCP, SrcPort: 1, DstPort: 80,
		TCPFlags: packet.TCPFlagACK, Seq: 1, Ack: 12345, Payload: append(append([]byte(nil), opts...), payload...)}
	frame := encode(tb, s)
	l4 := frame[packet.EthernetHeaderLen+packet.IPv4MinHeaderLen:]
	l4[tcpDOffOff] = byte((packet.TCPMinHeaderLen+len(opts))/4) << 4
	tcp := packet.TCP(l4)
	tcp.SetChecksum(0)
	ip := packet.IPv4(frame[packet.EthernetHeaderLen:])
	tcp.SetChecksum(^packet.Checksum(l4, packet.PseudoHeaderSum4(ip.Src(), ip.Dst(), packet.ProtoTCP, uint16(len(l4)))))
	return frame
}
