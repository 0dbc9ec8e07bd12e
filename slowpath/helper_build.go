package slowpath

import (
	"time"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/slowpath/config"
)

// buildHelper fills in the application helper of a NAT set's tables from
// its configuration: which helper punts the set's control segments, the
// source ports of its servers' data connections that the steering program
// must hand to the workers (FTP: 20 for active mode, and the passive range),
// and how long an expectation lives. Build calls it once ts.Forwarding is
// set: a helper needs NAT, so a set that does not translate gets none.
func buildHelper(ts *fastpath.TargetSet, cs *config.TargetSet) {
	if cs.Helper != config.HelperFTP || ts.Forwarding != fastpath.FwdNAT {
		return
	}
	ts.Helper = fastpath.HelperFTP
	ts.ExpectTimeout = uint32(max(cs.ExpectTimeout/time.Second, 1))
	ts.ReturnPorts = []fastpath.PortRange{{First: ftpDataPort, Last: ftpDataPort}}
	for _, r := range cs.PassivePorts {
		ts.ReturnPorts = append(ts.ReturnPorts, fastpath.PortRange{First: r.First, Last: r.Last})
	}
}
