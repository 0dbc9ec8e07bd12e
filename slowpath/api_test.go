package slowpath_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/slowpath"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
	"github.com/ipfront/ipfront/slowpath/apitest"
	"github.com/ipfront/ipfront/slowpath/config"
)

var (
	webA     = netip.MustParseAddr("198.51.100.11")
	webB     = netip.MustParseAddr("198.51.100.12")
	dnsSrv   = netip.MustParseAddr("2001:db8::1")
	client1  = netip.MustParseAddr("203.0.113.1")
	client2  = netip.MustParseAddr("203.0.113.2")
	client9  = netip.MustParseAddr("203.0.113.9")
	client6  = netip.MustParseAddr("2001:db8:c::1")
	allAssoc = 35
)

// scenario is a daemon with two target sets on two workers:
//
//	worker eth1/0 (cpu 2): web-a 203.0.113.1:1000-1009, web-b 203.0.113.2:2000-2014
//	worker eth1/1 (unpinned): web-b 203.0.113.2:2015-2019, dns [2001:db8:c::1]:5300-5303,
//	  and 203.0.113.9:9999 made for web-a's slot in an older generation
//
// so web has 31 associations (web-a 10, web-b 20) and dns 4. Traffic:
// web-a 300 packets, web-b 700+200, dns 150; bytes are 100 per packet.
type scenario struct {
	b   *apitest.Backend
	p   *apitest.Plane
	api *slowpath.API
	srv *httptest.Server
}

func newScenario(t *testing.T, cfg config.API) *scenario {
	t.Helper()
	spec := apitest.Spec(t, apitest.ScenarioTOML)
	s := &scenario{b: apitest.NewBackend(spec), p: apitest.NewPlane(t, spec, 64, 2, -1)}
	seen := assoc.Now() - 5
	for port := uint16(1000); port < 1010; port++ {
		s.p.Associate(t, 0, client1, port, packet.ProtoTCP, "web", webA, 0, seen)
	}
	for port := uint16(2000); port < 2020; port++ {
		w := 0
		if port >= 2015 {
			w = 1
		}
		s.p.Associate(t, w, client2, port, packet.ProtoTCP, "web", webB, 0, seen)
	}
	for port := uint16(5300); port < 5304; port++ {
		s.p.Associate(t, 1, client6, port, packet.ProtoUDP, "dns", dnsSrv, 0, seen)
	}
	s.p.Associate(t, 1, client9, 9999, packet.ProtoTCP, "web", webA, 1, seen)

	s.p.Worker(0).Update(func(c *fastpath.Counters) {
		c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes = 1000, 120000, 900, 100000
		c.Drops[fastpath.DropNoServer], c.Drops[packet.Truncated] = 7, 3
		c.NewAssociations, c.Expired, c.Stateless = 25, 2, 1
		c.Unproven, c.FloodStateless, c.TeardownIgnored, c.PartialChecksum = 3, 5, 7, 11
	})
	s.p.Worker(1).Update(func(c *fastpath.Counters) {
		c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes = 500, 60000, 450, 50000
		c.Drops[fastpath.DropTxRingFull] = 2
		c.NewAssociations, c.Reselected, c.ICMPForwarded = 10, 1, 4
		c.Unproven, c.TeardownIgnored, c.SCTPTagMismatch = 1, 2, 13
	})
	s.p.AddServerTraffic(t, 0, "web", webA, 300, 30000)
	s.p.AddServerTraffic(t, 0, "web", webB, 700, 70000)
	s.p.AddServerTraffic(t, 1, "web", webB, 200, 20000)
	s.p.AddServerTraffic(t, 1, "dns", dnsSrv, 150, 15000)
	s.p.SetSteering(fastpath.SteeringCounts{Redirected: 1600, Passed: 40, ShedOpenings: 9})

	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:9180"
	}
	s.api = slowpath.New(s.b, cfg, slowpath.Options{Plane: func() slowpath.Plane { return s.p }})
	s.srv = httptest.NewServer(s.api.Handler())
	t.Cleanup(s.srv.Close)
	return s
}

// do sends a request and returns the status and body, which must be JSON
// except from /metrics and /debug/.
func (s *scenario) do(t *testing.T, method, path string, header ...string) (int, []byte) {
	t.Helper()
	resp, body := s.send(t, method, path, header...)
	if ct := resp.Header.Get("Content-Type"); path != "/metrics" && !strings.HasPrefix(path, "/debug/") && ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return resp.StatusCode, body
}

// send sends a request with optional header pairs and returns the reply
// and its body.
func (s *scenario) send(t *testing.T, method, path string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// get decodes a 200 reply into v.
func get[T any](t *testing.T, s *scenario, path string) T {
	t.Helper()
	code, body := s.do(t, http.MethodGet, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s = %d %s, want 200", path, code, body)
	}
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, body)
	}
	return v
}

// wantError checks a JSON error reply.
func wantError(t *testing.T, s *scenario, method, path string, code int, contains string) slowpath.ErrorReply {
	t.Helper()
	got, body := s.do(t, method, path)
	var e slowpath.ErrorReply
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("%s %s: body %q is not a JSON error (%v)", method, path, body, err)
	}
	if got != code || !strings.Contains(e.Error, contains) {
		t.Fatalf("%s %s = %d %q, want %d with %q", method, path, got, e.Error, code, contains)
	}
	return e
}

func TestStatus(t *testing.T) {
	s := newScenario(t, config.API{})
	s.p.Worker(0).Update(func(c *fastpath.Counters) { c.Unproven = 32 })
	s.b.SetAlarms([]slowpath.Alarm{{ID: "table-full-eth1/0-1", Kind: slowpath.AlarmTableFull, Worker: "eth1/0", Active: true},
		{ID: "table-full-eth1/1-1", Kind: slowpath.AlarmTableFull, Worker: "eth1/1", Active: false}})
	st := get[slowpath.StatusReply](t, s, "/v1/status")
	if !st.Ready || st.Generation != 1 {
		t.Errorf("ready, generation = %v, %d, want true, 1", st.Ready, st.Generation)
	}
	if len(st.Interfaces) != 1 || st.Interfaces[0].Name != "eth1" || st.Interfaces[0].Index != 3 ||
		!slices.Equal(st.Interfaces[0].Queues, []int{0, 1}) {
		t.Errorf("interfaces = %+v", st.Interfaces)
	}
	want := []slowpath.WorkerStatus{
		{Name: "eth1/0", Interface: "eth1", Queue: 0, CPU: 2, Associations: 25, Capacity: 64, RxPackets: 1000, TxPackets: 900,
			Unproven: 32, UnprovenLimit: 32, TableFull: true},
		{Name: "eth1/1", Interface: "eth1", Queue: 1, CPU: -1, Associations: 10, Capacity: 64, RxPackets: 500, TxPackets: 450,
			Unproven: 1, UnprovenLimit: 32},
	}
	if !slices.Equal(st.Workers, want) {
		t.Errorf("workers = %+v\nwant %+v", st.Workers, want)
	}

	s.b.SetReady(false)
	code, body := s.do(t, http.MethodGet, "/v1/status")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), `"ready": false`) {
		t.Errorf("not ready: GET /v1/status = %d %s, want 503 with ready false", code, body)
	}
}

func TestStatusWithoutDataplane(t *testing.T) {
	b := apitest.NewBackend(apitest.Spec(t, apitest.ScenarioTOML))
	srv := httptest.NewServer(slowpath.New(b, config.API{Listen: "127.0.0.1:9180"}, slowpath.Options{}).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	// Empty lists, not null, so clients can iterate without checks.
	if w, ok := st["workers"].([]any); !ok || len(w) != 0 {
		t.Errorf("workers = %#v, want []", st["workers"])
	}
	resp2, err := http.Get(srv.URL + "/v1/counters")
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /v1/counters without data plane = %d, want 503", resp2.StatusCode)
	}
}

func TestCounters(t *testing.T) {
	s := newScenario(t, config.API{})
	c := get[slowpath.CountersReply](t, s, "/v1/counters")
	if c.RxPackets != 1500 || c.RxBytes != 180000 || c.TxPackets != 1350 || c.TxBytes != 150000 {
		t.Errorf("rx/tx = %d %d %d %d, want 1500 180000 1350 150000", c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes)
	}
	if c.Dropped != 12 || c.Associations != 35 || c.NewAssociations != 35 || c.Reselected != 1 || c.Expired != 2 ||
		c.Stateless != 1 || c.ICMPForwarded != 4 || c.SteeredToXSK != 1600 || c.PassedToKernel != 40 || c.ShedOpenings != 9 {
		t.Errorf("totals = %+v", c)
	}
	if len(c.Drops) != int(fastpath.NumReasons)-1 {
		t.Errorf("drops has %d reasons, want every one of %d", len(c.Drops), fastpath.NumReasons-1)
	}
	for r, n := range map[string]uint64{"no_server": 7, packet.Truncated.String(): 3, "tx_ring_full": 2, "no_target_set": 0} {
		if got, ok := c.Drops[r]; !ok || got != n {
			t.Errorf("drops[%s] = %d (present %v), want %d", r, got, ok, n)
		}
	}
	if len(c.Workers) != 2 || c.Workers[0].Name != "eth1/0" || c.Workers[0].RxPackets != 1000 || c.Workers[0].Dropped != 10 ||
		c.Workers[0].Drops["no_server"] != 7 || c.Workers[1].Associations != 10 || c.Workers[1].Capacity != 64 ||
		c.Workers[1].ICMPForwarded != 4 || c.Workers[1].Reselected != 1 {
		t.Errorf("workers = %+v", c.Workers)
	}
	// The flood and teardown defences, per worker and in totals (the
	// unproven limit is half of each 64-record shard).
	wantDef := []v1.Defences{{Unproven: 3, UnprovenLimit: 32, FloodStateless: 5, TeardownIgnored: 7, PartialChecksum: 11},
		{Unproven: 1, UnprovenLimit: 32, TeardownIgnored: 2, SCTPTagMismatch: 13}}
	if c.Defences != (v1.Defences{Unproven: 4, UnprovenLimit: 64, FloodStateless: 5, TeardownIgnored: 9, SCTPTagMismatch: 13, PartialChecksum: 11}) {
		t.Errorf("defence totals = %+v", c.Defences)
	}
	for i := range c.Workers {
		if i < len(wantDef) && c.Workers[i].Defences != wantDef[i] {
			t.Errorf("worker %s defences = %+v, want %+v", c.Workers[i].Name, c.Workers[i].Defences, wantDef[i])
		}
	}
	want := map[string]slowpath.ServerCounters{
		"web-a":       {Set: "web", Name: "web-a", Address: "198.51.100.11", Weight: 1, Packets: 300, Bytes: 30000},
		"web-b":       {Set: "web", Name: "web-b", Address: "198.51.100.12", Weight: 3, Packets: 900, Bytes: 90000},
		"2001:db8::1": {Set: "dns", Name: "2001:db8::1", Address: "2001:db8::1", Weight: 1, Packets: 150, Bytes: 15000},
	}
	if len(c.Servers) != len(want) {
		t.Errorf("servers = %+v", c.Servers)
	}
	for _, sc := range c.Servers {
		if sc != want[sc.Name] {
			t.Errorf("server %s = %+v, want %+v", sc.Name, sc, want[sc.Name])
		}
	}
}

func TestSets(t *testing.T) {
	s := newScenario(t, config.API{})
	r := get[slowpath.SetsReply](t, s, "/v1/sets")
	want := []slowpath.SetInfo{
		{Name: "web", VIP: netip.MustParseAddr("192.0.2.10"), Protocols: []string{"tcp"}, Ports: []string{"80", "443"},
			Method: "hash", Forwarding: "dsr", DeleteAge: "30s", Servers: 2, Associations: 31},
		{Name: "dns", VIP: netip.MustParseAddr("2001:db8::53"), Protocols: []string{"udp"}, Ports: []string{"53"},
			Method: "hash", Forwarding: "dsr", DeleteAge: "10m0s", Servers: 1, Associations: 4},
	}
	if len(r.Sets) != len(want) {
		t.Fatalf("sets = %+v", r.Sets)
	}
	for i, got := range r.Sets {
		w := want[i]
		w.TableSize = got.TableSize
		if got.TableSize < 251 || fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("set %d = %+v\nwant %+v", i, got, w)
		}
	}
}

func TestServers(t *testing.T) {
	s := newScenario(t, config.API{})
	t0 := time.Unix(1000, 0)
	s.api.SampleRates(t0)
	s.p.AddServerTraffic(t, 0, "web", webB, 100, 10000)
	s.p.Worker(0).Update(func(c *fastpath.Counters) { c.RxPackets += 200; c.TxPackets += 100 })
	s.api.SampleRates(t0.Add(2 * time.Second))

	r := get[slowpath.ServersReply](t, s, "/v1/servers")
	if r.Interval != 2 {
		t.Errorf("interval = %v, want 2", r.Interval)
	}
	type row struct {
		set, name     string
		assoc         int
		pkts, bytes   uint64
		pps, bps      float64
		share         float64
		weight, eff   int
		healthy, resv bool
	}
	want := []row{
		{"web", "web-a", 10, 300, 30000, 0, 0, 300.0 / 1300, 1, 1, true, true},
		{"web", "web-b", 20, 1000, 100000, 50, 40000, 1000.0 / 1300, 3, 3, true, true},
		{"dns", "2001:db8::1", 4, 150, 15000, 0, 0, 1, 1, 1, true, true},
	}
	if len(r.Servers) != len(want) {
		t.Fatalf("servers = %+v", r.Servers)
	}
	for i, got := range r.Servers {
		g := row{got.Set, got.Name, got.Associations, got.Packets, got.Bytes, got.PPS, got.BPS, got.Share,
			got.Weight, int(got.EffectiveWeight), got.Healthy, got.Resolved}
		if g != want[i] {
			t.Errorf("server %d = %+v\nwant %+v", i, g, want[i])
		}
	}

	st := get[slowpath.StatusReply](t, s, "/v1/status")
	if st.Workers[0].RxPPS != 100 || st.Workers[0].TxPPS != 50 || st.Workers[1].RxPPS != 0 {
		t.Errorf("worker rates = %+v", st.Workers)
	}

	web := get[slowpath.ServersReply](t, s, "/v1/servers?set=web")
	if len(web.Servers) != 2 || web.Servers[0].Name != "web-a" || web.Servers[1].Name != "web-b" {
		t.Errorf("?set=web = %+v", web.Servers)
	}
	wantError(t, s, http.MethodGet, "/v1/servers?set=nope", http.StatusNotFound, `no target set "nope"`)
}

// page fetches associations page by page and returns them with the number
// of pages.
func pages(t *testing.T, s *scenario, query string, limit int, between func(page int)) ([]slowpath.AssociationInfo, int) {
	t.Helper()
	var all []slowpath.AssociationInfo
	cursor := ""
	for n := 1; ; n++ {
		path := fmt.Sprintf("/v1/associations?limit=%d%s", limit, query)
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := get[slowpath.AssociationsReply](t, s, path)
		if len(r.Associations) > limit {
			t.Fatalf("page %d has %d entries, limit %d", n, len(r.Associations), limit)
		}
		all = append(all, r.Associations...)
		if r.NextCursor == "" {
			return all, n
		}
		if len(r.Associations) != limit {
			t.Fatalf("page %d has %d entries and a cursor; only a full page may be followed by another", n, len(r.Associations))
		}
		if between != nil {
			between(n)
		}
		cursor = r.NextCursor
		if n > 100 {
			t.Fatal("cursor never ends")
		}
	}
}

func flowID(a slowpath.AssociationInfo) string {
	return fmt.Sprintf("%s/%s/%d/%s", a.Set, a.Client, a.Port, a.Protocol)
}

func TestAssociationsPagination(t *testing.T) {
	s := newScenario(t, config.API{})
	one := get[slowpath.AssociationsReply](t, s, "/v1/associations?limit=1000")
	if len(one.Associations) != allAssoc || one.NextCursor != "" {
		t.Fatalf("one page: %d associations, cursor %q; want %d, none", len(one.Associations), one.NextCursor, allAssoc)
	}
	def := get[slowpath.AssociationsReply](t, s, "/v1/associations")
	if len(def.Associations) != allAssoc {
		t.Errorf("default limit returned %d, want all %d", len(def.Associations), allAssoc)
	}
	for _, limit := range []int{1, 7, 10, 34, 35} {
		got, n := pages(t, s, "", limit, nil)
		if wantPages := (allAssoc + limit - 1) / limit; n != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, n, wantPages)
		}
		if !slices.EqualFunc(got, one.Associations, func(a, b slowpath.AssociationInfo) bool { return flowID(a) == flowID(b) }) {
			t.Errorf("limit %d: pages do not concatenate to the single-page listing", limit)
		}
	}
	// Shard order first: every eth1/0 entry precedes every eth1/1 entry.
	last := ""
	for _, a := range one.Associations {
		if a.Worker < last {
			t.Fatalf("listing goes back from %s to %s", last, a.Worker)
		}
		last = a.Worker
	}
}

// Flows added while a client pages through do not shift the cursor: every
// flow present throughout is listed exactly once.
func TestAssociationsCursorStableUnderInserts(t *testing.T) {
	s := newScenario(t, config.API{})
	got, _ := pages(t, s, "", 6, func(page int) {
		for i := range 4 {
			port := uint16(30000 + 10*page + i)
			s.p.Associate(t, i%2, client9, port, packet.ProtoTCP, "web", webB, 0, assoc.Now())
		}
	})
	seen := map[string]int{}
	for _, a := range got {
		seen[flowID(a)]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s listed %d times", id, n)
		}
	}
	if len(seen) < allAssoc {
		t.Errorf("%d distinct flows listed, want at least the %d present throughout", len(seen), allAssoc)
	}
}

func TestAssociationsFilters(t *testing.T) {
	s := newScenario(t, config.API{})
	for _, tc := range []struct {
		query string
		want  int
		check func(slowpath.AssociationInfo) bool
	}{
		{"set=dns", 4, func(a slowpath.AssociationInfo) bool {
			return a.Set == "dns" && a.Protocol == "udp" && a.Server == "2001:db8::1" && a.Client == client6 && a.Worker == "eth1/1"
		}},
		{"set=web", 31, func(a slowpath.AssociationInfo) bool { return a.Set == "web" }},
		{"client=203.0.113.1", 10, func(a slowpath.AssociationInfo) bool {
			return a.Client == client1 && a.Server == "web-a" && a.Address == "198.51.100.11" && a.Idle >= 5 && a.Idle <= 6
		}},
		{"server=web-b", 20, func(a slowpath.AssociationInfo) bool { return a.Server == "web-b" }},
		{"server=198.51.100.12&set=web&client=203.0.113.2", 20, func(a slowpath.AssociationInfo) bool { return a.Address == "198.51.100.12" }},
		// The association made for web-a's slot in an older generation is
		// not web-a's.
		{"server=198.51.100.11", 10, func(a slowpath.AssociationInfo) bool { return a.Client == client1 }},
		{"client=203.0.113.9", 1, func(a slowpath.AssociationInfo) bool {
			return a.Server == "" && a.Address == "" && a.Set == "web" && a.Port == 9999
		}},
		{"client=2001:db8:c::1&set=web", 0, nil},
	} {
		for _, limit := range []int{3, 100} {
			got, _ := pages(t, s, "&"+tc.query, limit, nil)
			if len(got) != tc.want {
				t.Errorf("?%s (limit %d): %d associations, want %d", tc.query, limit, len(got), tc.want)
			}
			for _, a := range got {
				if !tc.check(a) {
					t.Errorf("?%s: unexpected %+v", tc.query, a)
				}
			}
		}
	}
	wantError(t, s, http.MethodGet, "/v1/associations?client=nope", http.StatusBadRequest, "not an IP address")
	wantError(t, s, http.MethodGet, "/v1/associations?limit=0", http.StatusBadRequest, "limit")
	wantError(t, s, http.MethodGet, "/v1/associations?limit=x", http.StatusBadRequest, "limit")
	wantError(t, s, http.MethodGet, "/v1/associations?cursor=AAAA", http.StatusBadRequest, "cursor")
	wantError(t, s, http.MethodGet, "/v1/associations?set=nope", http.StatusNotFound, "nope")
}

func TestAlarms(t *testing.T) {
	s := newScenario(t, config.API{})
	code, body := s.do(t, http.MethodGet, "/v1/alarms")
	if code != http.StatusOK || !strings.Contains(string(body), `"alarms": []`) {
		t.Errorf("no alarms: %d %s, want 200 with an empty list", code, body)
	}
	raised := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	alarms := []slowpath.Alarm{
		{ID: "web-1", Set: "web", Active: true, Raised: raised, Deviation: 0.25, Servers: []slowpath.AlarmServer{
			{Name: "web-a", Address: "198.51.100.11", WeightShare: 0.25, PacketShare: 0.5, AssocShare: 0.45}}},
		{ID: "dns-1", Set: "dns", Raised: raised, Cleared: raised.Add(time.Minute), Deviation: 0.1, Servers: []slowpath.AlarmServer{}},
	}
	s.b.SetAlarms(alarms)
	r := get[slowpath.AlarmsReply](t, s, "/v1/alarms")
	if fmt.Sprint(r.Alarms) != fmt.Sprint(alarms) {
		t.Errorf("alarms = %+v\nwant %+v", r.Alarms, alarms)
	}
}

func TestReload(t *testing.T) {
	s := newScenario(t, config.API{})
	code, body := s.do(t, http.MethodPost, "/v1/reload")
	if code != http.StatusOK || !strings.Contains(string(body), `"generation": 2`) || strings.Contains(string(body), "not_applied") {
		t.Errorf("POST /v1/reload = %d %s, want 200 generation 2", code, body)
	}
	// Keys a reload could not apply are in the reply.
	s.b.SetNotApplied([]string{"log.level", "log.format"})
	code, body = s.do(t, http.MethodPost, "/v1/reload")
	var res slowpath.ReloadReply
	if err := json.Unmarshal(body, &res); code != http.StatusOK || err != nil || res.Generation != 3 ||
		!slices.Equal(res.NotApplied, []string{"log.level", "log.format"}) {
		t.Errorf("POST /v1/reload with keys not applied = %d %s, want 200, generation 3, not_applied [log.level log.format]", code, body)
	}
	s.b.SetNotApplied(nil)

	s.b.SetReloadError(config.Errors{
		{File: "/etc/ipfront.toml", Line: 3, Column: 1, Msg: "unknown key batch_sise", Hint: `did you mean "batch_size"?`},
		{File: "/etc/ipfront.toml", Line: 7, Column: 11, Msg: `invalid address "192.0.2.300"`},
	})
	e := wantError(t, s, http.MethodPost, "/v1/reload", http.StatusUnprocessableEntity, "invalid configuration")
	want := []string{
		`/etc/ipfront.toml:3:1: unknown key batch_sise (hint: did you mean "batch_size"?)`,
		`/etc/ipfront.toml:7:11: invalid address "192.0.2.300"`,
	}
	if !slices.Equal(e.Errors, want) {
		t.Errorf("422 errors = %q\nwant %q", e.Errors, want)
	}

	s.b.SetReloadError(fmt.Errorf("/etc/ipfront.toml: [dataplane] or [api] changed: %w", slowpath.ErrRestartNeeded))
	wantError(t, s, http.MethodPost, "/v1/reload", http.StatusConflict, "restart")
	s.b.SetReloadError(errors.New("apply: boom"))
	wantError(t, s, http.MethodPost, "/v1/reload", http.StatusInternalServerError, "boom")
	wantError(t, s, http.MethodGet, "/v1/reload", http.StatusMethodNotAllowed, "method not allowed")
	if n := s.b.Reloads(); n != 5 {
		t.Errorf("backend saw %d reloads, want 5", n)
	}
}

func TestDrainEnable(t *testing.T) {
	s := newScenario(t, config.API{})
	code, body := s.do(t, http.MethodPost, "/v1/servers/web/web-b/drain")
	var st slowpath.ServerState
	if err := json.Unmarshal(body, &st); code != http.StatusOK || err != nil || !st.Drained || st.EffectiveWeight != 0 || st.Address != webB {
		t.Fatalf("drain = %d %s", code, body)
	}
	r := get[slowpath.ServersReply](t, s, "/v1/servers?set=web")
	if !r.Servers[1].Drained || r.Servers[1].EffectiveWeight != 0 || r.Servers[0].Drained {
		t.Errorf("after drain: %+v", r.Servers)
	}
	code, body = s.do(t, http.MethodPost, "/v1/servers/web/198.51.100.12/enable")
	if err := json.Unmarshal(body, &st); code != http.StatusOK || err != nil || st.Drained || st.EffectiveWeight != 3 {
		t.Fatalf("enable by address = %d %s", code, body)
	}
	wantError(t, s, http.MethodPost, "/v1/servers/web/nope/drain", http.StatusNotFound, `no server "nope"`)
	wantError(t, s, http.MethodPost, "/v1/servers/nope/web-a/enable", http.StatusNotFound, `no target set "nope"`)
	wantError(t, s, http.MethodGet, "/v1/servers/web/web-a/drain", http.StatusMethodNotAllowed, "method not allowed")
	wantError(t, s, http.MethodGet, "/v1/nothing", http.StatusNotFound, "not found")
}

func TestTokenRequiredBeyondLoopback(t *testing.T) {
	s := newScenario(t, config.API{Listen: "0.0.0.0:9180", Token: "s3cret"})
	for _, path := range []string{"/v1/status", "/metrics", "/v1/nothing"} {
		basicWrong := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:wrong"))
		for _, hdr := range [][]string{nil, {"Authorization", "Bearer wrong"}, {"Authorization", "s3cret"}, {"Authorization", "Basic s3cret"},
			{"Authorization", basicWrong}} {
			code, body := s.do(t, http.MethodGet, path, hdr...)
			if code != http.StatusUnauthorized || !strings.Contains(string(body), `"error"`) {
				t.Errorf("GET %s with %q = %d %s, want 401", path, hdr, code, body)
			}
		}
		if code, body := s.do(t, http.MethodGet, path, "Authorization", "Bearer s3cret"); code == http.StatusUnauthorized {
			t.Errorf("GET %s with the token = 401 %s", path, body)
		}
		// A browser (the status page) sends the token as a Basic password.
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("anyone:s3cret"))
		if code, body := s.do(t, http.MethodGet, path, "Authorization", basic); code == http.StatusUnauthorized {
			t.Errorf("GET %s with the token as Basic password = 401 %s", path, body)
		}
	}
	code, _ := s.do(t, http.MethodPost, "/v1/reload", "Authorization", "Bearer s3cret")
	if code != http.StatusOK {
		t.Errorf("authorized reload = %d", code)
	}
	if code, _ := s.do(t, http.MethodPost, "/v1/servers/web/web-a/drain"); code != http.StatusUnauthorized {
		t.Errorf("drain without token = %d, want 401", code)
	}

	// A listener beyond loopback without a token (a spec that skipped
	// validation) refuses everything rather than serving openly.
	open := newScenario(t, config.API{Listen: "[::]:9180"})
	for _, hdr := range [][]string{nil, {"Authorization", "Bearer "}} {
		if code, _ := open.do(t, http.MethodGet, "/v1/status", hdr...); code != http.StatusUnauthorized {
			t.Errorf("tokenless non-loopback listener with %q = %d, want 401", hdr, code)
		}
	}
}

func TestNoTokenOnLoopback(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:9180", "[::1]:9180", "localhost:9180", "unix:/run/ipfront/api.sock"} {
		s := newScenario(t, config.API{Listen: listen})
		if code, body := s.do(t, http.MethodGet, "/v1/status"); code != http.StatusOK {
			t.Errorf("%s: GET /v1/status without token = %d %s, want 200", listen, code, body)
		}
	}
}

func TestLoopbackListen(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:9180": true, "127.1.2.3:1": true, "[::1]:9180": true, "localhost:9180": true, "unix:/x.sock": true,
		"0.0.0.0:9180": false, ":9180": false, "[::]:9180": false, "192.0.2.1:9180": false, "example.com:80": false, "junk": false,
	} {
		if got := slowpath.LoopbackListen(listen); got != want {
			t.Errorf("LoopbackListen(%q) = %v, want %v", listen, got, want)
		}
	}
}

func TestPprof(t *testing.T) {
	on := newScenario(t, config.API{PProf: true})
	if code, body := on.do(t, http.MethodGet, "/debug/pprof/"); code != http.StatusOK || !strings.Contains(string(body), "goroutine") {
		t.Errorf("pprof on: GET /debug/pprof/ = %d", code)
	}
	if code, _ := on.do(t, http.MethodGet, "/debug/pprof/cmdline"); code != http.StatusOK {
		t.Errorf("pprof on: GET /debug/pprof/cmdline = %d", code)
	}
	off := newScenario(t, config.API{})
	if code, _ := off.do(t, http.MethodGet, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("pprof off: GET /debug/pprof/ = %d, want 404", code)
	}
	// Behind the token like everything else.
	tok := newScenario(t, config.API{Listen: "0.0.0.0:1", Token: "t", PProf: true})
	if code, _ := tok.do(t, http.MethodGet, "/debug/pprof/"); code != http.StatusUnauthorized {
		t.Errorf("pprof without token = %d, want 401", code)
	}
}
