//go:build linux

package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/internal/lab"
)

// TestCtlAndMetrics checks "ipfront ctl status|sets|servers|assoc|alarms",
// human and -o json, and /metrics against a daemon carrying traffic: 24
// long-lived connections echoing and 60 short ones made before. Tables must
// have their headers and a row per interface, worker, set and server; the
// association counts must be what the client did (one per connection, on
// the server that greeted it); the JSON must say what the tables say; the
// metrics must agree with /v1/counters.
func TestCtlAndMetrics(t *testing.T) {
	servers := []spServer{{"s1", 1}, {"s2", 2}, {"s3", 3}}
	e := startSP(t, 3, spConfig{Servers: servers, Balance: balanceOff})
	const holdConns, shortConns = 24, 60
	hold := e.startHold(holdConns, 100*time.Millisecond, 64)
	short := e.tcpBatch(shortConns)
	requireAllOK(t, "short connections", short)
	// Associations by server: one per connection the client made (the
	// short ones' stay until their delete age).
	want := map[string]int{}
	for _, s := range servers {
		want[s.Role] = hold.ready.Servers[s.Role] + short.Servers[s.Role]
	}
	const total = holdConns + shortConns

	checkCtlStatus(e, total)
	checkCtlSets(e, total)
	checkCtlServers(e, servers, want)
	checkCtlAssoc(e, hold.ready, want, total)
	checkCtlNoAlarms(e)

	// /metrics under traffic: counters only grow, so each sample must lie
	// between the counters read just before and just after it.
	var c1, c2 apiCounters
	e.api("/v1/counters", &c1)
	ms := e.metrics()
	e.api("/v1/counters", &c2)
	checkMetrics(t, ms, c1, c2)

	e.waitEchoed(hold, time.Now(), nil, "during the ctl checks")
	if final := hold.stop(e); final.Failed != 0 {
		t.Errorf("%d long-lived connections failed: %v", final.Failed, failedConns(final))
	}

	// /metrics at rest, the connections closed: nothing moves between the
	// two readings of /v1/counters, so the samples must equal them.
	e.waitFor(5*time.Second, "traffic to stop", func() (bool, string) {
		e.api("/v1/counters", &c1)
		ms = e.metrics()
		e.api("/v1/counters", &c2)
		return c1.RxPackets == c2.RxPackets, fmt.Sprintf("rx_packets %d, then %d", c1.RxPackets, c2.RxPackets)
	})
	checkMetrics(t, ms, c1, c2)
	if g := metricValue(t, ms, "ipfront_tables_generation", nil); g != float64(e.status().Generation) {
		t.Errorf("ipfront_tables_generation = %v, /v1/status generation %d", g, e.status().Generation)
	}
	if v := metricValue(t, ms, "ipfront_ready", nil); v != 1 {
		t.Errorf("ipfront_ready = %v, want 1", v)
	}
	if v := metricValue(t, ms, "ipfront_balance_alarm_active", map[string]string{"set": setName}); v != 0 {
		t.Errorf("ipfront_balance_alarm_active = %v, want 0", v)
	}
	sum := 0.0
	for _, m := range findMetrics(ms, "ipfront_associations", nil) {
		sum += m.value
	}
	if sum != total {
		t.Errorf("ipfront_associations sum to %v, want %d", sum, total)
	}
	for _, s := range servers {
		labels := map[string]string{"set": setName, "server": s.Role, "address": e.host(s.Role).IPv4.String()}
		if v := metricValue(t, ms, "ipfront_server_configured_weight", labels); v != float64(s.Weight) {
			t.Errorf("ipfront_server_configured_weight%v = %v, want %d", labels, v, s.Weight)
		}
	}
}

// checkCtlStatus checks "ctl status" and its JSON against /v1/status: one
// interface, every worker, total associations.
func checkCtlStatus(e *spEnv, total int) {
	t := e.t
	t.Helper()
	var js apiStatus
	e.ctlJSON(&js, "status")
	api := e.status()
	if !js.Ready || js.Generation == 0 || js.Generation != api.Generation {
		t.Errorf("ctl -o json status: ready %v, generation %d; /v1/status generation %d", js.Ready, js.Generation, api.Generation)
	}
	out := e.ctlOK("status").stdout
	if first := strings.SplitN(out, "\n", 2)[0]; first != fmt.Sprintf("ready: yes  generation: %d", js.Generation) {
		t.Errorf("ctl status first line %q, want ready and generation %d", first, js.Generation)
	}
	ifs := findTable(t, out, "INTERFACE", "IFINDEX", "XDP", "QUEUES")
	if len(ifs.rows) != 1 || len(js.Interfaces) != 1 {
		t.Fatalf("ctl status: interfaces %v (JSON %+v), want %s only", ifs.rows, js.Interfaces, lab.LBIfname)
	}
	ifc := js.Interfaces[0]
	if row := ifs.row(t, "INTERFACE", lab.LBIfname); row["IFINDEX"] != strconv.Itoa(ifc.Index) || row["XDP"] != ifc.XDPMode ||
		row["QUEUES"] != joinInts(ifc.Queues) || ifc.Name != lab.LBIfname {
		t.Errorf("ctl status interface row %v, JSON %+v", row, ifc)
	}
	wk := findTable(t, out, "WORKER", "CPU", "ASSOC", "CAPACITY", "USE", "RX-PKTS", "TX-PKTS", "RX-PPS", "TX-PPS", "UNPROVEN", "TABLE-FULL")
	if len(wk.rows) != len(js.Workers) || len(wk.rows) == 0 {
		t.Fatalf("ctl status: %d worker rows, JSON %d workers", len(wk.rows), len(js.Workers))
	}
	assocs, capacity := 0, 0
	for _, w := range js.Workers {
		row := wk.row(t, "WORKER", w.Name)
		if row["ASSOC"] != strconv.Itoa(w.Associations) || row["CAPACITY"] != strconv.Itoa(w.Capacity) {
			t.Errorf("ctl status worker row %v, JSON %+v", row, w)
		}
		if w.RxPackets == 0 {
			t.Errorf("worker %s received nothing: %+v", w.Name, w)
		}
		assocs += w.Associations
		capacity += w.Capacity
	}
	// Shards hold associations and persistence records: max_associations
	// (65536) plus the default max_persistence_records, a quarter of it.
	if wantCap := 65536 + 65536/4; assocs != total || capacity != wantCap {
		t.Errorf("workers hold %d associations of capacity %d, want %d of %d", assocs, capacity, total, wantCap)
	}
}

// checkCtlSets checks "ctl sets" and its JSON: the configured set with
// total associations.
func checkCtlSets(e *spEnv, total int) {
	t := e.t
	t.Helper()
	var js apiSets
	e.ctlJSON(&js, "sets")
	if len(js.Sets) != 1 {
		t.Fatalf("ctl -o json sets: %+v, want set %s only", js, setName)
	}
	s := js.Sets[0]
	if s.Name != setName || s.VIP != e.vip.String() || s.Method != "hash" || s.Forwarding != "dsr" || s.DeleteAge != "30s" ||
		s.Servers != 3 || s.Associations != total || !slices.Equal(s.Protocols, []string{"tcp", "udp"}) || !slices.Equal(s.Ports, []string{ports}) {
		t.Errorf("ctl -o json sets: %+v, want %s on %s, tcp,udp %s, hash, dsr, 30s, 3 servers, %d associations", s, setName, e.vip, ports, total)
	}
	row := findTable(t, e.ctlOK("sets").stdout, "SET", "VIP", "PROTOCOLS", "PORTS", "METHOD", "FORWARDING", "DELETE-AGE", "SERVERS", "ASSOC").
		row(t, "SET", setName)
	wantRow := map[string]string{"SET": setName, "VIP": e.vip.String(), "PROTOCOLS": "tcp,udp", "PORTS": ports, "METHOD": "hash",
		"FORWARDING": "dsr", "DELETE-AGE": "30s", "SERVERS": "3", "ASSOC": strconv.Itoa(total)}
	if !maps.Equal(row, wantRow) {
		t.Errorf("ctl sets row %v, want %v", row, wantRow)
	}
}

// checkCtlServers checks "ctl servers" and its JSON: each server's
// configuration, state, associations (want) and traffic.
func checkCtlServers(e *spEnv, servers []spServer, want map[string]int) {
	t := e.t
	t.Helper()
	// Rates need two samples a second apart; every server has
	// long-lived connections echoing.
	e.waitFor(5*time.Second, "rates of every server", func() (bool, string) {
		var r apiServers
		e.api("/v1/servers", &r)
		ok := r.Interval > 0
		for _, s := range r.Servers {
			ok = ok && s.PPS > 0 && s.BPS > 0
		}
		return ok, fmt.Sprintf("%+v", r)
	})
	var js apiServers
	e.ctlJSON(&js, "servers")
	tb := findTable(t, e.ctlOK("servers").stdout, "SET", "SERVER", "ADDRESS", "WEIGHT", "EFF", "STATE", "ASSOC", "PPS", "BPS", "PKTS", "BYTES", "SHARE")
	if len(js.Servers) != len(servers) || len(tb.rows) != len(servers) {
		t.Fatalf("ctl servers: %d rows, JSON %d servers; want %d", len(tb.rows), len(js.Servers), len(servers))
	}
	for i, s := range servers {
		j := js.Servers[i]
		addr := e.host(s.Role).IPv4.String()
		if j.Set != setName || j.Name != s.Role || j.Address != addr || j.Weight != s.Weight || int(j.EffectiveWeight) != s.Weight ||
			!j.Healthy || j.Drained || !j.Resolved || j.Associations != want[s.Role] || j.Packets == 0 || j.Bytes == 0 {
			t.Errorf("ctl -o json servers[%d] = %+v, want %s %s weight %d, up, %d associations, traffic", i, j, s.Role, addr, s.Weight, want[s.Role])
		}
		row := tb.row(t, "SERVER", s.Role)
		wantRow := map[string]string{"SET": setName, "ADDRESS": addr, "WEIGHT": strconv.Itoa(s.Weight), "EFF": strconv.Itoa(s.Weight),
			"STATE": "up", "ASSOC": strconv.Itoa(want[s.Role])}
		for k, v := range wantRow {
			if row[k] != v {
				t.Errorf("ctl servers row %s: %s = %s, want %s (row %v)", s.Role, k, row[k], v, row)
			}
		}
		if !strings.HasSuffix(row["SHARE"], "%") || row["PKTS"] == "0" || row["PPS"] == "0" || row["BPS"] == "0" {
			t.Errorf("ctl servers row %s: %v, want packets, rates and a share", s.Role, row)
		}
		if j.PPS <= 0 || j.Share <= 0 || j.Share >= 1 {
			t.Errorf("ctl -o json servers[%d]: pps %v, share %v; want traffic", i, j.PPS, j.Share)
		}
	}
}

// checkCtlAssoc checks "ctl assoc", paged JSON and the table: one
// association per connection the client made, on the server that greeted
// it.
func checkCtlAssoc(e *spEnv, hold lab.HoldReport, want map[string]int, total int) {
	t := e.t
	t.Helper()
	client := e.lab.Client().IPv4.String()
	// Two pages of JSON, then the human table of everything.
	var p1, p2 apiAssocs
	e.ctlJSON(&p1, "assoc", "--client", client, "--limit", "50")
	if len(p1.Associations) != 50 || p1.NextCursor == "" {
		t.Fatalf("ctl -o json assoc --limit 50: %d associations, cursor %q; want 50 and a cursor", len(p1.Associations), p1.NextCursor)
	}
	e.ctlJSON(&p2, "assoc", "--client", client, "--limit", "50", "--cursor", p1.NextCursor)
	if len(p2.Associations) != total-50 || p2.NextCursor != "" {
		t.Errorf("ctl -o json assoc second page: %d associations, cursor %q; want %d and none", len(p2.Associations), p2.NextCursor, total-50)
	}
	all := append(p1.Associations, p2.Associations...)
	byPort := map[int]apiAssoc{}
	count := map[string]int{}
	for _, a := range all {
		if _, dup := byPort[a.Port]; dup {
			t.Errorf("port %d listed twice", a.Port)
		}
		byPort[a.Port] = a
		count[a.Server]++
		if a.Client != client || a.Protocol != "tcp" || a.Set != setName || a.Address != e.host(a.Server).IPv4.String() {
			t.Errorf("association %+v: want client %s, tcp, set %s, its server's address", a, client, setName)
		}
	}
	if !maps.Equal(count, want) {
		t.Errorf("associations by server %v, want %v (the client's connections)", count, want)
	}
	for _, c := range hold.Connections {
		if a, ok := byPort[c.SourcePort]; !ok || a.Server != c.Server {
			t.Errorf("long-lived connection from port %d greeted by %s: association %+v", c.SourcePort, c.Server, a)
		}
	}

	out := e.ctlOK("assoc", "--client", client, "--limit", "1000")
	tb := findTable(t, out.stdout, "CLIENT", "PORT", "PROTO", "SET", "SERVER", "ADDRESS", "IDLE", "FLAGS", "WORKER", "NAT")
	if len(tb.rows) != total {
		t.Errorf("ctl assoc: %d rows, want %d", len(tb.rows), total)
	}
	for _, row := range tb.rows {
		port, _ := strconv.Atoi(row["PORT"])
		a := byPort[port]
		if row["CLIENT"] != client || row["PROTO"] != "tcp" || row["SET"] != setName || row["SERVER"] != a.Server ||
			row["ADDRESS"] != a.Address || row["WORKER"] != a.Worker {
			t.Errorf("ctl assoc row %v, JSON %+v", row, a)
		}
	}
	var s3 apiAssocs
	e.ctlJSON(&s3, "assoc", "--server", "s3", "--limit", "1000")
	if len(s3.Associations) != want["s3"] {
		t.Errorf("ctl assoc --server s3: %d associations, want %d", len(s3.Associations), want["s3"])
	}
}

// checkCtlNoAlarms checks "ctl alarms" and its JSON when no alarm was raised.
func checkCtlNoAlarms(e *spEnv) {
	t := e.t
	t.Helper()
	if out := e.ctlOK("alarms").stdout; out != "no alarms\n" {
		t.Errorf("ctl alarms printed %q, want \"no alarms\"", out)
	}
	var js apiAlarms
	e.ctlJSON(&js, "alarms")
	if js.Alarms == nil || len(js.Alarms) != 0 {
		t.Errorf("ctl -o json alarms = %+v, want an empty list", js)
	}
}

// checkMetrics checks the counters of /metrics against two readings of
// /v1/counters, one taken before the scrape and one after: lo <= value <= hi.
func checkMetrics(t *testing.T, ms []metric, lo, hi apiCounters) {
	t.Helper()
	between := func(what string, v float64, a, b uint64) {
		t.Helper()
		if v < float64(a) || v > float64(b) {
			t.Errorf("%s = %v, want it within /v1/counters' %d..%d", what, v, a, b)
		}
	}
	if len(lo.Workers) == 0 || len(lo.Workers) != len(hi.Workers) {
		t.Fatalf("/v1/counters workers: %d, then %d", len(lo.Workers), len(hi.Workers))
	}
	rx := 0.0
	for i, w := range lo.Workers {
		v := metricValue(t, ms, "ipfront_rx_packets_total", map[string]string{"worker": w.Name})
		between("ipfront_rx_packets_total{worker="+w.Name+"}", v, w.RxPackets, hi.Workers[i].RxPackets)
		rx += v
	}
	between("sum of ipfront_rx_packets_total", rx, lo.RxPackets, hi.RxPackets)
	if rx == 0 {
		t.Errorf("ipfront_rx_packets_total: nothing received")
	}

	drops := findMetrics(ms, "ipfront_drops_total", nil)
	if len(drops) != len(lo.Drops) || len(drops) == 0 {
		t.Errorf("ipfront_drops_total has %d reasons, /v1/counters %d", len(drops), len(lo.Drops))
	}
	for reason, n := range lo.Drops {
		v := metricValue(t, ms, "ipfront_drops_total", map[string]string{"reason": reason})
		between(`ipfront_drops_total{reason="`+reason+`"}`, v, n, hi.Drops[reason])
	}

	if len(lo.Servers) == 0 || len(lo.Servers) != len(hi.Servers) {
		t.Fatalf("/v1/counters servers: %d, then %d", len(lo.Servers), len(hi.Servers))
	}
	for i, s := range lo.Servers {
		labels := map[string]string{"set": s.Set, "server": s.Name, "address": s.Address}
		v := metricValue(t, ms, "ipfront_server_packets_total", labels)
		between(fmt.Sprintf("ipfront_server_packets_total%v", labels), v, s.Packets, hi.Servers[i].Packets)
		if v == 0 {
			t.Errorf("ipfront_server_packets_total%v = 0, want traffic", labels)
		}
		b := metricValue(t, ms, "ipfront_server_bytes_total", labels)
		between(fmt.Sprintf("ipfront_server_bytes_total%v", labels), b, s.Bytes, hi.Servers[i].Bytes)
	}
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}
