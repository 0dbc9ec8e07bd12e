//go:build linux

package lab

import (
	"fmt"
	"os/exec"
	"unsafe"

	"golang.org/x/sys/unix"
)

// offloadFeatures are what DisableOffloads turns off, as ethtool -K names
// them, with the legacy ethtool ioctl command that does the same.
var offloadFeatures = []struct {
	name string
	cmd  uint32
}{
	{"tx", unix.ETHTOOL_STXCSUM}, // checksums filled in by the sender, not left "for hardware"
	{"tso", unix.ETHTOOL_STSO},
	{"gso", unix.ETHTOOL_SGSO},
	{"gro", unix.ETHTOOL_SGRO},
}

// DisableOffloads makes ifname in namespace ns behave like a wire: TX
// checksum offload, TSO, GSO and GRO off. veth otherwise hands its peer
// CHECKSUM_PARTIAL frames (the L4 checksum holds only the pseudo-header sum)
// of up to 64 KB, which an XDP program or AF_XDP socket sees as they are.
//
// It runs ethtool -K when ethtool(8) is installed, else the same settings
// through the SIOCETHTOOL ioctl (as internal/netnstest.DisableOffloads does
// for tests).
func DisableOffloads(ns, ifname string) error {
	if _, err := exec.LookPath("ethtool"); err == nil {
		args := []string{"netns", "exec", ns, "ethtool", "-K", ifname}
		for _, f := range offloadFeatures {
			args = append(args, f.name, "off")
		}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ethtool -K %s in %s: %v: %s", ifname, ns, err, out)
		}
		return nil
	}
	return disableOffloadsIoctl(ns, ifname)
}

func disableOffloadsIoctl(ns, ifname string) error {
	if len(ifname) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q too long", ifname)
	}
	return Do(ns, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		for _, f := range offloadFeatures {
			if err := ethtoolSet(fd, ifname, f.cmd, 0); err != nil {
				return fmt.Errorf("%s off on %s in %s: %w", f.name, ifname, ns, err)
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

func ethtoolSet(fd int, ifname string, cmd, value uint32) error {
	v := ethtoolValue{cmd: cmd, data: value}
	var ifr ifreqData
	copy(ifr.name[:], ifname)
	ifr.data = unsafe.Pointer(&v)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return e
	}
	return nil
}
