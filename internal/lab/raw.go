//go:build linux

package lab

import (
	"encoding/binary"
	"fmt"
	"net"

	"golang.org/x/sys/unix"

	"github.com/ipfront/ipfront/internal/nsutil"
)

// RawSender transmits hand-made Ethernet frames on one interface of a lab
// namespace through an AF_PACKET socket, byte for byte as given: the hostile
// frames of the tests (bad lengths, bad headers, any MAC) reach the wire
// without the kernel's IP stack checking or fixing them. With GSO, frames
// carry a virtio-net header, so one frame can be a TCP super-frame larger
// than the MTU, as a veth peer with TSO on hands them over.
//
// A RawSender may be used from any goroutine; Close releases its socket.
type RawSender struct {
	fd      int
	ifindex int
	gso     bool
}

// NewRawSender opens a sender on ifname in namespace ns. With gso, every
// frame sent must be TCP over IPv4 (see SendGSO).
func NewRawSender(ns, ifname string, gso bool) (*RawSender, error) {
	s := &RawSender{fd: -1, gso: gso}
	err := nsutil.Do(ns, func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		s.ifindex = ifc.Index
		// Protocol 0: the socket receives nothing, it only sends.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("AF_PACKET socket: %w", err)
		}
		s.fd = fd
		if gso {
			if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_VNET_HDR, 1); err != nil {
				return fmt.Errorf("PACKET_VNET_HDR: %w", err)
			}
		}
		return unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifc.Index})
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("raw sender on %s in %s: %w", ifname, ns, err)
	}
	return s, nil
}

// Send transmits each frame once, in order. Frames shorter than the
// 14-byte Ethernet header are refused by the kernel (EINVAL).
func (s *RawSender) Send(frames ...[]byte) error {
	if s.gso {
		return fmt.Errorf("raw sender: Send on a GSO sender, use SendGSO")
	}
	for i, f := range frames {
		if err := unix.Sendto(s.fd, f, 0, &unix.SockaddrLinklayer{Ifindex: s.ifindex}); err != nil {
			return fmt.Errorf("raw sender: frame %d (%d bytes): %w", i, len(f), err)
		}
	}
	return nil
}

// virtio_net_hdr (include/uapi/linux/virtio_net.h), the 10-byte header
// PACKET_VNET_HDR puts in front of every frame.
const (
	vnetHdrLen        = 10
	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetGSOTCPv4      = 1 // VIRTIO_NET_HDR_GSO_TCPV4
)

// SendGSO transmits frame, an untagged IPv4 TCP packet without IP options,
// as one GSO super-frame to be cut into segments of mss payload bytes by
// whoever segments it. Its TCP checksum is left partial, as a TSO sender
// leaves it. With mss 0 the frame goes as it is, any frame, no GSO.
func (s *RawSender) SendGSO(frame []byte, mss int) error {
	if !s.gso {
		return fmt.Errorf("raw sender: SendGSO on a sender made without gso")
	}
	if mss == 0 {
		hdr := make([]byte, vnetHdrLen, vnetHdrLen+len(frame))
		if err := unix.Sendto(s.fd, append(hdr, frame...), 0, &unix.SockaddrLinklayer{Ifindex: s.ifindex}); err != nil {
			return fmt.Errorf("raw sender: frame (%d bytes): %w", len(frame), err)
		}
		return nil
	}
	const l4 = 14 + 20
	if len(frame) < l4+20 || binary.BigEndian.Uint16(frame[12:14]) != 0x0800 || frame[14] != 0x45 || frame[23] != 6 {
		return fmt.Errorf("raw sender: SendGSO takes an untagged IPv4 TCP frame without options")
	}
	hdr := make([]byte, vnetHdrLen, vnetHdrLen+len(frame))
	hdr[0] = vnetFlagNeedsCsum
	hdr[1] = vnetGSOTCPv4
	doff := int(frame[l4+12]>>4) * 4
	binary.LittleEndian.PutUint16(hdr[2:], uint16(l4+doff)) // hdr_len
	binary.LittleEndian.PutUint16(hdr[4:], uint16(mss))     // gso_size
	binary.LittleEndian.PutUint16(hdr[6:], l4)              // csum_start
	binary.LittleEndian.PutUint16(hdr[8:], 16)              // csum_offset: TCP checksum
	if err := unix.Sendto(s.fd, append(hdr, frame...), 0, &unix.SockaddrLinklayer{Ifindex: s.ifindex}); err != nil {
		return fmt.Errorf("raw sender: GSO frame (%d bytes): %w", len(frame), err)
	}
	return nil
}

// Close closes the socket.
func (s *RawSender) Close() error {
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	return err
}
