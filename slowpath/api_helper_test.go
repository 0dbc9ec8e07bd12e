package slowpath

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
	"github.com/ipfront/ipfront/slowpath/config"
	"github.com/ipfront/ipfront/slowpath/helper/ftp"
)

// helperPlane is a Plane of two workers with real shards over the helper
// tests' tables.
type helperPlane struct {
	tables  *fastpath.Tables
	shards  []*assoc.Shard
	counter fastpath.Counters
}

func (p *helperPlane) Interfaces() []fastpath.Interface { return nil }
func (p *helperPlane) Tables() *fastpath.Tables         { return p.tables }
func (p *helperPlane) SteeringStats() (fastpath.SteeringCounts, error) {
	return fastpath.SteeringCounts{}, nil
}
func (p *helperPlane) snapshot(out *fastpath.Counters)       { *out = p.counter }
func (p *helperPlane) put(w int, k assoc.Key, v assoc.Value) { p.shards[w].Put(p.find(w, &k), &k, v) }
func (p *helperPlane) find(w int, k *assoc.Key) int          { i, _ := p.shards[w].Find(k, k.Hash()); return i }
func (p *helperPlane) Workers() []PlaneWorker {
	var out []PlaneWorker
	for q, s := range p.shards {
		snap := p.snapshot // worker 0 holds the counters, worker 1 none
		if q > 0 {
			snap = func(out *fastpath.Counters) { *out = fastpath.Counters{} }
		}
		out = append(out, PlaneWorker{Interface: "eth1", Queue: q, Snapshot: snap, Assoc: s})
	}
	return out
}

// helperBackendFake is a Backend whose only working parts are the helper's
// counters: the expectations endpoint and the helper metrics use nothing
// else.
type helperBackendFake struct {
	Backend
	stats HelperStats
}

func (b *helperBackendFake) HelperStats() *HelperStats { return &b.stats }

// TestExpectationsEndpoint: GET /v1/expectations lists the live
// expectations of every shard (not flows, not expired ones) with their mode
// and server, filters by set, and carries the helper's counters with the
// workers' punt-ring drops and used expectations.
func TestExpectationsEndpoint(t *testing.T) {
	p := &helperPlane{tables: helperTables(t, hVIP, hServer)}
	for range 2 {
		s, err := assoc.NewShard(64)
		if err != nil {
			t.Fatal(err)
		}
		p.shards = append(p.shards, s)
	}
	now := assoc.Now()
	x := func(port uint16) assoc.Key {
		return assoc.Key{Addr: hClient.As16(), Port: port, Proto: packet.ProtoTCP, Set: hSetID, Kind: assoc.KindExpect}
	}
	p.put(0, x(30000), assoc.Value{Server: 0, Gen: hGen, LastSeen: now - 5, NAT: true})
	p.put(1, x(40000), assoc.Value{Server: 0, Gen: hGen, LastSeen: now, NAT: true, Flags: fastpath.ExpectActive, Tag: 20})
	p.put(1, x(30001), assoc.Value{Server: 0, Gen: hGen, LastSeen: now - 31, NAT: true}) // past the set's 30 s
	p.put(0, flowKey(hClient), assoc.Value{Server: 0, Gen: hGen, LastSeen: now, NAT: true})
	p.counter.Drops[fastpath.DropPuntRingFull] = 3
	p.counter.ExpectUsed = 4

	b := &helperBackendFake{}
	b.stats.installed.Add(5)
	b.stats.notes[ftp.NoteBounce].Add(2)
	b.stats.commands[0].Add(6)
	a := New(b, config.API{Listen: "127.0.0.1:0"}, Options{Plane: func() Plane { return p }})

	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		a.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1"+path, nil))
		return rec.Code, rec.Body.String()
	}
	code, body := get("/v1/expectations")
	if code != http.StatusOK {
		t.Fatalf("GET /v1/expectations = %d %s", code, body)
	}
	var got v1.Expectations
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := []v1.Expectation{
		{Worker: "eth1/0", Set: "ftp", Mode: "passive", Client: hClient, Port: 30000, Server: "ftp-a", Address: hServer.String(), Age: 5, ExpiresIn: 25},
		{Worker: "eth1/1", Set: "ftp", Mode: "active", Client: hClient, Port: 40000, Server: "ftp-a", Address: hServer.String(), Age: 0, ExpiresIn: 30},
	}
	if len(got.Expectations) != len(want) || got.Expectations[0] != want[0] || got.Expectations[1] != want[1] {
		t.Fatalf("expectations = %+v, want %+v", got.Expectations, want)
	}
	h := got.Helper
	if h.ExpectationsInstalled != 5 || h.ExpectationsUsed != 4 || h.PuntRingFull != 3 || h.Refused["bounce"] != 2 ||
		h.Commands["PORT"] != 6 {
		t.Fatalf("helper counters = %+v, want installed 5, used 4, punt_ring_full 3, bounce 2, PORT 6", h)
	}
	if code, body = get("/v1/expectations?set=web"); code != http.StatusOK || !strings.Contains(body, `"expectations": []`) {
		t.Fatalf("GET ?set=web = %d %s, want no expectations", code, body)
	}
	if code, _ = get("/v1/expectations?set=nope"); code != http.StatusNotFound {
		t.Fatalf("GET ?set=nope = %d, want 404", code)
	}
	// /metrics as the API registers the helper's collector (the daemon's
	// own collector needs a whole backend).
	reg := prometheus.NewRegistry()
	reg.MustRegister(helperCollector{b, func() Plane { return p }})
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	metrics := rec.Body.String()
	for _, line := range []string{`ipfront_ftp_refused_total{reason="bounce"} 2`, `ipfront_ftp_expectations_used_total 4`,
		`ipfront_ftp_expectations_installed_total 5`, `ipfront_ftp_commands_total{verb="PORT"} 6`} {
		if !strings.Contains(metrics, line) {
			t.Errorf("/metrics lacks %q", line)
		}
	}
}
