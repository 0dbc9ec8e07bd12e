//go:build linux

package e2e

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// TestReplacedServerCountsFromZero removes a server that carried traffic
// and adds another in its place: the newcomer has received nothing, so
// /v1/servers, /v1/counters and /metrics must say 0 packets for it.
func TestReplacedServerCountsFromZero(t *testing.T) {
	e := startSP(t, 4, spConfig{Servers: []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}, Balance: balanceOff})
	requireAllOK(t, "connections", e.tcpBatch(300))
	if st := e.serverStates()["s2"]; st.Packets == 0 {
		t.Fatalf("s2 got no packets: %+v", st)
	}
	e.writeConfig(spConfig{Servers: []spServer{{"s1", 1}, {"s3", 1}}, Balance: balanceOff})
	e.reload("ctl")
	e.writeConfig(spConfig{Servers: []spServer{{"s1", 1}, {"s3", 1}, {"s4", 1}}, Balance: balanceOff})
	e.reload("ctl")

	if st := e.serverStates()["s4"]; st.Packets != 0 || st.Bytes != 0 || st.Share != 0 {
		t.Errorf("/v1/servers s4 (added, no traffic yet): packets %d, bytes %d, share %.3f; want 0", st.Packets, st.Bytes, st.Share)
	}
	var c apiCounters
	e.api("/v1/counters", &c)
	for _, s := range c.Servers {
		if s.Name == "s4" && (s.Packets != 0 || s.Bytes != 0) {
			t.Errorf("/v1/counters s4 (added, no traffic yet): packets %d, bytes %d; want 0", s.Packets, s.Bytes)
		}
	}
	labels := map[string]string{"set": setName, "server": "s4", "address": e.host("s4").IPv4.String()}
	if v := metricValue(t, e.metrics(), "ipfront_server_packets_total", labels); v != 0 {
		t.Errorf("ipfront_server_packets_total%v = %v, want 0", labels, v)
	}
}

// TestAlarmOfRemovedSetClears raises a balance alarm, then reloads a
// configuration in which the set has another name: no alarm may stay active
// for a set that no longer exists, in the API or in /metrics.
func TestAlarmOfRemovedSetClears(t *testing.T) {
	cfg := spConfig{Servers: []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}, DeleteAge: "2s", MaxAssoc: 1024, Balance: `
		threshold = 0.2
		clear = 0.1
		window = "2s"
		sustain = "1s"`}
	e := startSP(t, 3, cfg)
	mark := e.log.mark()
	load := startStream[lab.LoadReport](e, "load", "--rate", "4000000", "--sport", strconv.Itoa(e.sports(1)))
	ctx, cancel := context.WithTimeout(e.ctx, 15*time.Second)
	defer cancel()
	e.waitLine(ctx, mark, "balance alarm raised", func(l logLine) bool { return strings.HasPrefix(l.Msg(), "balance alarm raised") })

	cfg.SetName = "renamed"
	e.writeConfig(cfg)
	e.reload("ctl")
	load.stop(e)

	e.waitFor(5*time.Second, "no active alarm of a removed set", func() (bool, string) {
		var a apiAlarms
		e.api("/v1/alarms", &a)
		for _, al := range a.Alarms {
			if al.Active && al.Set != cfg.SetName {
				return false, fmt.Sprintf("alarm %s of set %q (not configured) is active: %+v", al.ID, al.Set, al)
			}
		}
		for _, m := range findMetrics(e.metrics(), "ipfront_balance_alarm_active", map[string]string{"set": setName}) {
			if m.value != 0 {
				return false, fmt.Sprintf("ipfront_balance_alarm_active{set=%q} = %v", setName, m.value)
			}
		}
		return true, ""
	})
}
