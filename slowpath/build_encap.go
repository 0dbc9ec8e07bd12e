package slowpath

import (
	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/slowpath/config"
)

// buildEncap fills the outer header configuration of an IPIP or GUE set
// (fastpath/forward_encap.go) from its keys. The servers' next hops come
// from the kernel's routes, as for NAT (resolveNATServer).
func buildEncap(ts *fastpath.TargetSet, cs *config.TargetSet) {
	if !cs.Encapsulates() {
		return
	}
	for _, p := range cs.EncapSources {
		if !p.IsValid() {
			continue
		}
		if p.Addr().Is4() {
			ts.Encap.Src4 = fastpath.NewEncapSource(p)
		} else {
			ts.Encap.Src6 = fastpath.NewEncapSource(p)
		}
	}
	ts.Encap.Port = uint16(cs.GUEPort)
	ts.Encap.MTU = uint16(cs.EncapMTU)
}
