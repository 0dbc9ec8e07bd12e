package packet_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// encodeSpecs covers every protocol and family Encode supports, tagged and
// untagged, with odd and even payload lengths.
func encodeSpecs(tb testing.TB) map[string]packet.FrameSpec {
	tb.Helper()
	m := map[string]packet.FrameSpec{}
	for _, fam := range []struct {
		name        string
		client, vip netip.Addr
		icmp        uint8
	}{{"v4", client4, vip4, packet.ProtoICMP}, {"v6", client6, vip6, packet.ProtoICMPv6}} {
		for _, vlan := range []uint16{0, 1234} {
			name := fam.name
			if vlan != 0 {
				name += "/vlan"
			}
			s := spec(fam.client, fam.vip, packet.ProtoTCP)
			s.VLAN, s.TTL = vlan, 33
			s.TCPFlags, s.Seq, s.Ack = packet.TCPFlagSYN|packet.TCPFlagACK, 0xdeadbeef, 0x01020304
			s.Payload = []byte("odd-length payload")[:17]
			m[name+"/tcp"] = s

			s = spec(fam.client, fam.vip, packet.ProtoUDP)
			s.VLAN, s.Payload = vlan, bytes.Repeat([]byte{0xff}, 64)
			m[name+"/udp"] = s
			s.Payload = nil
			m[name+"/udp-empty"] = s

			s = spec(fam.client, fam.vip, packet.ProtoSCTP)
			s.VLAN, s.SCTPChunk = vlan, packet.SCTPChunkInit
			s.Payload = []byte{0xde, 0xad, 0xbe, 0xef, 0, 1, 0, 0, 0, 10, 0, 10, 0, 0, 0, 1}
			m[name+"/sctp-init"] = s
			s.SCTPChunk, s.SCTPTag = packet.SCTPChunkData, 0xabcdef01
			s.Payload = []byte{0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 'h', 'i', '!'} // unpadded data
			m[name+"/sctp-data"] = s
			s.SCTPChunk, s.Payload = packet.SCTPChunkShutdownComplete, nil
			m[name+"/sctp-shutdown-complete"] = s

			s = packet.FrameSpec{SrcMAC: clientMAC, DstMAC: lbMAC, VLAN: vlan, Src: fam.client, Dst: fam.vip, Proto: fam.icmp}
			if fam.icmp == packet.ProtoICMP {
				s.ICMPType, s.ICMPCode, s.ICMPRest = packet.ICMPv4DestUnreachable, packet.ICMPv4CodeFragNeeded, 1400
			} else {
				s.ICMPType, s.ICMPRest = packet.ICMPv6PacketTooBig, 1280
			}
			s.Quote = reply(tb, fam.vip, fam.client, packet.ProtoTCP, 8)
			m[name+"/icmp-error"] = s
		}
	}
	return m
}

// TestEncodeGopacket decodes Encode's frames with gopacket, compares the
// fields, and checks every checksum by having gopacket serialize the decoded
// layers again with checksums recomputed: the bytes must be identical.
func TestEncodeGopacket(t *testing.T) {
	for name, s := range encodeSpecs(t) {
		t.Run(name, func(t *testing.T) {
			frame := encode(t, s)
			p := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
			if el := p.ErrorLayer(); el != nil {
				t.Fatalf("gopacket: %v", el.Error())
			}
			eth := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
			if !bytes.Equal(eth.SrcMAC, s.SrcMAC[:]) || !bytes.Equal(eth.DstMAC, s.DstMAC[:]) {
				t.Errorf("MACs %v -> %v", eth.SrcMAC, eth.DstMAC)
			}
			if l := p.Layer(layers.LayerTypeDot1Q); (l != nil) != (s.VLAN != 0) || l != nil && l.(*layers.Dot1Q).VLANIdentifier != s.VLAN {
				t.Errorf("Dot1Q layer %+v, want VLAN %d", l, s.VLAN)
			}
			var network gopacket.NetworkLayer
			if s.Src.Is4() {
				ip := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				network = ip
				if ip.TTL != s.TTL && !(s.TTL == 0 && ip.TTL == 64) || ip.Protocol != layers.IPProtocol(s.Proto) ||
					!ip.SrcIP.Equal(net.IP(s.Src.AsSlice())) || !ip.DstIP.Equal(net.IP(s.Dst.AsSlice())) ||
					int(ip.Length) != len(frame)-int(frameL3(s)) || ip.Flags != layers.IPv4DontFragment {
					t.Errorf("IPv4 %+v", ip)
				}
			} else {
				ip := p.Layer(layers.LayerTypeIPv6).(*layers.IPv6)
				network = ip
				if ip.NextHeader != layers.IPProtocol(s.Proto) || !ip.SrcIP.Equal(net.IP(s.Src.AsSlice())) ||
					!ip.DstIP.Equal(net.IP(s.Dst.AsSlice())) || int(ip.Length) != len(frame)-int(frameL3(s))-40 {
					t.Errorf("IPv6 %+v", ip)
				}
			}
			switch s.Proto {
			case packet.ProtoTCP:
				tcp := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if uint16(tcp.SrcPort) != s.SrcPort || uint16(tcp.DstPort) != s.DstPort || tcp.Seq != s.Seq || tcp.Ack != s.Ack ||
					!tcp.SYN || !tcp.ACK || tcp.FIN || tcp.RST || tcp.DataOffset != 5 || !bytes.Equal(tcp.Payload, s.Payload) {
					t.Errorf("TCP %+v", tcp)
				}
				must(t, tcp.SetNetworkLayerForChecksum(network))
			case packet.ProtoUDP:
				udp := p.Layer(layers.LayerTypeUDP).(*layers.UDP)
				if uint16(udp.SrcPort) != s.SrcPort || uint16(udp.DstPort) != s.DstPort || int(udp.Length) != 8+len(s.Payload) {
					t.Errorf("UDP %+v", udp)
				}
				must(t, udp.SetNetworkLayerForChecksum(network))
			case packet.ProtoSCTP:
				sctp := p.Layer(layers.LayerTypeSCTP).(*layers.SCTP)
				if uint16(sctp.SrcPort) != s.SrcPort || uint16(sctp.DstPort) != s.DstPort || sctp.VerificationTag != s.SCTPTag {
					t.Errorf("SCTP %+v", sctp)
				}
				if want := map[uint8]gopacket.LayerType{
					packet.SCTPChunkInit:             layers.LayerTypeSCTPInit,
					packet.SCTPChunkData:             layers.LayerTypeSCTPData,
					packet.SCTPChunkShutdownComplete: layers.LayerTypeSCTPShutdownComplete,
				}[s.SCTPChunk]; p.Layer(want) == nil {
					t.Errorf("no %v layer in %v", want, p.Layers())
				}
			case packet.ProtoICMP:
				icmp := p.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
				if icmp.TypeCode != layers.CreateICMPv4TypeCode(s.ICMPType, s.ICMPCode) || !bytes.Equal(icmp.Payload, s.Quote) {
					t.Errorf("ICMPv4 %+v", icmp)
				}
			case packet.ProtoICMPv6:
				icmp := p.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6)
				if icmp.TypeCode != layers.CreateICMPv6TypeCode(s.ICMPType, s.ICMPCode) || !bytes.Equal(icmp.Payload[4:], s.Quote) {
					t.Errorf("ICMPv6 %+v", icmp)
				}
				must(t, icmp.SetNetworkLayerForChecksum(network))
			}

			var ls []gopacket.SerializableLayer
			for _, l := range p.Layers() {
				sl, ok := l.(gopacket.SerializableLayer)
				if !ok {
					t.Fatalf("gopacket cannot serialize %v", l.LayerType())
				}
				ls = append(ls, sl)
			}
			buf := gopacket.NewSerializeBuffer()
			must(t, gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...))
			want := frame
			if len(want) < 60 {
				// gopacket pads to the Ethernet minimum; Encode leaves that
				// to the NIC.
				want = withPadding(frame, 60-len(frame))
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("gopacket re-serialized with checksums\n%x\nEncode wrote\n%x", buf.Bytes(), frame)
			}
		})
	}
}

func frameL3(s packet.FrameSpec) int {
	if s.VLAN != 0 {
		return packet.EthernetHeaderLen + packet.VLANTagLen
	}
	return packet.EthernetHeaderLen
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// TestEncodeOverwrites: Encode writes every byte of the frame, so a dirty,
// recycled buffer gives the same frame as a fresh one.
func TestEncodeOverwrites(t *testing.T) {
	for name, s := range encodeSpecs(t) {
		fresh := encode(t, s)
		dirty := bytes.Repeat([]byte{0xa5}, 4096)
		n, err := packet.Encode(dirty, &s)
		if err != nil || !bytes.Equal(dirty[:n], fresh) {
			t.Errorf("%s: Encode(dirty) = %x, %v; want %x", name, dirty[:n], err, fresh)
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	ok := spec(client4, vip4, packet.ProtoUDP)
	big := make([]byte, 65536)
	for _, tc := range []struct {
		desc string
		mut  func(*packet.FrameSpec)
		buf  int
		want error
	}{
		{"mixed families", func(s *packet.FrameSpec) { s.Dst = vip6 }, 2048, packet.ErrInvalidSpec},
		{"no source", func(s *packet.FrameSpec) { s.Src = netip.Addr{} }, 2048, packet.ErrInvalidSpec},
		{"IPv4-mapped IPv6 with IPv4", func(s *packet.FrameSpec) { s.Src = netip.AddrFrom16(client4.As16()) }, 2048, packet.ErrInvalidSpec},
		{"ICMPv6 over IPv4", func(s *packet.FrameSpec) { s.Proto = packet.ProtoICMPv6 }, 2048, packet.ErrInvalidSpec},
		{"ICMP over IPv6", func(s *packet.FrameSpec) { s.Src, s.Dst, s.Proto = client6, vip6, packet.ProtoICMP }, 2048, packet.ErrInvalidSpec},
		{"GRE", func(s *packet.FrameSpec) { s.Proto = 47 }, 2048, packet.ErrInvalidSpec},
		{"quote on UDP", func(s *packet.FrameSpec) { s.Quote = []byte{1} }, 2048, packet.ErrInvalidSpec},
		{"VLAN 4096", func(s *packet.FrameSpec) { s.VLAN = 4096 }, 2048, packet.ErrInvalidSpec},
		{"buffer one byte short", func(s *packet.FrameSpec) {}, 14 + 28 - 1, packet.ErrShortBuffer},
		{"nil buffer", func(s *packet.FrameSpec) {}, 0, packet.ErrShortBuffer},
		{"IPv4 packet of 65536", func(s *packet.FrameSpec) { s.Payload = big[:65536-28] }, 70000, packet.ErrTooLong},
		{"IPv6 packet of 65536", func(s *packet.FrameSpec) { s.Src, s.Dst, s.Payload = client6, vip6, big[:65536-48] }, 70000, packet.ErrTooLong},
		{"huge SCTP padding", func(s *packet.FrameSpec) { s.Proto, s.Payload = packet.ProtoSCTP, big[:65535-36] }, 70000, packet.ErrTooLong},
		{"IPv4 packet of 65535", func(s *packet.FrameSpec) { s.Payload = big[:65535-28] }, 70000, nil},
		{"IPv6 packet of 65535", func(s *packet.FrameSpec) { s.Src, s.Dst, s.Payload = client6, vip6, big[:65535-48] }, 70000, nil},
		{"exact buffer", func(s *packet.FrameSpec) {}, 14 + 28, nil},
	} {
		s := ok
		tc.mut(&s)
		n, err := packet.Encode(make([]byte, tc.buf), &s)
		if !errors.Is(err, tc.want) || (err != nil) != (n == 0) {
			t.Errorf("%s: Encode() = %d, %v; want %v", tc.desc, n, err, tc.want)
		}
		if err != nil && err.Error() == "" {
			t.Errorf("%s: empty error message", tc.desc)
		}
	}
}
