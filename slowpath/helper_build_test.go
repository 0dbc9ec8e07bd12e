package slowpath

import (
	"reflect"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/slowpath/config"
)

// TestBuildHelper: a NAT set with helper = "ftp" gets the FTP helper, its
// expectations' lifetime and the return ports of its data connections (port
// 20 and the passive range); a set that does not translate gets none.
func TestBuildHelper(t *testing.T) {
	cs := &config.TargetSet{Helper: config.HelperFTP, ExpectTimeout: 90 * time.Second,
		PassivePorts: []config.PortRange{{First: 30000, Last: 30099}, {First: 40000, Last: 40000}}}
	ts := &fastpath.TargetSet{Forwarding: fastpath.FwdNAT}
	buildHelper(ts, cs)
	want := []fastpath.PortRange{{First: 20, Last: 20}, {First: 30000, Last: 30099}, {First: 40000, Last: 40000}}
	if ts.Helper != fastpath.HelperFTP || ts.ExpectTimeout != 90 || !reflect.DeepEqual(ts.ReturnPorts, want) {
		t.Fatalf("buildHelper = helper %d, timeout %d, return ports %v; want %d, 90, %v", ts.Helper, ts.ExpectTimeout,
			ts.ReturnPorts, fastpath.HelperFTP, want)
	}
	dsr := &fastpath.TargetSet{Forwarding: fastpath.FwdDSR}
	buildHelper(dsr, cs)
	if dsr.Helper != fastpath.HelperNone || dsr.ReturnPorts != nil || dsr.ExpectTimeout != 0 {
		t.Fatalf("buildHelper on a DSR set = %+v, want no helper", dsr)
	}
}
