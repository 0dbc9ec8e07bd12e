package fastpath

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"testing"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// fixture is one row of a forwarding strategy's fixture table, in the style
// of Katran's test fixtures: a frame in, the frame that must come out (byte
// for byte), and the verdict. Both frames are encoded independently from
// their specs, so the expected output is what the wire must carry, not a
// copy of the input with the engine's own edits.
type fixture struct {
	desc string
	in   packet.FrameSpec
	want packet.FrameSpec // ignored unless act is Transmit
	act  Action
}

// runFixtures processes each fixture's frame through an engine on tab and
// compares verdict and bytes; a dropped frame must come back unchanged.
func runFixtures(t *testing.T, tab *Tables, fixtures []fixture) {
	t.Helper()
	for _, fx := range fixtures {
		t.Run(fx.desc, func(t *testing.T) {
			e := newEngine(t, 64, tab)
			in := encode(t, fx.in)
			frame := bytes.Clone(in)
			if act := send(e, 1, frame)[0]; act != fx.act {
				t.Fatalf("verdict = %d, want %d", act, fx.act)
			}
			want := in
			if fx.act == Transmit {
				want = encode(t, fx.want)
			}
			if !bytes.Equal(frame, want) {
				t.Fatalf("frame out differs from the fixture\ngot:\n%swant:\n%s", hex.Dump(frame), hex.Dump(want))
			}
		})
	}
}

// dsrTables has one server per set, so the fixture knows where a frame goes:
// set 1 on vip4 (TCP 80, UDP 53), set 2 on vip6 (TCP and UDP 443), set 3 on
// a VIP whose server's MAC is unknown.
func dsrTables(t *testing.T) *Tables {
	return buildTables(t, 1,
		setSpec{id: 1, vip: vip4, protos: ProtoBitTCP | ProtoBitUDP, ports: []PortRange{{53, 53}, {vipPort, vipPort}}, servers: weighted(1)},
		setSpec{id: 2, vip: vip6, protos: ProtoBitTCP | ProtoBitUDP, ports: []PortRange{{443, 443}}, servers: weighted(1)},
		setSpec{id: 3, vip: netip.MustParseAddr("192.0.2.30"), servers: []srv{{weight: 1, noMAC: true}}},
	)
}

// TestDSRFixtures: L2 direct server return changes the two MAC addresses and
// nothing else: not the VLAN tag, not a byte of IP or L4, not the checksums.
// Tagged frames pass only on the VLANs the tables allow.
func TestDSRFixtures(t *testing.T) {
	s1, s2 := serverMAC(1, 0, 1, testIface), serverMAC(2, 0, 1, testIface)
	c4, c6 := client(false, 1), client(true, 1)
	tcp4 := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c4, Dst: vip4, Proto: packet.ProtoTCP,
		SrcPort: 40000, DstPort: vipPort, TCPFlags: packet.TCPFlagSYN, Seq: 7, Payload: []byte("GET / HTTP/1.0\r\n")}
	udp6 := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: c6, Dst: vip6, Proto: packet.ProtoUDP,
		SrcPort: 40001, DstPort: 443, Payload: []byte{0xc0, 0, 0, 0, 1}}
	vlan := tcp4
	vlan.VLAN = 100
	icmp := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: router4, Dst: vip4, Proto: packet.ProtoICMP,
		ICMPType: packet.ICMPv4DestUnreachable, ICMPCode: packet.ICMPv4CodeFragNeeded, ICMPRest: 1400,
		Quote: quote(t, vip4, c4, 40002)}
	icmp6 := packet.FrameSpec{SrcMAC: routerMAC, DstMAC: lbMAC, Src: router6, Dst: vip6, Proto: packet.ProtoICMPv6,
		ICMPType: packet.ICMPv6PacketTooBig, ICMPRest: 1280}
	{
		q := encode(t, packet.FrameSpec{SrcMAC: lbMAC, DstMAC: routerMAC, Src: vip6, Dst: c6, Proto: packet.ProtoTCP,
			SrcPort: 443, DstPort: 40003, TCPFlags: packet.TCPFlagACK})[packet.EthernetHeaderLen:]
		icmp6.Quote = q[:packet.IPv6HeaderLen+8]
	}
	to := func(s packet.FrameSpec, mac [6]byte) packet.FrameSpec {
		s.SrcMAC, s.DstMAC = lbMAC, mac
		return s
	}
	unresolved := tcp4
	unresolved.Dst = netip.MustParseAddr("192.0.2.30")
	noSet := tcp4
	noSet.DstPort = 81
	otherVLAN := tcp4
	otherVLAN.VLAN = 101
	tab := dsrTables(t)
	tab.AllowVLANs([]uint16{100, 4094})
	runFixtures(t, tab, []fixture{
		{"IPv4 TCP with payload", tcp4, to(tcp4, s1), Transmit},
		{"IPv6 UDP", udp6, to(udp6, s2), Transmit},
		{"VLAN-tagged IPv4 TCP keeps its tag", vlan, to(vlan, s1), Transmit},
		{"a VLAN vlans does not list: dropped untouched", otherVLAN, packet.FrameSpec{}, Drop},
		{"ICMPv4 fragmentation needed goes to the quoted flow's server", icmp, to(icmp, s1), Transmit},
		{"ICMPv6 packet too big goes to the quoted flow's server", icmp6, to(icmp6, s2), Transmit},
		{"server MAC unresolved: dropped untouched", unresolved, packet.FrameSpec{}, Drop},
		{"port no set serves: dropped untouched", noSet, packet.FrameSpec{}, Drop},
	})
}
