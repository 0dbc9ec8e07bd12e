//go:build linux

package steer_test

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/fastpath/steer"
)

// TestReturnVerdicts: with a VIP miss, the program redirects exactly a NAT
// server's traffic from its rule's protocols and source ports, and its ICMP
// errors, unless addressed to the host itself; everything else passes.
func TestReturnVerdicts(t *testing.T) {
	l := newLab(t)
	srv4, srv6 := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("2001:db8:100::11")
	udpOnly := netip.MustParseAddr("198.51.100.12")
	other4 := netip.MustParseAddr("198.51.100.13")
	client4, client6 := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("2001:db8:c1::7")
	rules := []steer.ReturnRule{
		{Addr: srv4, Protos: steer.ProtoTCP | steer.ProtoUDP, Ports: [][2]uint16{{80, 80}, {7000, 7010}}, ICMPErrors: true},
		{Addr: srv6, Protos: steer.ProtoTCP | steer.ProtoUDP, Ports: [][2]uint16{{80, 80}}, ICMPErrors: true},
		{Addr: udpOnly, Protos: steer.ProtoUDP, Ports: [][2]uint16{{80, 80}}},
	}
	if err := l.prog.SetReturns(rules, []netip.Addr{lbAddr4, lbAddr6}); err != nil {
		t.Fatal(err)
	}
	frame := func(src, dst netip.Addr, proto uint8, sport uint16, icmpType uint8) []byte {
		s := packet.FrameSpec{Src: src, Dst: dst, Proto: proto, SrcPort: sport, DstPort: 5555, ICMPType: icmpType,
			TCPFlags: packet.TCPFlagACK, Payload: []byte("x")}
		if proto == packet.ProtoICMP || proto == packet.ProtoICMPv6 {
			s.Payload = nil
		}
		b := make([]byte, 128)
		n, err := packet.Encode(b, &s)
		if err != nil {
			t.Fatal(err)
		}
		return b[:n]
	}
	fragment := frame(srv4, client4, packet.ProtoUDP, 80, 0)
	binary.BigEndian.PutUint16(fragment[14+6:], 185) // offset 185*8, not first
	withOptions := frame(srv4, client4, packet.ProtoUDP, 80, 0)
	// IHL 6: a 4-byte option (NOPs) between the header and the ports.
	withOptions = append(withOptions[:14+20:14+20], append([]byte{1, 1, 1, 0}, withOptions[14+20:]...)...)
	withOptions[14] = 0x46
	binary.BigEndian.PutUint16(withOptions[14+2:], uint16(len(withOptions)-14))
	for _, tc := range []struct {
		name  string
		frame []byte
		want  uint32
	}{
		{"UDP from a server's set port", frame(srv4, client4, packet.ProtoUDP, 80, 0), xdpVerdictRedirect},
		{"TCP from a port of a range", frame(srv4, client4, packet.ProtoTCP, 7005, 0), xdpVerdictRedirect},
		{"TCP from the range's last port", frame(srv4, client4, packet.ProtoTCP, 7010, 0), xdpVerdictRedirect},
		{"TCP from just past the range", frame(srv4, client4, packet.ProtoTCP, 7011, 0), xdpVerdictPass},
		{"TCP from another port (ssh)", frame(srv4, client4, packet.ProtoTCP, 22, 0), xdpVerdictPass},
		{"to the host's own address", frame(srv4, lbAddr4, packet.ProtoTCP, 80, 0), xdpVerdictPass},
		{"from an address that is no server", frame(other4, client4, packet.ProtoUDP, 80, 0), xdpVerdictPass},
		{"TCP from a UDP-only server", frame(udpOnly, client4, packet.ProtoTCP, 80, 0), xdpVerdictPass},
		{"UDP from a UDP-only server", frame(udpOnly, client4, packet.ProtoUDP, 80, 0), xdpVerdictRedirect},
		{"ICMP unreachable from a server", frame(srv4, client4, packet.ProtoICMP, 0, packet.ICMPv4DestUnreachable), xdpVerdictRedirect},
		{"ICMP time exceeded from a server", frame(srv4, client4, packet.ProtoICMP, 0, packet.ICMPv4TimeExceeded), xdpVerdictRedirect},
		{"ICMP echo reply from a server", frame(srv4, client4, packet.ProtoICMP, 0, packet.ICMPv4EchoReply), xdpVerdictPass},
		{"ICMP error from a server without errors steered", frame(udpOnly, client4, packet.ProtoICMP, 0, packet.ICMPv4DestUnreachable), xdpVerdictPass},
		{"IPv4 non-first fragment", fragment, xdpVerdictPass},
		{"IPv4 with options", withOptions, xdpVerdictRedirect},
		{"IPv6 UDP from a server's set port", frame(srv6, client6, packet.ProtoUDP, 80, 0), xdpVerdictRedirect},
		{"IPv6 UDP to the host's own address", frame(srv6, lbAddr6, packet.ProtoUDP, 80, 0), xdpVerdictPass},
		{"IPv6 UDP from another port", frame(srv6, client6, packet.ProtoUDP, 81, 0), xdpVerdictPass},
		{"ICMPv6 packet too big from a server", frame(srv6, client6, packet.ProtoICMPv6, 0, packet.ICMPv6PacketTooBig), xdpVerdictRedirect},
		{"ICMPv6 echo reply from a server", frame(srv6, client6, packet.ProtoICMPv6, 0, packet.ICMPv6EchoReply), xdpVerdictPass},
		{"ICMPv6 neighbour solicitation from a server", frame(srv6, client6, packet.ProtoICMPv6, 0, 135), xdpVerdictPass},
	} {
		got, err := l.prog.Program().Run(&ebpf.RunOptions{Data: tc.frame})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got != tc.want {
			t.Errorf("%s: verdict %d, want %d", tc.name, got, tc.want)
		}
	}
	st, err := l.prog.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.RedirectedReturn != 9 || st.PassLocal != 2 {
		t.Errorf("RedirectedReturn, PassLocal = %d, %d, want 9, 2", st.RedirectedReturn, st.PassLocal)
	}

	// Exactly the rules given: none left, nothing steered.
	if err := l.prog.SetReturns(nil, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.prog.Returns(); len(got) != 0 {
		t.Errorf("Returns() after SetReturns(nil) = %v, want none", got)
	}
	if got, err := l.prog.Program().Run(&ebpf.RunOptions{Data: frame(srv4, client4, packet.ProtoUDP, 80, 0)}); err != nil || got != xdpVerdictPass {
		t.Errorf("after the rules are removed: verdict %d, %v; want %d", got, err, xdpVerdictPass)
	}
}

// TestReturnRangesWidened: a rule with more port ranges than the map holds
// still steers every one of its ports.
func TestReturnRangesWidened(t *testing.T) {
	l := newLab(t)
	srv := netip.MustParseAddr("198.51.100.11")
	var ports [][2]uint16
	for i := range 12 {
		p := uint16(1000 + 100*i)
		ports = append(ports, [2]uint16{p, p + 9})
	}
	if err := l.prog.SetReturns([]steer.ReturnRule{{Addr: srv, Protos: steer.ProtoUDP, Ports: ports}}, nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range ports {
		for _, port := range []uint16{r[0], r[1]} {
			s := packet.FrameSpec{Src: srv, Dst: netip.MustParseAddr("203.0.113.7"), Proto: packet.ProtoUDP, SrcPort: port, DstPort: 1}
			b := make([]byte, 128)
			n, _ := packet.Encode(b, &s)
			if got, err := l.prog.Program().Run(&ebpf.RunOptions{Data: b[:n]}); err != nil || got != xdpVerdictRedirect {
				t.Errorf("port %d: verdict %d, %v; want %d", port, got, err, xdpVerdictRedirect)
			}
		}
	}
}
