package slowpath

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/slowpath/config"
)

const plainSet = `
[[target_set]]
name = "web"
address = "192.0.2.10"
ports = ["80"]
  [[target_set.server]]
  address = "198.51.100.11"
  [target_set.health]
  type = "none"
`

// tableFullAlarms returns the daemon's table-full alarms, active first.
func tableFullAlarms(d *Daemon) []Alarm {
	var out []Alarm
	for _, a := range d.Alarms() {
		if a.Kind == AlarmTableFull {
			out = append(out, a)
		}
	}
	return out
}

// fillShard inserts unproven flow records until sh holds its limit.
func fillShard(tb testing.TB, sh *assoc.Shard) {
	tb.Helper()
	client := netip.MustParseAddr("203.0.113.9").As16()
	for port := 1; sh.Live() < sh.Limit(); port++ {
		if port > 1<<16 {
			tb.Fatalf("shard holds %d of %d after every port", sh.Live(), sh.Limit())
		}
		k := assoc.Key{Addr: client, Port: uint16(port), Proto: packet.ProtoTCP}
		if idx, found := sh.Find(&k, k.Hash()); idx >= 0 && !found {
			sh.Put(idx, &k, assoc.Value{Gen: 1, LastSeen: assoc.Now()})
		}
	}
}

// A worker's table-full alarm is raised at the first sampling interval its
// unproven associations hold their limit (half the shard), its shard holds
// its capacity or it forwarded flows without an association; it stays
// raised while any of these recurs and clears after tableFullHold without
// one. Each edge is logged once, and the API and metrics show it.
func TestDaemonTableFullAlarm(t *testing.T) {
	h := startDaemon(t, dataplaneTOML+plainSet)
	w0, w1 := h.plane.workers[0], h.plane.workers[1]
	limit := uint64(w0.shard.Limit()) / 2
	h.step(t, samplePeriod) // the counters' base

	// One below the unproven limit is no pressure.
	w0.update(func(c *fastpath.Counters) { c.Unproven = limit - 1 })
	h.step(t, samplePeriod)
	if got := tableFullAlarms(h.d); len(got) != 0 {
		t.Fatalf("alarms with %d of %d unproven = %+v, want none", limit-1, limit, got)
	}

	// At the limit: raised, on that worker only.
	w0.update(func(c *fastpath.Counters) { c.Unproven = limit })
	h.step(t, samplePeriod)
	raisedAt := h.clock.Now()
	got := tableFullAlarms(h.d)
	if len(got) != 1 || !got[0].Active || got[0].ID != "table-full-eth1/0-1" || got[0].Worker != "eth1/0" || got[0].Set != "" ||
		!got[0].Raised.Equal(raisedAt) || got[0].Table == nil {
		t.Fatalf("table-full alarms at the unproven limit = %+v, want one active table-full-eth1/0-1 on eth1/0", got)
	}
	if tab := got[0].Table; !slices.Equal(tab.Causes, []string{"unproven_full"}) || tab.Unproven != limit ||
		tab.UnprovenLimit != limit || tab.Capacity != w0.shard.Limit() {
		t.Errorf("alarm table = %+v, want causes [unproven_full], unproven %d of %d, capacity %d", tab, limit, limit, w0.shard.Limit())
	}
	if r := h.d.TableFullRaised(); r["eth1/0"] != 1 || r["eth1/1"] != 0 {
		t.Errorf("TableFullRaised() = %v, want eth1/0: 1", r)
	}
	if r := h.d.AlarmsRaised(); len(r) != 0 {
		t.Errorf("AlarmsRaised() = %v, want no balance alarm", r)
	}
	if n := len(h.logs.lines("table-full alarm raised")); n != 1 {
		t.Errorf("%d raise lines logged, want 1", n)
	}

	// Readers see it: /v1/alarms, /v1/status and the metrics.
	api := New(h.d, config.API{Listen: "127.0.0.1:9180"}, Options{})
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	var body AlarmsReply
	getJSON(t, srv.URL+"/v1/alarms", &body)
	if len(body.Alarms) != 1 || body.Alarms[0].Kind != "table_full" || body.Alarms[0].Worker != "eth1/0" || !body.Alarms[0].Active {
		t.Errorf("GET /v1/alarms = %+v, want the active table_full alarm of eth1/0", body.Alarms)
	}
	var st StatusReply
	getJSON(t, srv.URL+"/v1/status", &st)
	if len(st.Workers) != 2 || !st.Workers[0].TableFull || st.Workers[1].TableFull || st.Workers[0].Unproven != int(limit) {
		t.Errorf("GET /v1/status workers = %+v, want eth1/0 table_full with %d unproven, eth1/1 not", st.Workers, limit)
	}
	if err := testutil.GatherAndCompare(api.Registry(), strings.NewReader(`
# HELP ipfront_table_full_alarm_active 1 while the worker's table-full alarm is raised.
# TYPE ipfront_table_full_alarm_active gauge
ipfront_table_full_alarm_active{worker="eth1/0"} 1
ipfront_table_full_alarm_active{worker="eth1/1"} 0
# HELP ipfront_table_full_alarms_raised_total Table-full alarms raised for the worker since start.
# TYPE ipfront_table_full_alarms_raised_total counter
ipfront_table_full_alarms_raised_total{worker="eth1/0"} 1
ipfront_table_full_alarms_raised_total{worker="eth1/1"} 0
`), "ipfront_table_full_alarm_active", "ipfront_table_full_alarms_raised_total"); err != nil {
		t.Error(err)
	}

	// The unproven share drains but flows went without an association in
	// this interval: still pressure, same alarm, the new cause added.
	w0.update(func(c *fastpath.Counters) { c.Unproven = 10; c.Stateless += 40; c.FloodStateless += 40 })
	h.step(t, samplePeriod)
	got = tableFullAlarms(h.d)
	if len(got) != 1 || !got[0].Active || !slices.Equal(got[0].Table.Causes, []string{"unproven_full", "stateless"}) ||
		got[0].Table.Stateless != 40 || got[0].Table.FloodStateless != 40 || got[0].Table.Unproven != 10 {
		t.Fatalf("alarms after stateless forwarding = %+v (table %+v), want the same alarm with causes unproven_full, stateless and 40 stateless", got, got[0].Table)
	}

	// Quiet intervals: held until tableFullHold has passed since the last
	// pressure, then cleared.
	lastPressure := h.clock.Now()
	for h.clock.Now().Sub(lastPressure) < tableFullHold-samplePeriod {
		h.step(t, samplePeriod)
	}
	if got = tableFullAlarms(h.d); len(got) != 1 || !got[0].Active {
		t.Fatalf("alarms %v after the last pressure = %+v, want still active (hold-down %v)", h.clock.Now().Sub(lastPressure), got, tableFullHold)
	}
	h.step(t, samplePeriod)
	got = tableFullAlarms(h.d)
	if len(got) != 1 || got[0].Active || !got[0].Cleared.Equal(lastPressure.Add(tableFullHold)) || got[0].Table.Stateless != 0 {
		t.Fatalf("alarms %v after the last pressure = %+v, want table-full-eth1/0-1 cleared then, with the quiet reading", tableFullHold, got)
	}
	if n := len(h.logs.lines("table-full alarm cleared")); n != 1 {
		t.Errorf("%d clear lines logged, want 1", n)
	}
	if n := len(h.logs.lines("table-full alarm raised")); n != 1 {
		t.Errorf("%d raise lines logged during the alarm, want 1", n)
	}
	body = AlarmsReply{}
	getJSON(t, srv.URL+"/v1/alarms", &body)
	if len(body.Alarms) != 1 || body.Alarms[0].Active {
		t.Errorf("GET /v1/alarms after the clear = %+v, want the alarm cleared", body.Alarms)
	}

	// The other worker's shard at capacity raises its own alarm; stateless
	// forwarding alone raises a new one on the first worker, with a new id.
	fillShard(t, w1.shard)
	w0.update(func(c *fastpath.Counters) { c.Stateless++ })
	h.step(t, samplePeriod)
	active := map[string]Alarm{}
	for _, a := range tableFullAlarms(h.d) {
		if a.Active {
			active[a.ID] = a
		}
	}
	if a, ok := active["table-full-eth1/1-1"]; !ok || a.Worker != "eth1/1" || !slices.Equal(a.Table.Causes, []string{"shard_full"}) {
		t.Errorf("active alarms = %+v, want table-full-eth1/1-1 for a full shard", active)
	}
	if a, ok := active["table-full-eth1/0-2"]; !ok || !slices.Equal(a.Table.Causes, []string{"stateless"}) || a.Table.Stateless != 1 {
		t.Errorf("active alarms = %+v, want table-full-eth1/0-2 for one stateless flow", active)
	}
	if r := h.d.TableFullRaised(); r["eth1/0"] != 2 || r["eth1/1"] != 1 {
		t.Errorf("TableFullRaised() = %v, want eth1/0: 2, eth1/1: 1", r)
	}
}

// getJSON decodes the body of a GET that must answer 200.
func getJSON(tb testing.TB, url string, v any) {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET %s = %d, want 200", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		tb.Fatalf("GET %s: %v", url, err)
	}
}
