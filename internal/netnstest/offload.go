//go:build linux

package netnstest

import (
	"testing"

	"github.com/ipfront/ipfront/internal/nsutil"
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
	if err := nsutil.DisableOffloads(n.Name, ifname, nsutil.TXChecksum, nsutil.TSO, nsutil.GSO); err != nil {
		tb.Fatalf("disable offloads on %s in %s: %v", ifname, n.Name, err)
	}
}
