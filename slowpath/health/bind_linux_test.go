package health

import (
	"strings"
	"testing"
)

func TestDevice(t *testing.T) {
	m, r := newMonitor(t)
	srv := listenTCP(t, "127.0.0.1:0")
	ap := srv.addrPort()
	c := fast(TypeTCP, ap.Port())
	c.Rise, c.Fall = 1, 1
	m.Update([]Target{
		{Set: "lo", Addr: ap.Addr(), Check: c, Device: "lo"},
		{Set: "missing", Addr: ap.Addr(), Check: c, Device: "nosuchdev0"},
	})
	seen := map[string]Event{}
	for len(seen) < 2 {
		e := r.next(t)
		seen[e.Target.Set] = e
	}
	if e := seen["missing"]; e.Up || !strings.Contains(e.Reason, "no such device") {
		t.Errorf("probe through a missing device: %+v, want down with no such device", e)
	}
	e := seen["lo"]
	if strings.Contains(e.Reason, "operation not permitted") {
		t.Skipf("SO_BINDTODEVICE not permitted: %s", e.Reason)
	}
	if !e.Up {
		t.Errorf("probe through lo: %+v, want up", e)
	}
}
