//go:build linux

package nsutil

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Offload is a NIC offload feature: its ethtool -K name and the legacy
// ethtool ioctl command that sets it.
type Offload struct {
	Name string
	Cmd  uint32
}

// The offloads that make a veth pair hand its peer frames a real wire never
// carries: CHECKSUM_PARTIAL frames (the L4 checksum field holds only the
// pseudo-header sum, left "for hardware") and TSO/GSO/GRO super-frames of up
// to 64 KB, which an XDP program or AF_XDP socket sees as they are.
var (
	TXChecksum = Offload{"tx", unix.ETHTOOL_STXCSUM}
	TSO        = Offload{"tso", unix.ETHTOOL_STSO}
	GSO        = Offload{"gso", unix.ETHTOOL_SGSO}
	GRO        = Offload{"gro", unix.ETHTOOL_SGRO}
)

// DisableOffloads turns features off on ifname in namespace ns through the
// SIOCETHTOOL ioctl, like ethtool -K ifname <name> off ... but without
// needing ethtool(8).
func DisableOffloads(ns, ifname string, features ...Offload) error {
	if len(ifname) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q too long", ifname)
	}
	return Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for _, f := range features {
			if _, err := Ethtool(fd, ifname, f.Cmd, 0); err != nil {
				return fmt.Errorf("%s off on %s in %s: %w", f.Name, ifname, ns, err)
			}
		}
		return nil
	})
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with ifr_data (a pointer) as its union member.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// Ethtool issues one SIOCETHTOOL ioctl carrying a struct ethtool_value
// {cmd, value} for ifname on socket fd (which must be in ifname's
// namespace) and returns the value the kernel left in it: the feature's state
// for a get command such as ETHTOOL_GTXCSUM.
func Ethtool(fd int, ifname string, cmd, value uint32) (uint32, error) {
	if len(ifname) >= unix.IFNAMSIZ {
		return 0, fmt.Errorf("interface name %q too long", ifname)
	}
	v := ethtoolValue{cmd: cmd, data: value}
	var ifr ifreqData
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(&v)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return 0, e
	}
	return v.data, nil
}
