package slowpath

import (
	"regexp"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/internal/version"
)

// metricCollectors is everything /metrics exports, in one list so that the
// API's registry and MetricNames (which the dashboards' test checks them
// against) cannot drift apart.
func metricCollectors(b Backend, plane func() Plane) []prometheus.Collector {
	return []prometheus.Collector{newCollector(b, plane), helperCollector{b, plane}, persistCollector{plane}, haCollector{b},
		opsCollector{b, plane},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}
}

// fqName digs a metric's name out of its description: client_golang keeps
// it unexported, and its String form is stable (`Desc{fqName: "...", ...`).
var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// MetricNames lists the name of every metric family /metrics can export,
// sorted: those a running daemon shows only when a feature is in use
// (HA mates, helpers) included. Counters carry their _total suffix.
func MetricNames() []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, c := range metricCollectors(nil, func() Plane { return nil }) {
			c.Describe(ch)
		}
		close(ch)
	}()
	seen := map[string]bool{}
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			seen[m[1]] = true
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Operators' metrics (issue 13): which build runs, whether the last reload
// took, how busy each worker's loop is, where its UMEM frames are and how
// full its rings with the slow path are. Read at scrape time like the rest.
var (
	descBuildInfo     = prometheus.NewDesc("ipfront_build_info", "Always 1; the labels say which build runs: version (a release's, else the module's), VCS revision, Go version.", []string{"version", "revision", "goversion"}, nil)
	descReloadOK      = prometheus.NewDesc("ipfront_config_last_reload_successful", "1 if the last configuration reload (SIGHUP, ctl reload) was applied, or none was tried since start; 0 if it was refused and nothing changed.", nil, nil)
	descReloadOKTime  = prometheus.NewDesc("ipfront_config_last_reload_success_timestamp_seconds", "Unix time of the last successful configuration reload, or of the start.", nil, nil)
	descReloads       = prometheus.NewDesc("ipfront_config_reloads_total", "Configuration reloads since start, by result (success, failure).", []string{"result"}, nil)
	descBusySeconds   = prometheus.NewDesc("ipfront_worker_busy_seconds_total", "Time the worker's loop spent in iterations that received frames. Utilisation = rate(busy) / (rate(busy) + rate(idle)); busy polling keeps busy+idle at one second per second.", workerLabel, nil)
	descIdleSeconds   = prometheus.NewDesc("ipfront_worker_idle_seconds_total", "Time the worker's loop spent in iterations that found its RX ring empty, spinning or sleeping in poll(2).", workerLabel, nil)
	descUMEMFrames    = prometheus.NewDesc("ipfront_umem_frames", "The worker's UMEM frames by where they are, refreshed every second: free, fill_rx (fill ring, being received into, or waiting on the RX ring), held (the worker's), tx (TX and completion rings).", []string{"worker", "state"}, nil)
	descUMEMCapacity  = prometheus.NewDesc("ipfront_umem_capacity_frames", "Frames of the worker's UMEM.", workerLabel, nil)
	descRingEntries   = prometheus.NewDesc("ipfront_ring_entries", "Entries waiting in the worker's rings with the slow path: punt (frames for the slow path), inject (frames for the worker to send), control (shard changes for the worker).", []string{"worker", "ring"}, nil)
	descRingCapacity  = prometheus.NewDesc("ipfront_ring_capacity_entries", "Entries the worker's ring with the slow path holds at most.", []string{"worker", "ring"}, nil)
	opsDescs          = []*prometheus.Desc{descBuildInfo, descReloadOK, descReloadOKTime, descReloads, descBusySeconds, descIdleSeconds, descUMEMFrames, descUMEMCapacity, descRingEntries, descRingCapacity}
	buildInfoLabels   = func() [3]string { v := version.Get(); return [3]string{v.Version, v.Revision, v.GoVersion} }()
	nanosecondsPerSec = 1e9
)

// opsCollector exports the operators' metrics above.
type opsCollector struct {
	b     Backend
	plane func() Plane
}

// Describe sends every metric's description.
func (c opsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range opsDescs {
		ch <- d
	}
}

// Collect reads the build, the backend's reload record and each worker's
// published counters and ring depths.
func (c opsCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descBuildInfo, 1, buildInfoLabels[:]...)
	if r, ok := c.b.(ReloadReporter); ok {
		st := r.LastReload()
		gauge(descReloadOK, b2f(st.Successful))
		gauge(descReloadOKTime, float64(st.LastSuccess.UnixNano())/nanosecondsPerSec)
		counter(descReloads, float64(st.Reloads), "success")
		counter(descReloads, float64(st.Failures), "failure")
	}
	p := c.plane()
	if p == nil {
		return
	}
	var wc fastpath.Counters
	for _, w := range p.Workers() {
		name := w.Name()
		w.Snapshot(&wc)
		counter(descBusySeconds, float64(wc.BusyNanos)/nanosecondsPerSec, name)
		counter(descIdleSeconds, float64(wc.IdleNanos)/nanosecondsPerSec, name)
		if wc.UMEMFrames > 0 { // zero: the port keeps no accounting
			gauge(descUMEMCapacity, float64(wc.UMEMFrames), name)
			gauge(descUMEMFrames, float64(wc.UMEMFree), name, "free")
			gauge(descUMEMFrames, float64(wc.UMEMFillRx), name, "fill_rx")
			gauge(descUMEMFrames, float64(wc.UMEMHeld), name, "held")
			gauge(descUMEMFrames, float64(wc.UMEMTx), name, "tx")
		}
		if w.Rings != nil {
			r := w.Rings()
			for _, ring := range []struct {
				name string
				d    fastpath.RingDepth
			}{{"punt", r.Punt}, {"inject", r.Inject}, {"control", r.Control}} {
				gauge(descRingEntries, float64(ring.d.Queued), name, ring.name)
				gauge(descRingCapacity, float64(ring.d.Capacity), name, ring.name)
			}
		}
	}
}
