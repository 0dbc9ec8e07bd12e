//go:build linux

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHealthFailover stops one server's process under TCP health checks
// (every 200 ms, 100 ms timeout, fall 2, rise 2). From interval * fall + 1 s
// after the kill, 100 new connections must all succeed and none reach the
// stopped server, which the API, ctl, /metrics and the log show down; the
// other servers' long-lived connections must not notice. Restarted, the
// server must be up again within interval * rise + 1 s and take its share
// of new connections.
func TestHealthFailover(t *testing.T) {
	const (
		interval = 200 * time.Millisecond
		rise     = 2
		fall     = 2
		victim   = "s2"
	)
	servers := []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}
	e := startSP(t, 3, spConfig{Servers: servers, Balance: balanceOff, Health: fmt.Sprintf(`
		type = "tcp"
		interval = %q
		timeout = "100ms"
		rise = %d
		fall = %d`, interval, rise, fall)})
	hold := e.startHold(12, 50*time.Millisecond, 64)
	onVictim := connsOn(hold.ready, victim)
	if len(onVictim) == 0 || len(onVictim) == len(hold.ready.Connections) {
		t.Fatalf("long-lived connections by server %v: the test needs some on %s and some elsewhere", hold.ready.Servers, victim)
	}

	mark := e.log.mark()
	e.stopServer(victim)
	killed := time.Now()
	within := interval*fall + time.Second
	// The spec is about time: measure when the API says down, then let
	// the whole allowance pass before checking new connections.
	e.waitFor(within, victim+" down", func() (bool, string) {
		st := e.serverStates()[victim]
		return !st.Healthy, fmt.Sprintf("%+v", st)
	})
	t.Logf("%s down %v after its process exited", victim, time.Since(killed).Round(time.Millisecond))
	time.Sleep(time.Until(killed.Add(within)))

	r := e.tcpBatch(100)
	requireAllOK(t, fmt.Sprintf("new connections %v after %s stopped", within, victim), r)
	if r.Servers[victim] != 0 {
		t.Errorf("%d new connections reached the stopped server %s: %v", r.Servers[victim], victim, r.Servers)
	}
	st := e.serverStates()
	if s := st[victim]; s.Healthy || s.EffectiveWeight != 0 {
		t.Errorf("/v1/servers %s = %+v, want unhealthy with effective weight 0", victim, s)
	}
	for _, s := range servers {
		if s.Role != victim && !st[s.Role].Healthy {
			t.Errorf("/v1/servers %s = %+v, want healthy", s.Role, st[s.Role])
		}
	}
	down := e.log.since(mark, func(l logLine) bool {
		return strings.HasPrefix(l.Msg(), "server down") && l.Str("server") == victim
	})
	if len(down) != 1 || down[0].Level() != "warn" || down[0].Str("target_set") != setName {
		t.Errorf("ipfront logged %d \"server down\" warnings for %s, want 1: %v", len(down), victim, down)
	}
	out := e.ctlOK("servers")
	tb := findTable(t, out.stdout, "SET", "SERVER", "ADDRESS", "WEIGHT", "EFF", "STATE", "ASSOC", "PPS", "BPS", "PKTS", "BYTES", "SHARE")
	for _, s := range servers {
		want := "up"
		if s.Role == victim {
			want = "down"
		}
		if got := tb.row(t, "SERVER", s.Role)["STATE"]; got != want {
			t.Errorf("ipfront ctl servers: %s STATE = %s, want %s", s.Role, got, want)
		}
	}
	ms := e.metrics()
	for _, s := range servers {
		want := 1.0
		if s.Role == victim {
			want = 0
		}
		labels := map[string]string{"set": setName, "server": s.Role, "address": e.host(s.Role).IPv4.String()}
		if got := metricValue(t, ms, "ipfront_server_up", labels); got != want {
			t.Errorf("ipfront_server_up%v = %v, want %v", labels, got, want)
		}
	}
	// The others' long-lived connections go on.
	e.waitEchoed(hold, time.Now(), onVictim, "while "+victim+" is down")

	mark = e.log.mark()
	restarted := time.Now()
	e.startServer(victim)
	e.waitFor(interval*rise+time.Second, victim+" up again", func() (bool, string) {
		st := e.serverStates()[victim]
		return st.Healthy && st.EffectiveWeight == 1, fmt.Sprintf("%+v", st)
	})
	t.Logf("%s up %v after its restart", victim, time.Since(restarted).Round(time.Millisecond))
	if up := e.log.since(mark, func(l logLine) bool {
		return strings.HasPrefix(l.Msg(), "server up") && l.Str("server") == victim
	}); len(up) != 1 {
		t.Errorf("ipfront logged %d \"server up\" lines for %s, want 1: %v", len(up), victim, up)
	}

	r = e.tcpBatch(300)
	requireAllOK(t, "new connections after "+victim+" came back", r)
	checkShares(t, r.Servers, e.lab.Servers(), e.cfg.weights(e.lab.Servers()), 8)

	e.waitEchoed(hold, time.Now(), onVictim, "after "+victim+" came back")
	final := hold.stop(e)
	for _, c := range final.Connections {
		if slices.Contains(onVictim, c.Conn) {
			// Its server went away: closed or reset, not silently moved.
			if c.FailedAt.IsZero() {
				t.Errorf("connection %d on the stopped server %s did not fail", c.Conn, victim)
			}
			continue
		}
		if !c.FailedAt.IsZero() {
			t.Errorf("connection %d on %s failed: %s (%s: %s)", c.Conn, c.Server, c.Kind, c.Stage, c.Error)
		}
	}
}
