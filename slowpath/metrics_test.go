package slowpath_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/slowpath"
	"github.com/ipfront/ipfront/slowpath/config"
)

func TestMetrics(t *testing.T) {
	s := newScenario(t, config.API{})
	s.b.SetAlarms([]slowpath.Alarm{
		{ID: "web-1", Set: "web", Active: false},
		{ID: "web-2", Set: "web", Active: true},
		{ID: "old-1", Set: "old", Active: false}, // a set since removed
		// Table-full alarms count per worker, not as a set's.
		{ID: "table-full-eth1/1-1", Kind: slowpath.AlarmTableFull, Worker: "eth1/1", Active: false},
		{ID: "table-full-eth1/1-2", Kind: slowpath.AlarmTableFull, Worker: "eth1/1", Active: true},
	})
	s.b.UpdateServer("dns", dnsSrv, func(st *slowpath.ServerState) { st.Healthy, st.EffectiveWeight = false, 0 })
	if err := s.b.SetDrained(t.Context(), "web", "web-a", true); err != nil { // generation 2
		t.Fatal(err)
	}

	const want = `
# HELP ipfront_rx_packets_total Frames received from the AF_XDP RX ring.
# TYPE ipfront_rx_packets_total counter
ipfront_rx_packets_total{worker="eth1/0"} 1000
ipfront_rx_packets_total{worker="eth1/1"} 500
# HELP ipfront_tx_bytes_total Bytes of frames sent on the AF_XDP TX ring.
# TYPE ipfront_tx_bytes_total counter
ipfront_tx_bytes_total{worker="eth1/0"} 100000
ipfront_tx_bytes_total{worker="eth1/1"} 50000
# HELP ipfront_associations Live associations in the worker's shard.
# TYPE ipfront_associations gauge
ipfront_associations{worker="eth1/0"} 25
ipfront_associations{worker="eth1/1"} 10
# HELP ipfront_association_capacity Associations the worker's shard holds at most.
# TYPE ipfront_association_capacity gauge
ipfront_association_capacity{worker="eth1/0"} 64
ipfront_association_capacity{worker="eth1/1"} 64
# HELP ipfront_associations_created_total Associations created, re-selections included.
# TYPE ipfront_associations_created_total counter
ipfront_associations_created_total 35
# HELP ipfront_associations_reselected_total Associations moved to a new server.
# TYPE ipfront_associations_reselected_total counter
ipfront_associations_reselected_total 1
# HELP ipfront_associations_expired_total Associations forgotten after their delete age.
# TYPE ipfront_associations_expired_total counter
ipfront_associations_expired_total 2
# HELP ipfront_stateless_forwarded_total Packets forwarded without an association because the table was full.
# TYPE ipfront_stateless_forwarded_total counter
ipfront_stateless_forwarded_total 1
# HELP ipfront_server_packets_total Packets forwarded to the server.
# TYPE ipfront_server_packets_total counter
ipfront_server_packets_total{address="198.51.100.11",server="web-a",set="web"} 300
ipfront_server_packets_total{address="198.51.100.12",server="web-b",set="web"} 900
ipfront_server_packets_total{address="2001:db8::1",server="2001:db8::1",set="dns"} 150
# HELP ipfront_server_bytes_total Bytes forwarded to the server.
# TYPE ipfront_server_bytes_total counter
ipfront_server_bytes_total{address="198.51.100.11",server="web-a",set="web"} 30000
ipfront_server_bytes_total{address="198.51.100.12",server="web-b",set="web"} 90000
ipfront_server_bytes_total{address="2001:db8::1",server="2001:db8::1",set="dns"} 15000
# HELP ipfront_server_weight Weight new associations see after drain, health and balance.
# TYPE ipfront_server_weight gauge
ipfront_server_weight{address="198.51.100.11",server="web-a",set="web"} 0
ipfront_server_weight{address="198.51.100.12",server="web-b",set="web"} 3
ipfront_server_weight{address="2001:db8::1",server="2001:db8::1",set="dns"} 0
# HELP ipfront_server_up 1 if the server passes its health checks.
# TYPE ipfront_server_up gauge
ipfront_server_up{address="198.51.100.11",server="web-a",set="web"} 1
ipfront_server_up{address="198.51.100.12",server="web-b",set="web"} 1
ipfront_server_up{address="2001:db8::1",server="2001:db8::1",set="dns"} 0
# HELP ipfront_server_drained 1 if an operator drained the server.
# TYPE ipfront_server_drained gauge
ipfront_server_drained{address="198.51.100.11",server="web-a",set="web"} 1
ipfront_server_drained{address="198.51.100.12",server="web-b",set="web"} 0
ipfront_server_drained{address="2001:db8::1",server="2001:db8::1",set="dns"} 0
# HELP ipfront_balance_alarm_active 1 while the target set's balance alarm is raised.
# TYPE ipfront_balance_alarm_active gauge
ipfront_balance_alarm_active{set="dns"} 0
ipfront_balance_alarm_active{set="old"} 0
ipfront_balance_alarm_active{set="web"} 1
# HELP ipfront_alarms_raised_total Balance alarms raised for the target set since start.
# TYPE ipfront_alarms_raised_total counter
ipfront_alarms_raised_total{set="dns"} 0
ipfront_alarms_raised_total{set="old"} 1
ipfront_alarms_raised_total{set="web"} 2
# HELP ipfront_associations_unproven Associations in the worker's shard that have not proven a connection yet.
# TYPE ipfront_associations_unproven gauge
ipfront_associations_unproven{worker="eth1/0"} 3
ipfront_associations_unproven{worker="eth1/1"} 1
# HELP ipfront_associations_unproven_limit Unproven associations the worker's shard holds at most (half its capacity); at the limit openings go by the hash without an association.
# TYPE ipfront_associations_unproven_limit gauge
ipfront_associations_unproven_limit{worker="eth1/0"} 32
ipfront_associations_unproven_limit{worker="eth1/1"} 32
# HELP ipfront_flood_stateless_forwarded_total Openings forwarded by the hash without an association because unproven associations held their limit (also counted in ipfront_stateless_forwarded_total).
# TYPE ipfront_flood_stateless_forwarded_total counter
ipfront_flood_stateless_forwarded_total 5
# HELP ipfront_teardowns_ignored_total Teardowns forwarded but not taken as ending the association, by reason: tcp_out_of_window (FIN/RST far from the client's sequence), sctp_bad_tag (SCTP teardown without the learned verification tag).
# TYPE ipfront_teardowns_ignored_total counter
ipfront_teardowns_ignored_total{reason="sctp_bad_tag"} 13
ipfront_teardowns_ignored_total{reason="tcp_out_of_window"} 9
# HELP ipfront_partial_checksum_flows_total New flows whose first packet carried only the pseudo-header checksum (a local sender's TX checksum offload; the server drops them).
# TYPE ipfront_partial_checksum_flows_total counter
ipfront_partial_checksum_flows_total 11
# HELP ipfront_table_full_alarm_active 1 while the worker's table-full alarm is raised.
# TYPE ipfront_table_full_alarm_active gauge
ipfront_table_full_alarm_active{worker="eth1/0"} 0
ipfront_table_full_alarm_active{worker="eth1/1"} 1
# HELP ipfront_table_full_alarms_raised_total Table-full alarms raised for the worker since start.
# TYPE ipfront_table_full_alarms_raised_total counter
ipfront_table_full_alarms_raised_total{worker="eth1/0"} 0
ipfront_table_full_alarms_raised_total{worker="eth1/1"} 2
# HELP ipfront_tables_generation Generation of the forwarding tables last published.
# TYPE ipfront_tables_generation gauge
ipfront_tables_generation 2
# HELP ipfront_ready 1 once start-up finished.
# TYPE ipfront_ready gauge
ipfront_ready 1
`
	names := []string{"ipfront_rx_packets_total", "ipfront_tx_bytes_total", "ipfront_associations",
		"ipfront_association_capacity", "ipfront_associations_created_total", "ipfront_associations_reselected_total",
		"ipfront_associations_expired_total", "ipfront_stateless_forwarded_total", "ipfront_server_packets_total",
		"ipfront_server_bytes_total", "ipfront_server_weight", "ipfront_server_up", "ipfront_server_drained",
		"ipfront_balance_alarm_active", "ipfront_alarms_raised_total", "ipfront_tables_generation", "ipfront_ready",
		"ipfront_associations_unproven", "ipfront_associations_unproven_limit", "ipfront_flood_stateless_forwarded_total",
		"ipfront_teardowns_ignored_total", "ipfront_partial_checksum_flows_total", "ipfront_table_full_alarm_active",
		"ipfront_table_full_alarms_raised_total"}
	if err := testutil.GatherAndCompare(s.api.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// Every drop reason is exported, zero or not.
	if n, err := testutil.GatherAndCount(s.api.Registry(), "ipfront_drops_total"); err != nil || n != int(fastpath.NumReasons)-1 {
		t.Errorf("ipfront_drops_total has %d series (%v), want %d", n, err, fastpath.NumReasons-1)
	}
	const drops = `
# HELP ipfront_drops_total Frames dropped, by reason, over all workers.
# TYPE ipfront_drops_total counter
`
	var b strings.Builder
	b.WriteString(drops)
	for r := fastpath.Reason(1); r < fastpath.NumReasons; r++ {
		n := map[fastpath.Reason]int{fastpath.DropNoServer: 7, fastpath.DropTxRingFull: 2, fastpath.Reason(packet.Truncated): 3}[r]
		fmt.Fprintf(&b, "ipfront_drops_total{reason=%q} %d\n", r.String(), n)
	}
	if err := testutil.GatherAndCompare(s.api.Registry(), strings.NewReader(b.String()), "ipfront_drops_total"); err != nil {
		t.Error(err)
	}

	// The exposition passes Prometheus' own lint for our metrics.
	problems, err := testutil.GatherAndLint(s.api.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "ipfront_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}

	// Served over HTTP on /metrics.
	code, body := s.do(t, "GET", "/metrics")
	if code != 200 || !strings.Contains(string(body), `ipfront_rx_bytes_total{worker="eth1/0"} 120000`) ||
		!strings.Contains(string(body), "go_goroutines") {
		t.Errorf("GET /metrics = %d\n%s", code, body)
	}

	// Values are read at scrape time.
	s.p.Worker(1).Update(func(c *fastpath.Counters) { c.RxPackets = 777 })
	s.b.SetReady(false)
	if err := testutil.GatherAndCompare(s.api.Registry(), strings.NewReader(`
# HELP ipfront_rx_packets_total Frames received from the AF_XDP RX ring.
# TYPE ipfront_rx_packets_total counter
ipfront_rx_packets_total{worker="eth1/0"} 1000
ipfront_rx_packets_total{worker="eth1/1"} 777
# HELP ipfront_ready 1 once start-up finished.
# TYPE ipfront_ready gauge
ipfront_ready 0
`), "ipfront_rx_packets_total", "ipfront_ready"); err != nil {
		t.Error(err)
	}
}

// Without a data plane the daemon's own metrics are still served.
func TestMetricsWithoutDataplane(t *testing.T) {
	s := newScenario(t, config.API{})
	api := slowpath.New(s.b, config.API{Listen: "127.0.0.1:1"}, slowpath.Options{Plane: func() slowpath.Plane { return nil }})
	for name, want := range map[string]int{"ipfront_ready": 1, "ipfront_rx_packets_total": 0,
		"ipfront_server_up": 3, "ipfront_drops_total": int(fastpath.NumReasons) - 1} {
		if n, err := testutil.GatherAndCount(api.Registry(), name); err != nil || n != want {
			t.Errorf("%s: %d series (%v), want %d", name, n, err, want)
		}
	}
}
