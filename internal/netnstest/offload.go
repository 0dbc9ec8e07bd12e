//go:build linux

package netnstest

import (
	"fmt"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DisableOffloads turns off TX checksum offload, TSO and GSO on ifname in
// namespace n, like `ethtool -K ifname tx off tso off gso off`, without
// needing ethtool(8) (it uses the SIOCETHTOOL ioctl).
//
// A veth peer's kernel otherwise hands frames over with the L4 checksum left
// for "hardware" (CHECKSUM_PARTIAL: the checksum field holds only the
// pseudo-header sum) and as TSO/GSO super-frames; an AF_XDP socket or XDP
// program sees those bytes as they are, which a real wire never carries.
// A frame echoed or NATed back from such input fails the receiver's checksum
// check (Udp InCsumErrors).
func DisableOffloads(tb testing.TB, n *NS, ifname string) {
	tb.Helper()
	err := n.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for _, cmd := range []uint32{unix.ETHTOOL_STXCSUM, unix.ETHTOOL_STSO, unix.ETHTOOL_SGSO} {
			if err := ethtoolSet(fd, ifname, cmd, 0); err != nil {
				return fmt.Errorf("ethtool cmd %#x: %w", cmd, err)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("disable offloads on %s in %s: %v", ifname, n.Name, err)
	}
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqPtr is struct ifreq with ifr_data (a pointer) as its union member.
type ifreqPtr struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

func ethtoolSet(fd int, ifname string, cmd, value uint32) error {
	if len(ifname) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q too long", ifname)
	}
	v := ethtoolValue{cmd: cmd, data: value}
	var ifr ifreqPtr
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(&v)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	return nil
}
