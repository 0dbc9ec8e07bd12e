package slowpath

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
	"github.com/ipfront/ipfront/slowpath/helper/ftp"
)

// helperBackend is a Backend that runs the application helpers; *Daemon is
// one. The API serves zero counters for a backend that is not.
type helperBackend interface {
	HelperStats() *HelperStats
}

// helperStats returns b's helper counters, or an empty set.
func helperStats(b Backend) *HelperStats {
	if hb, ok := b.(helperBackend); ok {
		return hb.HelperStats()
	}
	return new(HelperStats)
}

// refusedNotes and droppedNotes are the notes counted under "refused" and
// "dropped".
var (
	refusedNotes = []ftp.NoteKind{ftp.NoteBounce, ftp.NoteLowPort, ftp.NoteMalformed, ftp.NoteFamily, ftp.NoteOverlong, ftp.NoteStalled}
	droppedNotes = []ftp.NoteKind{ftp.NoteGap, ftp.NoteTooOld}
)

// reply returns the counters as the API serves them; total holds the
// workers' counters (punt ring, expectations used).
func (s *HelperStats) reply(total *fastpath.Counters) v1.HelperCounters {
	c := v1.HelperCounters{Commands: map[string]uint64{}, Refused: map[string]uint64{}, Dropped: map[string]uint64{},
		Rewrites: s.notes[ftp.NoteRewrite].Load(), ExpectationsInstalled: s.installed.Load(),
		ExpectationsExpired: s.expired.Load(), Expectations: uint64(max(s.expects.Load(), 0)),
		Resyncs: s.notes[ftp.NoteResync].Load(), Unparsed: s.noFlow.Load() + s.untracked.Load(),
		Connections: uint64(max(s.conns.Load(), 0)), Punted: s.punted.Load(), Injected: s.injected.Load(),
		InjectOverflow: s.injectOverflow.Load(), ControlOverflow: s.controlOverflow.Load()}
	for i, v := range ftpVerbs {
		c.Commands[v] = s.commands[i].Load()
	}
	for _, k := range refusedNotes {
		c.Refused[k.String()] = s.notes[k].Load()
	}
	for _, k := range droppedNotes {
		c.Dropped[k.String()] = s.notes[k].Load()
	}
	c.Dropped["bad_checksum"] = s.badChecksum.Load()
	if total != nil {
		c.PuntRingFull = total.Drops[fastpath.DropPuntRingFull]
		c.ExpectationsUsed = expectationsUsed(total)
	}
	return c
}

// expectationsUsed is the number of data connections the workers admitted
// by an expectation.
func expectationsUsed(c *fastpath.Counters) uint64 { return c.ExpectUsed }

// expectations serves GET /v1/expectations (?set=).
func (a *API) expectations(w http.ResponseWriter, r *http.Request) {
	p := a.plane()
	if p == nil {
		writeError(w, http.StatusServiceUnavailable, ErrNotRunning)
		return
	}
	snap := snapshotPlane(p)
	set := -1
	if name := r.URL.Query().Get("set"); name != "" {
		if snap.tables != nil {
			for _, ts := range snap.tables.Sets() {
				if ts.Name == name {
					set = int(ts.ID)
				}
			}
		}
		if set < 0 {
			writeError(w, http.StatusNotFound, fmt.Errorf("no target set %q: %w", name, ErrUnknownServer))
			return
		}
	}
	writeJSON(w, http.StatusOK, v1.Expectations{Helper: helperStats(a.b).reply(snap.total),
		Expectations: listExpectations(snap.workers, snap.tables, set, assoc.Now())})
}

// listExpectations walks every shard for the expectations of set (every
// set if set < 0) whose timeout has not passed, ordered by set, client and
// port.
func listExpectations(workers []PlaneWorker, t *fastpath.Tables, set int, now uint32) []v1.Expectation {
	out := []v1.Expectation{}
	if t == nil {
		return out
	}
	for i := range workers {
		wk := &workers[i]
		wk.Assoc.Range(func(k assoc.Key, v assoc.Value) bool {
			ts := t.Set(k.Set)
			if k.Kind != assoc.KindExpect || ts == nil || (set >= 0 && int(k.Set) != set) {
				return true
			}
			timeout := ts.ExpectTimeout
			if timeout == 0 {
				timeout = fastpath.DefaultExpectTimeout
			}
			age := assoc.Age(now, v.LastSeen)
			if age > timeout {
				return true // expired, not swept yet: no longer honoured
			}
			e := v1.Expectation{Worker: wk.Name(), Set: ts.Name, Mode: "passive", Client: netip.AddrFrom16(k.Addr).Unmap(),
				Port: k.Port, Age: age, ExpiresIn: timeout - age}
			if v.Flags&fastpath.ExpectActive != 0 {
				e.Mode = "active"
			}
			if s := &ts.Servers[v.Server&(fastpath.MaxServers-1)]; s.Present && s.Gen == v.Gen {
				e.Server, e.Address = s.Name, s.Addr.String()
			}
			out = append(out, e)
			return true
		})
	}
	slices.SortFunc(out, func(a, b v1.Expectation) int {
		if c := strings.Compare(a.Set, b.Set); c != 0 {
			return c
		}
		if c := a.Client.Compare(b.Client); c != 0 {
			return c
		}
		return int(a.Port) - int(b.Port)
	})
	return out
}

// Helper metric descriptions.
var (
	descFTPCommands  = prometheus.NewDesc("ipfront_ftp_commands_total", "FTP lines the helper accepted, by verb (PORT, EPRT, 227, 229).", []string{"verb"}, nil)
	descFTPRewrites  = prometheus.NewDesc("ipfront_ftp_rewrites_total", "227 replies whose server address the helper replaced by the VIP's.", nil, nil)
	descFTPInstalled = prometheus.NewDesc("ipfront_ftp_expectations_installed_total", "Expectations of data connections sent to the workers.", nil, nil)
	descFTPUsed      = prometheus.NewDesc("ipfront_ftp_expectations_used_total", "Data connections the workers admitted by an expectation.", nil, nil)
	descFTPExpired   = prometheus.NewDesc("ipfront_ftp_expectations_expired_total", "Expectations whose expect_timeout passed, used or not.", nil, nil)
	descFTPExpects   = prometheus.NewDesc("ipfront_ftp_expectations", "Expectations waiting.", nil, nil)
	descFTPRefused   = prometheus.NewDesc("ipfront_ftp_refused_total", "FTP lines the helper refused, by reason (bounce: a PORT or EPRT naming another address than the client's).", []string{"reason"}, nil)
	descFTPDropped   = prometheus.NewDesc("ipfront_ftp_segments_dropped_total", "Control segments the helper did not pass on, by reason.", []string{"reason"}, nil)
	descFTPResyncs   = prometheus.NewDesc("ipfront_ftp_resyncs_total", "Control connections whose state started over (sequence numbers jumped).", nil, nil)
	descFTPUnparsed  = prometheus.NewDesc("ipfront_ftp_unparsed_total", "Control segments passed on unparsed (no flow record, too many connections).", nil, nil)
	descFTPConns     = prometheus.NewDesc("ipfront_ftp_connections", "FTP control connections the helper follows.", nil, nil)
	descHelperPunted = prometheus.NewDesc("ipfront_helper_punted_total", "Segments the workers handed to the helpers (punt_ring_full drops are in ipfront_drops_total).", nil, nil)
	descHelperInj    = prometheus.NewDesc("ipfront_helper_injected_total", "Segments the helpers handed back to the workers.", nil, nil)
	descHelperInjOvf = prometheus.NewDesc("ipfront_helper_inject_overflow_total", "Segments the inject rings refused to the helpers.", nil, nil)
	descHelperCtlOvf = prometheus.NewDesc("ipfront_helper_control_overflow_total", "Expectations and sequence offsets the control rings refused to the helpers.", nil, nil)

	helperDescs = []*prometheus.Desc{descFTPCommands, descFTPRewrites, descFTPInstalled, descFTPUsed, descFTPExpired,
		descFTPExpects, descFTPRefused, descFTPDropped, descFTPResyncs, descFTPUnparsed, descFTPConns, descHelperPunted,
		descHelperInj, descHelperInjOvf, descHelperCtlOvf}
)

// helperCollector exports the helpers' counters.
type helperCollector struct {
	b     Backend
	plane func() Plane
}

// Describe sends every helper metric's description.
func (c helperCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range helperDescs {
		ch <- d
	}
}

// Collect reads the helper's counters and the workers' published ones.
func (c helperCollector) Collect(ch chan<- prometheus.Metric) {
	var total *fastpath.Counters
	if p := c.plane(); p != nil {
		total = snapshotPlane(p).total
	}
	r := helperStats(c.b).reply(total)
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	for _, v := range ftpVerbs {
		counter(descFTPCommands, r.Commands[v], v)
	}
	for _, k := range refusedNotes {
		counter(descFTPRefused, r.Refused[k.String()], k.String())
	}
	for reason, n := range r.Dropped {
		counter(descFTPDropped, n, reason)
	}
	counter(descFTPRewrites, r.Rewrites)
	counter(descFTPInstalled, r.ExpectationsInstalled)
	counter(descFTPUsed, r.ExpectationsUsed)
	counter(descFTPExpired, r.ExpectationsExpired)
	gauge(descFTPExpects, r.Expectations)
	counter(descFTPResyncs, r.Resyncs)
	counter(descFTPUnparsed, r.Unparsed)
	gauge(descFTPConns, r.Connections)
	counter(descHelperPunted, r.Punted)
	counter(descHelperInj, r.Injected)
	counter(descHelperInjOvf, r.InjectOverflow)
	counter(descHelperCtlOvf, r.ControlOverflow)
}
