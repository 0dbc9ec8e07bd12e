//go:build linux

package netnstest

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
)

// Link returns the interface name in namespace n (index, MAC, MTU).
func (n *NS) Link(tb testing.TB, name string) net.Interface {
	tb.Helper()
	var ifc *net.Interface
	err := n.Do(func() error {
		var err error
		ifc, err = net.InterfaceByName(name)
		return err
	})
	if err != nil {
		tb.Fatalf("interface %s in %s: %v", name, n.Name, err)
	}
	return *ifc
}

// MAC is a 6-byte Ethernet address.
type MAC = [6]byte

// MACOf converts a net.HardwareAddr to MAC.
func MACOf(hw net.HardwareAddr) MAC {
	var m MAC
	copy(m[:], hw)
	return m
}

// Frame describes an Ethernet frame carrying UDP over IPv4 or IPv6, for
// tests. VLANs are 802.1Q tag TCIs pushed outermost first.
type Frame struct {
	DstMAC, SrcMAC MAC
	VLANs          []uint16
	Src, Dst       netip.AddrPort // both IPv4 or both IPv6
	Payload        []byte
}

// Encode builds the frame with valid IPv4 header and UDP checksums.
func (f Frame) Encode() []byte {
	b := make([]byte, 0, 14+4*len(f.VLANs)+40+8+len(f.Payload))
	b = append(b, f.DstMAC[:]...)
	b = append(b, f.SrcMAC[:]...)
	for _, tci := range f.VLANs {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, tci)
	}
	udpLen := 8 + len(f.Payload)
	src, dst := f.Src.Addr(), f.Dst.Addr()
	var pseudo []byte
	if src.Is4() {
		b = binary.BigEndian.AppendUint16(b, 0x0800)
		ip := len(b)
		b = append(b, 0x45, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(20+udpLen))
		b = append(b, 0, 1, 0x40, 0, 64, 17, 0, 0) // id 1, DF, ttl 64, UDP, csum 0
		s4, d4 := src.As4(), dst.As4()
		b = append(b, s4[:]...)
		b = append(b, d4[:]...)
		binary.BigEndian.PutUint16(b[ip+10:], ^fold(sum(b[ip:ip+20], 0)))
		pseudo = append(append(append([]byte{}, s4[:]...), d4[:]...), 0, 17)
	} else {
		b = binary.BigEndian.AppendUint16(b, 0x86dd)
		b = append(b, 0x60, 0, 0, 0)
		b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
		b = append(b, 17, 64)
		s16, d16 := src.As16(), dst.As16()
		b = append(b, s16[:]...)
		b = append(b, d16[:]...)
		pseudo = append(append(append([]byte{}, s16[:]...), d16[:]...), 0, 17)
	}
	pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(udpLen))
	udp := len(b)
	b = binary.BigEndian.AppendUint16(b, f.Src.Port())
	b = binary.BigEndian.AppendUint16(b, f.Dst.Port())
	b = binary.BigEndian.AppendUint16(b, uint16(udpLen))
	b = append(b, 0, 0)
	b = append(b, f.Payload...)
	c := ^fold(sum(b[udp:], sum(pseudo, 0)))
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[udp+6:], c)
	return b
}

func sum(b []byte, acc uint32) uint32 {
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	return acc
}

func fold(acc uint32) uint16 {
	for acc > 0xffff {
		acc = acc>>16 + acc&0xffff
	}
	return uint16(acc)
}
