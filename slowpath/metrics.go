package slowpath

import (
	"github.com/prometheus/client_golang/prometheus"
	"sort"

	"github.com/ipfront/ipfront/fastpath"
)

// Metric descriptions. Everything is read at scrape time from the counters
// the workers already publish once per batch and from the daemon's state:
// exporting costs the data plane nothing per packet.
var (
	workerLabel = []string{"worker"} // "interface/queue"
	serverLabel = []string{"set", "server", "address"}
	setLabel    = []string{"set"}

	descRxPackets   = prometheus.NewDesc("ipfront_rx_packets_total", "Frames received from the AF_XDP RX ring.", workerLabel, nil)
	descRxBytes     = prometheus.NewDesc("ipfront_rx_bytes_total", "Bytes of frames received from the AF_XDP RX ring.", workerLabel, nil)
	descTxPackets   = prometheus.NewDesc("ipfront_tx_packets_total", "Frames sent on the AF_XDP TX ring.", workerLabel, nil)
	descTxBytes     = prometheus.NewDesc("ipfront_tx_bytes_total", "Bytes of frames sent on the AF_XDP TX ring.", workerLabel, nil)
	descDrops       = prometheus.NewDesc("ipfront_drops_total", "Frames dropped, by reason, over all workers.", []string{"reason"}, nil)
	descAssocs      = prometheus.NewDesc("ipfront_associations", "Live associations in the worker's shard.", workerLabel, nil)
	descAssocCap    = prometheus.NewDesc("ipfront_association_capacity", "Associations the worker's shard holds at most.", workerLabel, nil)
	descCreated     = prometheus.NewDesc("ipfront_associations_created_total", "Associations created, re-selections included.", nil, nil)
	descReselected  = prometheus.NewDesc("ipfront_associations_reselected_total", "Associations moved to a new server.", nil, nil)
	descExpired     = prometheus.NewDesc("ipfront_associations_expired_total", "Associations forgotten after their delete age.", nil, nil)
	descStateless   = prometheus.NewDesc("ipfront_stateless_forwarded_total", "Packets forwarded without an association because the table was full.", nil, nil)
	descICMP        = prometheus.NewDesc("ipfront_icmp_forwarded_total", "ICMP errors forwarded to the server of the flow they quote.", nil, nil)
	descSteered     = prometheus.NewDesc("ipfront_xdp_redirected_packets_total", "VIP packets the steering program redirected to AF_XDP sockets.", nil, nil)
	descPassed      = prometheus.NewDesc("ipfront_xdp_passed_packets_total", "Packets the steering program passed to the kernel.", nil, nil)
	descShed        = prometheus.NewDesc("ipfront_xdp_shed_openings_total", "Openings (TCP SYN, SCTP INIT) to a VIP the steering program dropped while their worker was overloaded.", nil, nil)
	descSrvPackets  = prometheus.NewDesc("ipfront_server_packets_total", "Packets forwarded to the server.", serverLabel, nil)
	descSrvBytes    = prometheus.NewDesc("ipfront_server_bytes_total", "Bytes forwarded to the server.", serverLabel, nil)
	descSrvWeight   = prometheus.NewDesc("ipfront_server_weight", "Weight new associations see after drain, health and balance.", serverLabel, nil)
	descSrvCfgW     = prometheus.NewDesc("ipfront_server_configured_weight", "Weight in the configuration.", serverLabel, nil)
	descSrvUp       = prometheus.NewDesc("ipfront_server_up", "1 if the server passes its health checks.", serverLabel, nil)
	descSrvDrained  = prometheus.NewDesc("ipfront_server_drained", "1 if an operator drained the server.", serverLabel, nil)
	descSrvResolved = prometheus.NewDesc("ipfront_server_resolved", "1 if the server's MAC is known on every interface.", serverLabel, nil)
	descAlarm       = prometheus.NewDesc("ipfront_balance_alarm_active", "1 while the target set's balance alarm is raised.", setLabel, nil)
	descAlarmsTotal = prometheus.NewDesc("ipfront_alarms_raised_total", "Balance alarms raised for the target set since start.", setLabel, nil)
	// Flood and forged-teardown defences (fastpath/engine_guard.go) and
	// the table-full alarm (alarm_table.go).
	descUnproven        = prometheus.NewDesc("ipfront_associations_unproven", "Associations in the worker's shard that have not proven a connection yet.", workerLabel, nil)
	descUnprovenLimit   = prometheus.NewDesc("ipfront_associations_unproven_limit", "Unproven associations the worker's shard holds at most (half its capacity); at the limit openings go by the hash without an association.", workerLabel, nil)
	descFloodStateless  = prometheus.NewDesc("ipfront_flood_stateless_forwarded_total", "Openings forwarded by the hash without an association because unproven associations held their limit (also counted in ipfront_stateless_forwarded_total).", nil, nil)
	descTeardownIgnored = prometheus.NewDesc("ipfront_teardowns_ignored_total", "Teardowns forwarded but not taken as ending the association, by reason: tcp_out_of_window (FIN/RST far from the client's sequence), sctp_bad_tag (SCTP teardown without the learned verification tag).", []string{"reason"}, nil)
	descPartialCsum     = prometheus.NewDesc("ipfront_partial_checksum_flows_total", "New flows whose first packet carried only the pseudo-header checksum (a local sender's TX checksum offload; the server drops them).", nil, nil)
	descTableFull       = prometheus.NewDesc("ipfront_table_full_alarm_active", "1 while the worker's table-full alarm is raised.", workerLabel, nil)
	descTableFullTotal  = prometheus.NewDesc("ipfront_table_full_alarms_raised_total", "Table-full alarms raised for the worker since start.", workerLabel, nil)
	descGeneration      = prometheus.NewDesc("ipfront_tables_generation", "Generation of the forwarding tables last published.", nil, nil)
	descReady           = prometheus.NewDesc("ipfront_ready", "1 once start-up finished.", nil, nil)

	allDescs = []*prometheus.Desc{descRxPackets, descRxBytes, descTxPackets, descTxBytes, descDrops, descAssocs,
		descAssocCap, descCreated, descReselected, descExpired, descStateless, descICMP, descSteered, descPassed, descShed,
		descSrvPackets, descSrvBytes, descSrvWeight, descSrvCfgW, descSrvUp, descSrvDrained, descSrvResolved,
		descAlarm, descAlarmsTotal, descGeneration, descReady, descUnproven, descUnprovenLimit, descFloodStateless,
		descTeardownIgnored, descPartialCsum, descTableFull, descTableFullTotal, descTagIndexHits, descTagCollisions,
		descDiameterStale}
)

// collector exports the daemon and data plane to Prometheus.
type collector struct {
	b     Backend
	plane func() Plane
}

func newCollector(b Backend, plane func() Plane) *collector { return &collector{b: b, plane: plane} }

// Describe sends every metric's description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect reads everything at scrape time.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(descReady, b2f(c.b.Ready()))
	gauge(descGeneration, float64(c.b.Generation()))

	total := new(fastpath.Counters)
	var idx serverIndex
	alarms := c.b.Alarms()
	if p := c.plane(); p != nil {
		snap := snapshotPlane(p)
		total, idx = snap.total, indexServers(snap.tables)
		// Every worker has both table-full series, zero included.
		full, raised := tableFullWorkers(alarms), c.b.TableFullRaised()
		for i := range snap.workers {
			wk, wc := &snap.workers[i], snap.per[i]
			name := wk.Name()
			counter(descRxPackets, wc.RxPackets, name)
			counter(descRxBytes, wc.RxBytes, name)
			counter(descTxPackets, wc.TxPackets, name)
			counter(descTxBytes, wc.TxBytes, name)
			gauge(descAssocs, float64(wk.Assoc.Live()), name)
			gauge(descAssocCap, float64(wk.Assoc.Limit()), name)
			gauge(descUnproven, float64(wc.Unproven), name)
			gauge(descUnprovenLimit, float64(unprovenLimit(wk.Assoc.Limit())), name)
			gauge(descTableFull, b2f(full[name]), name)
			counter(descTableFullTotal, raised[name], name)
		}
		if sc, err := p.SteeringStats(); err == nil {
			counter(descSteered, sc.Redirected)
			counter(descPassed, sc.Passed)
			counter(descShed, sc.ShedOpenings)
		}
	}
	for r := fastpath.Reason(1); r < fastpath.NumReasons; r++ {
		counter(descDrops, total.Drops[r], r.String())
	}
	counter(descCreated, total.NewAssociations)
	counter(descReselected, total.Reselected)
	counter(descExpired, total.Expired)
	counter(descStateless, total.Stateless)
	counter(descICMP, total.ICMPForwarded)
	counter(descFloodStateless, total.FloodStateless)
	counter(descTeardownIgnored, total.TeardownIgnored, "tcp_out_of_window")
	counter(descTeardownIgnored, total.SCTPTagMismatch, "sctp_bad_tag")
	counter(descPartialCsum, total.PartialChecksum)
	collectSignalling(counter, total) // api_signalling.go

	for _, st := range c.b.Servers() {
		l := []string{st.Set, st.Name, st.Address.String()}
		var pkts, bytes uint64
		if j, ok := idx.lookup(st.Set, st.Address); ok {
			pkts, bytes = total.ServerPackets[j], total.ServerBytes[j]
		}
		counter(descSrvPackets, pkts, l...)
		counter(descSrvBytes, bytes, l...)
		gauge(descSrvWeight, float64(st.EffectiveWeight), l...)
		gauge(descSrvCfgW, float64(st.Weight), l...)
		gauge(descSrvUp, b2f(st.Healthy), l...)
		gauge(descSrvDrained, b2f(st.Drained), l...)
		gauge(descSrvResolved, b2f(st.Resolved), l...)
	}

	// Every configured set has both alarm series, zero included; sets that
	// were removed keep theirs while alarms remember them.
	var sets []string
	active, raised := map[string]bool{}, c.b.AlarmsRaised()
	seen := map[string]bool{}
	for _, ts := range c.b.Spec().TargetSets {
		sets = append(sets, ts.Name)
		seen[ts.Name] = true
	}
	for s := range raised {
		if !seen[s] {
			sets = append(sets, s)
			seen[s] = true
		}
	}
	sort.Strings(sets[len(c.b.Spec().TargetSets):])
	for _, al := range alarms {
		if al.Kind == AlarmTableFull {
			continue
		}
		active[al.Set] = active[al.Set] || al.Active
	}
	for _, s := range sets {
		gauge(descAlarm, b2f(active[s]), s)
		counter(descAlarmsTotal, raised[s], s)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
