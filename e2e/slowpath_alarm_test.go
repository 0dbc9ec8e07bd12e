//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath/maglev"
	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/internal/lab"
	"github.com/ipfront/ipfront/slowpath"
	"github.com/ipfront/ipfront/slowpath/config"
)

// TestBalanceAlarm makes one server's traffic heavy (one connection sending
// 4 MB/s next to 30 light ones) under method hash with equal weights and a
// short balance window. The alarm must be raised in the log (with its id),
// in "ipfront ctl alarms" (table and JSON) and in /metrics; while it is
// active new connections must avoid the heavy server; once the heavy sender
// stops and only the light, even traffic remains, the alarm must clear in
// all three places and the server get its weight back.
func TestBalanceAlarm(t *testing.T) {
	servers := []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}
	e := startSP(t, 3, spConfig{
		Servers: servers,
		// Short-lived test connections must leave the association counts
		// soon after they close, or the association shares they skew keep
		// the alarm from clearing; a small table is swept through quickly.
		DeleteAge: "2s",
		MaxAssoc:  1024,
		Balance: `
			enabled = true
			threshold = 0.2
			clear = 0.1
			window = "2s"
			sustain = "1s"`,
	})
	alarmID := "balance-" + setName + "-1"

	// Light traffic, even enough to stay below the clear level on its own:
	// each server's share of connections (and so of packets) within 0.1 of
	// a third. Hashing 30 flows is rarely that even (one server's count
	// has a standard deviation of 2.6), so the source ports are ones the
	// test's hash seed spreads 8 to 12 on each.
	const light = 30
	lightPorts := e.evenPorts(light, 8, 12)
	hold := e.startHoldFrom(lightPorts, light, 100*time.Millisecond, 64)
	for _, s := range servers {
		if n := hold.ready.Servers[s.Role]; n < 8 || n > 12 {
			t.Fatalf("light connections by server %v: the test needs 8 to 12 of %d on each (has the flow hash changed? pick other ports)",
				hold.ready.Servers, light)
		}
	}

	mark := e.log.mark()
	load := startStream[lab.LoadReport](e, "load", "--rate", "4000000", "--sport", strconv.Itoa(e.sports(1)))
	heavy := load.ready.Server
	if heavy == "" {
		t.Fatalf("iplab load: no server: %+v", load.ready)
	}
	t.Logf("heavy sender on %s", heavy)

	ctx, cancel := context.WithTimeout(e.ctx, 15*time.Second)
	defer cancel()
	raised, _ := e.waitLine(ctx, mark, "balance alarm raised", func(l logLine) bool {
		return strings.HasPrefix(l.Msg(), "balance alarm raised")
	})
	raisedAt := time.Now()
	if raised.Level() != "warn" || raised.Str("alarm") != alarmID || raised.Str("target_set") != setName {
		t.Errorf("alarm log line %s: want level warn, alarm %s, target_set %s", raised.Text, alarmID, setName)
	}
	if dev, err := strconv.ParseFloat(raised.Str("deviation"), 64); err != nil || dev <= 0.2 {
		t.Errorf("alarm log line deviation %q, want above the threshold 0.2", raised.Str("deviation"))
	}
	for _, s := range servers {
		if !strings.Contains(raised.Str("server_"+s.Role), "packets=") {
			t.Errorf("alarm log line lacks server_%s with its shares: %s", s.Role, raised.Text)
		}
	}

	// The API steers new associations away from the heavy server.
	e.waitFor(3*time.Second, heavy+" without new associations", func() (bool, string) {
		st := e.serverStates()
		ok := st[heavy].EffectiveWeight == 0
		for _, s := range servers {
			if s.Role != heavy && st[s.Role].EffectiveWeight != 1 {
				ok = false
			}
		}
		return ok, fmt.Sprintf("%+v", st)
	})
	r := e.tcpBatch(30)
	requireAllOK(t, "new connections during the alarm", r)
	if r.Servers[heavy] != 0 {
		t.Errorf("%d of 30 new connections went to the heavy server %s during the alarm: %v", r.Servers[heavy], heavy, r.Servers)
	}

	// Visible in ctl (both forms) and /metrics while active.
	var alarms apiAlarms
	e.ctlJSON(&alarms, "alarms")
	if len(alarms.Alarms) != 1 || alarms.Alarms[0].ID != alarmID || !alarms.Alarms[0].Active || alarms.Alarms[0].Set != setName {
		t.Fatalf("ipfront ctl -o json alarms = %+v, want one active alarm %s of set %s (still active: the checks above need it)", alarms, alarmID, setName)
	}
	a := alarms.Alarms[0]
	if a.Deviation <= 0.2 || a.Raised.IsZero() || !a.Cleared.IsZero() || len(a.Servers) != len(servers) {
		t.Errorf("active alarm %+v: want deviation > 0.2, raised, not cleared, %d servers", a, len(servers))
	}
	for _, s := range a.Servers {
		if s.Name == heavy && s.PacketShare < 1.0/3+0.2 {
			t.Errorf("active alarm: heavy %s packet share %.3f, want above %.3f", heavy, s.PacketShare, 1.0/3+0.2)
		}
	}
	out := e.ctlOK("alarms").stdout
	row := findTable(t, out, "ID", "KIND", "SET", "WORKER", "STATE", "RAISED", "CLEARED", "DEVIATION").row(t, "ID", alarmID)
	if row["SET"] != setName || row["STATE"] != "active" || row["CLEARED"] != "-" || !strings.HasSuffix(row["DEVIATION"], "%") {
		t.Errorf("ipfront ctl alarms: row %v, want set %s, active, not cleared", row, setName)
	}
	shares := findTable(t, out, "ALARM", "SERVER", "ADDRESS", "WEIGHT-SHARE", "PACKET-SHARE", "ASSOC-SHARE")
	for _, s := range servers {
		sr := shares.row(t, "SERVER", s.Role)
		if sr["ALARM"] != alarmID || sr["ADDRESS"] != e.host(s.Role).IPv4.String() || sr["WEIGHT-SHARE"] != "33.3%" {
			t.Errorf("ipfront ctl alarms: share row %v, want alarm %s, address %s, weight share 33.3%%", sr, alarmID, e.host(s.Role).IPv4)
		}
	}
	ms := e.metrics()
	set := map[string]string{"set": setName}
	if v := metricValue(t, ms, "ipfront_balance_alarm_active", set); v != 1 {
		t.Errorf("ipfront_balance_alarm_active%v = %v while the alarm is active, want 1", set, v)
	}
	if v := metricValue(t, ms, "ipfront_alarms_raised_total", set); v != 1 {
		t.Errorf("ipfront_alarms_raised_total%v = %v, want 1", set, v)
	}

	// The heavy sender stops; the light traffic goes on, even.
	lr := load.stop(e)
	if lr.Kind != "" || lr.BytesVerified != lr.BytesSent || lr.BytesSent < 1<<20 {
		t.Errorf("iplab load: %d of %d bytes verified, failure %q (%s); want every byte of at least 1 MiB", lr.BytesVerified, lr.BytesSent, lr.Kind, lr.Error)
	}
	stopped := time.Now()
	ctx, cancel = context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()
	cleared, _ := e.waitLine(ctx, mark, "balance alarm cleared", msgIs("balance alarm cleared"))
	t.Logf("alarm raised %v after the heavy sender started, cleared %v after it stopped",
		raisedAt.Sub(load.ready.Started).Round(time.Millisecond), time.Since(stopped).Round(time.Millisecond))
	if cleared.Str("alarm") != alarmID || cleared.Str("target_set") != setName {
		t.Errorf("clear log line %s: want alarm %s, target_set %s", cleared.Text, alarmID, setName)
	}
	if dev, err := strconv.ParseFloat(cleared.Str("deviation"), 64); err != nil || dev >= 0.1 {
		t.Errorf("clear log line deviation %q, want below the clear level 0.1", cleared.Str("deviation"))
	}

	ms = e.metrics()
	if v := metricValue(t, ms, "ipfront_balance_alarm_active", set); v != 0 {
		t.Errorf("ipfront_balance_alarm_active%v = %v after the clear, want 0", set, v)
	}
	if v := metricValue(t, ms, "ipfront_alarms_raised_total", set); v != 1 {
		t.Errorf("ipfront_alarms_raised_total%v = %v after the clear, want 1", set, v)
	}
	alarms = apiAlarms{}
	e.ctlJSON(&alarms, "alarms")
	if len(alarms.Alarms) != 1 || alarms.Alarms[0].ID != alarmID || alarms.Alarms[0].Active || alarms.Alarms[0].Cleared.Before(alarms.Alarms[0].Raised) {
		t.Errorf("ipfront ctl -o json alarms after the clear = %+v, want %s cleared after it was raised", alarms, alarmID)
	}
	row = findTable(t, e.ctlOK("alarms").stdout, "ID", "KIND", "SET", "WORKER", "STATE", "RAISED", "CLEARED", "DEVIATION").row(t, "ID", alarmID)
	if row["STATE"] != "cleared" || row["CLEARED"] == "-" {
		t.Errorf("ipfront ctl alarms after the clear: row %v, want STATE cleared with a time", row)
	}
	e.waitFor(3*time.Second, heavy+" weighted again", func() (bool, string) {
		st := e.serverStates()[heavy]
		return st.EffectiveWeight == 1, fmt.Sprintf("%+v", st)
	})

	e.waitEchoed(hold, time.Now(), nil, "after the alarm")
	if final := hold.stop(e); final.Failed != 0 {
		t.Errorf("%d light connections failed: %v", final.Failed, failedConns(final))
	}
}

// evenPorts reserves (like sports) n consecutive client source ports whose
// TCP flows from the lab's client the running
// configuration's flow hash spreads lo to hi on each server: it builds the
// tables from the configuration file as the daemon does, with the same
// seed (spHashSeed).
func (e *spEnv) evenPorts(n, lo, hi int) int {
	e.t.Helper()
	spec, err := config.Load(e.cfgPath)
	if err != nil {
		e.t.Fatal(err)
	}
	resolved := func(int, netip.Addr) ([6]byte, bool) { return [6]byte{2, 0, 0, 0, 0, 1}, true }
	tab, _, err := slowpath.Build(spec, slowpath.NewIdentity(), slowpath.Inputs{Interfaces: 1, MACs: resolved, Generation: 1,
		Seed: maglev.NewSeed(spec.Dataplane.HashSeed)})
	if err != nil {
		e.t.Fatal(err)
	}
	ts := tab.Sets()[0]
	client := e.lab.Client().IPv4.As16()
	e.sportMu.Lock()
	defer e.sportMu.Unlock()
	for start := e.sport; start+n <= 32768; start++ {
		per := map[uint8]int{}
		for p := start; p < start+n; p++ {
			per[ts.Maglev.Lookup(ts.Seed.Hash(client, uint16(p), packet.ProtoTCP))]++
		}
		even := len(per) == len(spec.TargetSets[0].Servers)
		for _, c := range per {
			even = even && c >= lo && c <= hi
		}
		if even {
			e.sport = start + n
			return start
		}
	}
	e.t.Fatalf("no %d consecutive free ports spread %d to %d on each server", n, lo, hi)
	return 0
}
