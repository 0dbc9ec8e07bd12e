package slowpath_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/internal/version"
	"github.com/ipfront/ipfront/slowpath"
	"github.com/ipfront/ipfront/slowpath/apitest"
	"github.com/ipfront/ipfront/slowpath/config"
)

// ringPlane is the fake plane whose workers also report ring depths, as the
// real data plane's do.
type ringPlane struct {
	*apitest.Plane
	rings []fastpath.RingOccupancy
}

func (p ringPlane) Workers() []slowpath.PlaneWorker {
	ws := p.Plane.Workers()
	for i := range ws {
		r := p.rings[i]
		ws[i].Rings = func() fastpath.RingOccupancy { return r }
	}
	return ws
}

// TestOpsMetrics: the operators' metrics in /metrics: the build's identity,
// each worker's busy and idle seconds (from the nanoseconds the workers
// publish), UMEM frames by state and ring depths.
func TestOpsMetrics(t *testing.T) {
	s := newScenario(t, config.API{})
	s.p.Worker(0).Update(func(c *fastpath.Counters) {
		c.BusyNanos, c.IdleNanos = 1_500_000_000, 8_500_000_000
		c.UMEMFrames, c.UMEMFree, c.UMEMFillRx, c.UMEMHeld, c.UMEMTx = 4096, 2000, 2048, 16, 32
	})
	s.p.Worker(1).Update(func(c *fastpath.Counters) { c.BusyNanos, c.IdleNanos = 250_000_000, 750_000_000 })
	plane := ringPlane{s.p, []fastpath.RingOccupancy{
		{Punt: fastpath.RingDepth{Queued: 3, Capacity: 512}, Inject: fastpath.RingDepth{Capacity: 128}, Control: fastpath.RingDepth{Queued: 70, Capacity: 4096}},
		{Punt: fastpath.RingDepth{Capacity: 512}, Inject: fastpath.RingDepth{Queued: 1, Capacity: 128}, Control: fastpath.RingDepth{Capacity: 4096}},
	}}
	api := slowpath.New(s.b, config.API{Listen: "127.0.0.1:9180"}, slowpath.Options{Plane: func() slowpath.Plane { return plane }})
	v := version.Get()
	want := `
# HELP ipfront_build_info Always 1; the labels say which build runs: version (a release's, else the module's), VCS revision, Go version.
# TYPE ipfront_build_info gauge
ipfront_build_info{goversion="` + v.GoVersion + `",revision="` + v.Revision + `",version="` + v.Version + `"} 1
# HELP ipfront_worker_busy_seconds_total Time the worker's loop spent in iterations that received frames. Utilisation = rate(busy) / (rate(busy) + rate(idle)); busy polling keeps busy+idle at one second per second.
# TYPE ipfront_worker_busy_seconds_total counter
ipfront_worker_busy_seconds_total{worker="eth1/0"} 1.5
ipfront_worker_busy_seconds_total{worker="eth1/1"} 0.25
# HELP ipfront_worker_idle_seconds_total Time the worker's loop spent in iterations that found its RX ring empty, spinning or sleeping in poll(2).
# TYPE ipfront_worker_idle_seconds_total counter
ipfront_worker_idle_seconds_total{worker="eth1/0"} 8.5
ipfront_worker_idle_seconds_total{worker="eth1/1"} 0.75
# HELP ipfront_umem_capacity_frames Frames of the worker's UMEM.
# TYPE ipfront_umem_capacity_frames gauge
ipfront_umem_capacity_frames{worker="eth1/0"} 4096
# HELP ipfront_umem_frames The worker's UMEM frames by where they are, refreshed every second: free, fill_rx (fill ring, being received into, or waiting on the RX ring), held (the worker's), tx (TX and completion rings).
# TYPE ipfront_umem_frames gauge
ipfront_umem_frames{state="fill_rx",worker="eth1/0"} 2048
ipfront_umem_frames{state="free",worker="eth1/0"} 2000
ipfront_umem_frames{state="held",worker="eth1/0"} 16
ipfront_umem_frames{state="tx",worker="eth1/0"} 32
# HELP ipfront_ring_entries Entries waiting in the worker's rings with the slow path: punt (frames for the slow path), inject (frames for the worker to send), control (shard changes for the worker).
# TYPE ipfront_ring_entries gauge
ipfront_ring_entries{ring="control",worker="eth1/0"} 70
ipfront_ring_entries{ring="control",worker="eth1/1"} 0
ipfront_ring_entries{ring="inject",worker="eth1/0"} 0
ipfront_ring_entries{ring="inject",worker="eth1/1"} 1
ipfront_ring_entries{ring="punt",worker="eth1/0"} 3
ipfront_ring_entries{ring="punt",worker="eth1/1"} 0
`
	names := []string{"ipfront_build_info", "ipfront_worker_busy_seconds_total", "ipfront_worker_idle_seconds_total",
		"ipfront_umem_capacity_frames", "ipfront_umem_frames", "ipfront_ring_entries"}
	if err := testutil.GatherAndCompare(api.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(api.Registry(), "ipfront_ring_capacity_entries"); err != nil || n != 6 {
		t.Errorf("ipfront_ring_capacity_entries series = %d, %v; want 6 (3 rings, 2 workers)", n, err)
	}
}

// TestMetricNames: MetricNames lists what the registry exports, including
// families a scrape shows only when their feature is in use, so the
// dashboards' test can check against it.
func TestMetricNames(t *testing.T) {
	names := slowpath.MetricNames()
	for _, want := range []string{"ipfront_build_info", "ipfront_rx_packets_total", "ipfront_server_up", "ipfront_ha_mate_up",
		"ipfront_config_last_reload_successful", "ipfront_worker_busy_seconds_total", "process_cpu_seconds_total"} {
		if !slices.Contains(names, want) {
			t.Errorf("MetricNames() lacks %s", want)
		}
	}
	s := newScenario(t, config.API{})
	mfs, err := s.api.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !slices.Contains(names, mf.GetName()) {
			t.Errorf("/metrics exports %s, which MetricNames() = %q lacks", mf.GetName(), names)
		}
	}
}
