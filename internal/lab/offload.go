//go:build linux

package lab

import (
	"fmt"
	"os/exec"

	"github.com/ipfront/ipfront/internal/nsutil"
)

// offloadFeatures are what DisableOffloads turns off.
var offloadFeatures = []nsutil.Offload{
	nsutil.TXChecksum, // checksums filled in by the sender, not left "for hardware"
	nsutil.TSO,
	nsutil.GSO,
	nsutil.GRO,
}

// DisableOffloads makes ifname in namespace ns behave like a wire: TX
// checksum offload, TSO, GSO and GRO off. veth otherwise hands its peer
// CHECKSUM_PARTIAL frames (the L4 checksum holds only the pseudo-header sum)
// of up to 64 KB, which an XDP program or AF_XDP socket sees as they are.
//
// It runs ethtool -K when ethtool(8) is installed, else the same settings
// through the SIOCETHTOOL ioctl (nsutil.DisableOffloads).
func DisableOffloads(ns, ifname string) error {
	if _, err := exec.LookPath("ethtool"); err == nil {
		args := []string{"netns", "exec", ns, "ethtool", "-K", ifname}
		for _, f := range offloadFeatures {
			args = append(args, f.Name, "off")
		}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ethtool -K %s in %s: %v: %s", ifname, ns, err, out)
		}
		return nil
	}
	return disableOffloadsIoctl(ns, ifname)
}

func disableOffloadsIoctl(ns, ifname string) error {
	return nsutil.DisableOffloads(ns, ifname, offloadFeatures...)
}
