package slowpath

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
	"github.com/ipfront/ipfront/slowpath/ha"
)

// haBackend is the part of the daemon GET /v1/ha and the ha metrics read;
// *Daemon implements it. A backend without it (test fakes) reports
// replication off.
type haBackend interface {
	HAStats() (ha.Stats, bool)
}

var _ haBackend = (*Daemon)(nil)

// routeHA adds GET /v1/ha (ipfront ctl ha).
func (a *API) routeHA(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/ha", a.ha)
}

func (a *API) ha(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, haReply(a.b))
}

func haReply(b Backend) v1.HA {
	hb, ok := b.(haBackend)
	if !ok {
		return v1.HA{Mates: []v1.HAMate{}}
	}
	st, ok := hb.HAStats()
	if !ok {
		return v1.HA{Mates: []v1.HAMate{}}
	}
	out := v1.HA{Enabled: true, Listen: st.Listen, Joined: st.Joined, ExportSkipped: st.ExportSkipped,
		UnknownPeer: st.UnknownPeer, Mates: []v1.HAMate{}}
	for _, m := range st.Mates {
		out.Mates = append(out.Mates, v1.HAMate{Mate: m.Mate, State: m.State, Pulled: m.Pulled,
			LastReceived: m.LastReceived, LagSeconds: m.Lag.Seconds(),
			SentMessages: m.SentMessages, SentRecords: m.SentRecords,
			ReceivedMessages: m.ReceivedMessages, ReceivedRecords: m.ReceivedRecords,
			Imported: m.Imported, Unresolved: m.Unresolved, ImportDropped: m.ImportDropped,
			Rejected:         map[string]uint64{"forged": m.Forged, "replayed": m.Replayed, "stale": m.Stale, "malformed": m.Malformed},
			ResyncsRequested: m.ResyncsRequested, ResyncsServed: m.ResyncsServed, ResyncsCompleted: m.ResyncsCompleted,
			Lost: m.Lost, Retransmits: m.Retransmits, NacksSent: m.NacksSent})
	}
	return out
}

// haCollector exports replication's per-mate counters as ipfront_ha_*.
type haCollector struct{ b Backend }

var (
	haMateLabels   = []string{"mate"}
	descHAJoined   = prometheus.NewDesc("ipfront_ha_joined", "1 once the instance pulled its mates' associations (or none answered).", nil, nil)
	descHAUp       = prometheus.NewDesc("ipfront_ha_mate_up", "1 while the mate was heard within the last second.", haMateLabels, nil)
	descHASent     = prometheus.NewDesc("ipfront_ha_sent_records_total", "Association records sent to the mate.", haMateLabels, nil)
	descHAReceived = prometheus.NewDesc("ipfront_ha_received_records_total", "Association records received from the mate.", haMateLabels, nil)
	descHAImported = prometheus.NewDesc("ipfront_ha_imported_total", "Records imported into a worker's shard.", haMateLabels, nil)
	descHAUnres    = prometheus.NewDesc("ipfront_ha_unresolved_total", "Records naming a set or server this instance does not have.", haMateLabels, nil)
	descHALag      = prometheus.NewDesc("ipfront_ha_lag_seconds", "Send-to-accept delay of the mate's last message.", haMateLabels, nil)
	descHAResyncs  = prometheus.NewDesc("ipfront_ha_resyncs_total", "Bulk resyncs, by direction (requested from the mate, served to it).", []string{"mate", "direction"}, nil)
	descHARejected = prometheus.NewDesc("ipfront_ha_rejected_total", "Sync messages from the mate rejected, by reason.", []string{"mate", "reason"}, nil)
)

func (c haCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descHAJoined, descHAUp, descHASent, descHAReceived, descHAImported, descHAUnres,
		descHALag, descHAResyncs, descHARejected} {
		ch <- d
	}
}

func (c haCollector) Collect(ch chan<- prometheus.Metric) {
	r := haReply(c.b)
	if !r.Enabled {
		return
	}
	ch <- prometheus.MustNewConstMetric(descHAJoined, prometheus.GaugeValue, b2f(r.Joined))
	for _, m := range r.Mates {
		ch <- prometheus.MustNewConstMetric(descHAUp, prometheus.GaugeValue, b2f(m.State != ha.StateSilent), m.Mate)
		ch <- prometheus.MustNewConstMetric(descHASent, prometheus.CounterValue, float64(m.SentRecords), m.Mate)
		ch <- prometheus.MustNewConstMetric(descHAReceived, prometheus.CounterValue, float64(m.ReceivedRecords), m.Mate)
		ch <- prometheus.MustNewConstMetric(descHAImported, prometheus.CounterValue, float64(m.Imported), m.Mate)
		ch <- prometheus.MustNewConstMetric(descHAUnres, prometheus.CounterValue, float64(m.Unresolved), m.Mate)
		ch <- prometheus.MustNewConstMetric(descHALag, prometheus.GaugeValue, m.LagSeconds, m.Mate)
		ch <- prometheus.MustNewConstMetric(descHAResyncs, prometheus.CounterValue, float64(m.ResyncsRequested), m.Mate, "requested")
		ch <- prometheus.MustNewConstMetric(descHAResyncs, prometheus.CounterValue, float64(m.ResyncsServed), m.Mate, "served")
		for reason, n := range m.Rejected {
			ch <- prometheus.MustNewConstMetric(descHARejected, prometheus.CounterValue, float64(n), m.Mate, reason)
		}
	}
}
