//go:build linux

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHealthFailover stops one server's process under TCP health checks
// (every 200 ms, 100 ms timeout, fall 2, rise 2). ipfront must log it down
// within interval * fall + timeout of the moment it stopped answering (the
// README's bound) plus schedSlack; then 100 new connections must all
// succeed and none reach the stopped server, which the API, ctl, /metrics
// and the log show down; the other servers' long-lived connections must not
// notice. Restarted, the server must be up again within interval * rise +
// timeout (the health package's bound) plus schedSlack and take its share
// of new connections.
func TestHealthFailover(t *testing.T) {
	const (
		interval = 200 * time.Millisecond
		timeout  = 100 * time.Millisecond
		rise     = 2
		fall     = 2
		victim   = "s2"
		// schedSlack is what the host may add to the bound: the checker's
		// ticker, the daemon's control goroutine, ipfront's log pipe and
		// this test's reader each wake up once between the last probe and
		// the moment the test sees the verdict, and on two cores shared
		// with the rest of make test a wake-up can wait behind runnable
		// work for a few scheduler slices (a few ms each). The bound is
		// checked exactly, without the host, in slowpath/health's
		// TestDetectionBound.
		schedSlack = 50 * time.Millisecond
	)
	servers := []spServer{{"s1", 1}, {"s2", 1}, {"s3", 1}}
	e := startSP(t, 3, spConfig{Servers: servers, Balance: balanceOff, Health: fmt.Sprintf(`
		type = "tcp"
		interval = %q
		timeout = %q
		rise = %d
		fall = %d`, interval, timeout, rise, fall)})
	hold := e.startHold(12, 50*time.Millisecond, 64)
	onVictim := connsOn(hold.ready, victim)
	if len(onVictim) == 0 || len(onVictim) == len(hold.ready.Connections) {
		t.Fatalf("long-lived connections by server %v: the test needs some on %s and some elsewhere", hold.ready.Servers, victim)
	}

	isDown := func(l logLine) bool { return strings.HasPrefix(l.Msg(), "server down") && l.Str("server") == victim }
	mark := e.log.mark()
	// The server answers until some moment after this: measured from
	// here, detection can only look slower than it is.
	stopping := time.Now()
	e.stopServer(victim)
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	e.waitLine(ctx, mark, victim+" down", isDown)
	cancel()
	detect, bound := time.Since(stopping), interval*fall+timeout
	t.Logf("%s logged down %v after it was stopped (bound %v)", victim, detect.Round(time.Millisecond), bound)
	if detect > bound+schedSlack {
		t.Errorf("%s logged down %v after it was stopped, want at most interval * fall + timeout = %v (+ %v scheduling)", victim, detect, bound, schedSlack)
	}
	// The log line comes just before the daemon publishes the verdict.
	e.waitFor(5*time.Second, victim+" down in the API", func() (bool, string) {
		st := e.serverStates()[victim]
		return !st.Healthy, fmt.Sprintf("%+v", st)
	})

	r := e.tcpBatch(100)
	requireAllOK(t, fmt.Sprintf("new connections after %s was reported down", victim), r)
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
	down := e.log.since(mark, isDown)
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

	isUp := func(l logLine) bool { return strings.HasPrefix(l.Msg(), "server up") && l.Str("server") == victim }
	mark = e.log.mark()
	e.startServer(victim)
	// startServer returns once the server has greeted a client, so it
	// answers from here at the latest: measured from here, recovery can
	// only look faster than it is, never fail for the server's start-up.
	answering := time.Now()
	ctx, cancel = context.WithTimeout(e.ctx, 10*time.Second)
	e.waitLine(ctx, mark, victim+" up again", isUp)
	cancel()
	recovered, bound := time.Since(answering), interval*rise+timeout
	t.Logf("%s logged up %v after it answered again (bound %v)", victim, recovered.Round(time.Millisecond), bound)
	if recovered > bound+schedSlack {
		t.Errorf("%s logged up %v after it answered again, want at most interval * rise + timeout = %v (+ %v scheduling)", victim, recovered, bound, schedSlack)
	}
	e.waitFor(5*time.Second, victim+" up in the API", func() (bool, string) {
		st := e.serverStates()[victim]
		return st.Healthy && st.EffectiveWeight == 1, fmt.Sprintf("%+v", st)
	})
	if up := e.log.since(mark, isUp); len(up) != 1 {
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
