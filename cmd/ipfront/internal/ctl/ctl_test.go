package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"reflect"
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
	webA = netip.MustParseAddr("198.51.100.11")
	webB = netip.MustParseAddr("198.51.100.12")
	dns1 = netip.MustParseAddr("2001:db8::1")
)

// daemon is a fake daemon behind a real API handler: web-a has 3
// associations and 40000 packets, web-b 6 and 120000 (1.2 GB), dns 2 and
// 500; web-b's rate is 250 pps.
type daemon struct {
	b   *apitest.Backend
	p   *apitest.Plane
	srv *httptest.Server
	api string // --api value
}

func newDaemon(t *testing.T, cfg config.API) *daemon {
	t.Helper()
	spec := apitest.Spec(t, apitest.ScenarioTOML)
	d := &daemon{b: apitest.NewBackend(spec), p: apitest.NewPlane(t, spec, 1024, 0, 1)}
	now := assoc.Now()
	client := netip.MustParseAddr("203.0.113.7")
	for i := range 3 {
		d.p.Associate(t, 0, client, uint16(1000+i), packet.ProtoTCP, "web", webA, 0, now)
	}
	for i := range 6 {
		d.p.Associate(t, i%2, client, uint16(2000+i), packet.ProtoTCP, "web", webB, 0, now)
	}
	for i := range 2 {
		d.p.Associate(t, 1, netip.MustParseAddr("2001:db8:c::7"), uint16(5300+i), packet.ProtoUDP, "dns", dns1, 0, now)
	}
	d.p.AddServerTraffic(t, 0, "web", webA, 40000, 4000000)
	d.p.AddServerTraffic(t, 1, "web", webB, 120000, 1200000000)
	d.p.AddServerTraffic(t, 1, "dns", dns1, 500, 50000)
	d.p.Worker(0).Update(func(c *fastpath.Counters) {
		c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes = 40000, 4000000, 40000, 4000000
		c.Drops[fastpath.DropNoServer] = 12
	})
	d.p.Worker(1).Update(func(c *fastpath.Counters) {
		c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes = 120500, 1200050000, 120500, 1200050000
	})
	d.p.SetSteering(fastpath.SteeringCounts{Redirected: 160500, Passed: 7, ShedOpenings: 2500})
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:9180"
	}
	api := slowpath.New(d.b, cfg, slowpath.Options{Plane: func() slowpath.Plane { return d.p }})
	t0 := time.Unix(5000, 0)
	api.SampleRates(t0)
	d.p.AddServerTraffic(t, 1, "web", webB, 500, 500000)
	api.SampleRates(t0.Add(2 * time.Second))
	d.srv = httptest.NewServer(api.Handler())
	t.Cleanup(d.srv.Close)
	d.api = strings.TrimPrefix(d.srv.URL, "http://")
	return d
}

// run runs "ipfront ctl --api <daemon> args..." and returns stdout, stderr
// and the error.
func (d *daemon) run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := Run(append([]string{"--api", d.api}, args...), &out, &errOut)
	return out.String(), errOut.String(), err
}

func (d *daemon) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, stderr, err := d.run(t, args...)
	if err != nil {
		t.Fatalf("ipfront ctl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// checkTable checks that lines form a table: the header is exactly header,
// and every row has a cell starting at each column's offset and as many
// cells as the header.
func checkTable(t *testing.T, lines []string, header ...string) [][]string {
	t.Helper()
	if len(lines) == 0 || !reflect.DeepEqual(strings.Fields(lines[0]), header) {
		t.Fatalf("header = %q, want %q", lines, header)
	}
	var starts []int
	for i := range lines[0] {
		if lines[0][i] != ' ' && (i == 0 || lines[0][i-1] == ' ') {
			starts = append(starts, i)
		}
	}
	var rows [][]string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) != len(header) {
			t.Errorf("row %q has %d cells, want %d", l, len(f), len(header))
			continue
		}
		for c, at := range starts {
			if at >= len(l) || l[at] == ' ' || at > 0 && l[at-1] != ' ' {
				t.Errorf("row %q: column %s does not start at offset %d\n%s", l, header[c], at, strings.Join(lines, "\n"))
				break
			}
		}
		rows = append(rows, f)
	}
	return rows
}

func lines(s string) []string { return strings.Split(strings.TrimRight(s, "\n"), "\n") }

func TestCtlServers(t *testing.T) {
	d := newDaemon(t, config.API{})
	d.b.UpdateServer("dns", dns1, func(s *v1.Server) { s.Healthy, s.EffectiveWeight = false, 0 })
	out := d.mustRun(t, "servers")
	rows := checkTable(t, lines(out), "SET", "SERVER", "ADDRESS", "WEIGHT", "EFF", "STATE", "ASSOC", "PPS", "BPS", "PKTS", "BYTES", "SHARE")
	want := [][]string{
		{"web", "web-a", "198.51.100.11", "1", "1", "up", "3", "0", "0", "40000", "4000K", "24.9%"},
		{"web", "web-b", "198.51.100.12", "3", "3", "up", "6", "250", "2000K", "120K", "1200M", "75.1%"},
		{"dns", "2001:db8::1", "2001:db8::1", "1", "0", "down", "2", "0", "0", "500", "50000", "100.0%"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("ipfront ctl servers:\n%s\nrows %q\nwant %q", out, rows, want)
	}

	out = d.mustRun(t, "servers", "web")
	if rows := checkTable(t, lines(out), "SET", "SERVER", "ADDRESS", "WEIGHT", "EFF", "STATE", "ASSOC", "PPS", "BPS", "PKTS", "BYTES", "SHARE"); len(rows) != 2 {
		t.Errorf("ipfront ctl servers web:\n%s", out)
	}
	if _, _, err := d.run(t, "servers", "nope"); err == nil || !strings.Contains(err.Error(), `no target set "nope"`) {
		t.Errorf("servers nope: err = %v", err)
	}
}

func TestCtlStatusSetsCountersAssocAlarms(t *testing.T) {
	d := newDaemon(t, config.API{})
	d.p.Worker(1).Update(func(c *fastpath.Counters) {
		c.Unproven, c.FloodStateless, c.TeardownIgnored, c.SCTPTagMismatch, c.PartialChecksum = 512, 250000, 3, 4, 5
	})
	d.b.SetAlarms([]v1.Alarm{{ID: "table-full-eth1/1-1", Kind: v1.AlarmTableFull, Worker: "eth1/1", Active: true}})
	out := d.mustRun(t, "status")
	d.b.SetAlarms(nil)
	l := lines(out)
	if l[0] != "ready: yes  generation: 1" {
		t.Errorf("status first line = %q", l[0])
	}
	ii, wi := strings.Index(out, "INTERFACE"), strings.Index(out, "WORKER")
	rows := checkTable(t, lines(out[ii:wi]), "INTERFACE", "IFINDEX", "XDP", "QUEUES")
	if len(rows) != 1 || rows[0][0] != "eth1" || rows[0][1] != "3" || rows[0][3] != "0,1" {
		t.Errorf("status interfaces = %q\n%s", rows, out)
	}
	rows = checkTable(t, lines(out[wi:]), "WORKER", "CPU", "ASSOC", "CAPACITY", "USE", "RX-PKTS", "TX-PKTS", "RX-PPS", "TX-PPS", "UNPROVEN", "TABLE-FULL")
	if want := [][]string{{"eth1/0", "0", "6", "1024", "0.6%", "40000", "40000", "0", "0", "0/512", "no"},
		{"eth1/1", "1", "5", "1024", "0.5%", "120K", "120K", "0", "0", "512/512", "yes"}}; !reflect.DeepEqual(rows, want) {
		t.Errorf("status workers = %q, want %q\n%s", rows, want, out)
	}

	out = d.mustRun(t, "sets")
	rows = checkTable(t, lines(out), "SET", "VIP", "PROTOCOLS", "PORTS", "METHOD", "FORWARDING", "DELETE-AGE", "SERVERS", "ASSOC")
	if want := [][]string{{"web", "192.0.2.10", "tcp", "80,443", "hash", "dsr", "30s", "2", "9"},
		{"dns", "2001:db8::53", "udp", "53", "hash", "dsr", "10m0s", "1", "2"}}; !reflect.DeepEqual(rows, want) {
		t.Errorf("sets = %q, want %q", rows, want)
	}

	out = d.mustRun(t, "counters")
	rows = checkTable(t, lines(out)[:4], "WORKER", "RX-PKTS", "RX-BYTES", "TX-PKTS", "TX-BYTES", "DROPPED", "ASSOC", "CREATED", "RESELECTED", "EXPIRED", "STATELESS")
	if rows[2][0] != "total" || rows[2][1] != "160K" || rows[2][5] != "12" || rows[2][6] != "11" {
		t.Errorf("counters total = %q\n%s", rows[2], out)
	}
	if !strings.Contains(out, "no_server    12") {
		t.Errorf("counters lack the drop reason:\n%s", out)
	}
	if !strings.Contains(out, "steered to AF_XDP: 160K  passed to kernel: 7  openings shed (overload): 2500") {
		t.Errorf("counters lack the steering program's line:\n%s", out)
	}
	parts := strings.Split(out, "\n\n")
	if len(parts) < 3 {
		t.Fatalf("counters has %d blocks, want the defences table as the third:\n%s", len(parts), out)
	}
	rows = checkTable(t, lines(parts[2]), "WORKER", "UNPROVEN", "UNPROVEN-LIMIT", "FLOOD-STATELESS", "TEARDOWN-IGNORED", "SCTP-TAG-MISMATCH", "PARTIAL-CSUM")
	if want := [][]string{{"eth1/0", "0", "512", "0", "0", "0", "0"}, {"eth1/1", "512", "512", "250K", "3", "4", "5"},
		{"total", "512", "1024", "250K", "3", "4", "5"}}; !reflect.DeepEqual(rows, want) {
		t.Errorf("counters defences = %q, want %q\n%s", rows, want, out)
	}

	out, stderr, err := d.run(t, "assoc", "--set", "web", "--limit", "4", "--server", "web-b")
	if err != nil {
		t.Fatal(err)
	}
	rows = checkTable(t, lines(out), "CLIENT", "PORT", "PROTO", "SET", "SERVER", "ADDRESS", "IDLE", "FLAGS", "WORKER", "NAT")
	if len(rows) != 4 || rows[0][0] != "203.0.113.7" || rows[0][2] != "tcp" || rows[0][4] != "web-b" || rows[0][7] != "-" {
		t.Errorf("assoc rows = %q", rows)
	}
	cursor, ok := strings.CutPrefix(strings.TrimSpace(stderr), "more associations follow: add --cursor ")
	if !ok {
		t.Fatalf("assoc stderr = %q, want a cursor hint", stderr)
	}
	out = d.mustRun(t, "assoc", "--set", "web", "--limit", "4", "--server", "web-b", "--cursor", cursor)
	if rows := checkTable(t, lines(out), "CLIENT", "PORT", "PROTO", "SET", "SERVER", "ADDRESS", "IDLE", "FLAGS", "WORKER", "NAT"); len(rows) != 2 {
		t.Errorf("second page = %q, want the 2 remaining", rows)
	}

	if out := d.mustRun(t, "alarms"); out != "no alarms\n" {
		t.Errorf("alarms = %q", out)
	}
	raised := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	d.b.SetAlarms([]v1.Alarm{{ID: "web-1", Set: "web", Active: true, Raised: raised, Deviation: 0.125,
		Servers: []v1.AlarmServer{{Name: "web-a", Address: "198.51.100.11", WeightShare: 0.25, PacketShare: 0.5, AssocShare: 0.4}}}})
	out = d.mustRun(t, "alarms")
	parts = strings.SplitN(out, "\n\n", 2)
	rows = checkTable(t, lines(parts[0]), "ID", "KIND", "SET", "WORKER", "STATE", "RAISED", "CLEARED", "DEVIATION")
	if want := [][]string{{"web-1", "balance", "web", "-", "active", raised.Local().Format(time.RFC3339), "-", "12.5%"}}; !reflect.DeepEqual(rows, want) {
		t.Errorf("alarms = %q, want %q", rows, want)
	}
	rows = checkTable(t, lines(parts[1]), "ALARM", "SERVER", "ADDRESS", "WEIGHT-SHARE", "PACKET-SHARE", "ASSOC-SHARE")
	if want := [][]string{{"web-1", "web-a", "198.51.100.11", "25.0%", "50.0%", "40.0%"}}; !reflect.DeepEqual(rows, want) {
		t.Errorf("alarm servers = %q, want %q", rows, want)
	}

	// A table-full alarm names its worker and its shard's reading.
	cleared := raised.Add(20 * time.Second)
	d.b.SetAlarms([]v1.Alarm{{ID: "table-full-eth1/1-1", Kind: v1.AlarmTableFull, Worker: "eth1/1", Raised: raised, Cleared: cleared,
		Table: &v1.AlarmTable{Causes: []string{"unproven_full", "stateless"}, Associations: 600, Capacity: 1024, Unproven: 512,
			UnprovenLimit: 512, Stateless: 9000, FloodStateless: 8990}}})
	out = d.mustRun(t, "alarms")
	parts = strings.SplitN(out, "\n\n", 2)
	rows = checkTable(t, lines(parts[0]), "ID", "KIND", "SET", "WORKER", "STATE", "RAISED", "CLEARED", "DEVIATION")
	if want := [][]string{{"table-full-eth1/1-1", "table_full", "-", "eth1/1", "cleared", raised.Local().Format(time.RFC3339),
		cleared.Local().Format(time.RFC3339), "-"}}; !reflect.DeepEqual(rows, want) {
		t.Errorf("alarms = %q, want %q", rows, want)
	}
	if len(parts) < 2 {
		t.Fatalf("alarms without the table block:\n%s", out)
	}
	rows = checkTable(t, lines(parts[1]), "ALARM", "CAUSES", "ASSOC", "CAPACITY", "UNPROVEN", "UNPROVEN-LIMIT", "STATELESS", "FLOOD-STATELESS")
	if want := [][]string{{"table-full-eth1/1-1", "unproven_full,stateless", "600", "1024", "512", "512", "9000", "8990"}}; !reflect.DeepEqual(rows, want) {
		t.Errorf("alarm tables = %q, want %q", rows, want)
	}
}

// -o json prints the API's reply unchanged, so it decodes into the API's
// types with the values the API holds; the flag works before or after the
// command.
func TestCtlJSONRoundTrip(t *testing.T) {
	d := newDaemon(t, config.API{})
	for _, tc := range []struct {
		args []string
		path string
		v    func() any
	}{
		{[]string{"-o", "json", "servers"}, "/v1/servers", func() any { return new(v1.Servers) }},
		{[]string{"servers", "web", "-o", "json"}, "/v1/servers?set=web", func() any { return new(v1.Servers) }},
		{[]string{"-o", "json", "status"}, "/v1/status", func() any { return new(v1.Status) }},
		{[]string{"-o", "json", "sets"}, "/v1/sets", func() any { return new(v1.Sets) }},
		{[]string{"-o", "json", "counters"}, "/v1/counters", func() any { return new(v1.Counters) }},
		{[]string{"assoc", "--limit", "1000", "-o", "json"}, "/v1/associations?limit=1000", func() any { return new(v1.Associations) }},
		{[]string{"-o", "json", "alarms"}, "/v1/alarms", func() any { return new(v1.Alarms) }},
	} {
		out := d.mustRun(t, tc.args...)
		got, want := tc.v(), tc.v()
		if err := json.Unmarshal([]byte(out), got); err != nil {
			t.Fatalf("ctl %v: output is not the API's JSON: %v\n%s", tc.args, err, out)
		}
		resp, err := http.Get(d.srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(want)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ctl %v decoded = %+v\nGET %s = %+v", tc.args, got, tc.path, want)
		}
	}
	var sr v1.Servers
	if err := json.Unmarshal([]byte(d.mustRun(t, "-o", "json", "servers", "dns")), &sr); err != nil || len(sr.Servers) != 1 ||
		sr.Servers[0].Packets != 500 || sr.Servers[0].Associations != 2 || sr.Servers[0].Share != 1 {
		t.Errorf("servers dns json = %+v, %v", sr, err)
	}
}

func TestCtlReload(t *testing.T) {
	d := newDaemon(t, config.API{})
	if out := d.mustRun(t, "reload"); out != "reloaded: tables generation 2\n" {
		t.Errorf("reload = %q", out)
	}
	d.b.SetNotApplied([]string{"log.level", "log.format"})
	if out, want := d.mustRun(t, "reload"), "reloaded: tables generation 3\nnot applied (need a restart): log.level, log.format\n"; out != want {
		t.Errorf("reload with keys not applied = %q, want %q", out, want)
	}
	d.b.SetNotApplied(nil)
	problems := config.Errors{
		{File: "/etc/ipfront/ipfront.toml", Line: 3, Column: 1, Msg: "unknown key batch_sise", Hint: `did you mean "batch_size"?`},
		{File: "/etc/ipfront/ipfront.toml", Line: 9, Column: 11, Msg: `invalid address "192.0.2.300"`},
	}
	d.b.SetReloadError(problems)
	for _, format := range []string{"table", "json"} {
		out, _, err := d.run(t, "-o", format, "reload")
		if err == nil {
			t.Fatalf("-o %s: refused reload exited 0", format)
		}
		for _, p := range problems {
			if !strings.Contains(err.Error(), "\n  "+p.Error()) {
				t.Errorf("-o %s: reload error lacks line %q:\n%v", format, p.Error(), err)
			}
		}
		if format == "json" {
			var e v1.Error
			if json.Unmarshal([]byte(out), &e) != nil || len(e.Errors) != 2 {
				t.Errorf("-o json: printed %q, want the API's error reply", out)
			}
		} else if out != "" {
			t.Errorf("refused reload printed %q on stdout", out)
		}
	}
	d.b.SetReloadError(fmt.Errorf("x.toml: [dataplane] changed: %w", slowpath.ErrRestartNeeded))
	if _, _, err := d.run(t, "reload"); err == nil || !strings.Contains(err.Error(), "restart") || !strings.Contains(err.Error(), "409") {
		t.Errorf("restart-needed reload: err = %v", err)
	}
}

func TestCtlDrainEnable(t *testing.T) {
	d := newDaemon(t, config.API{})
	if out := d.mustRun(t, "drain", "web", "web-b"); out != "drained web/web-b (198.51.100.12): effective weight 0, state drained\n" {
		t.Errorf("drain = %q", out)
	}
	rows := checkTable(t, lines(d.mustRun(t, "servers", "web")), "SET", "SERVER", "ADDRESS", "WEIGHT", "EFF", "STATE", "ASSOC", "PPS", "BPS", "PKTS", "BYTES", "SHARE")
	if rows[1][4] != "0" || rows[1][5] != "drained" {
		t.Errorf("after drain: %q", rows[1])
	}
	if out := d.mustRun(t, "enable", "web", "198.51.100.12"); out != "enabled web/web-b (198.51.100.12): effective weight 3, state up\n" {
		t.Errorf("enable = %q", out)
	}
	if _, _, err := d.run(t, "drain", "web", "nope"); err == nil || !strings.Contains(err.Error(), `no server "nope"`) {
		t.Errorf("drain of an unknown server: err = %v", err)
	}
	if _, _, err := d.run(t, "drain", "web"); err == nil {
		t.Error("drain with one argument succeeded")
	}
}

func TestCtlToken(t *testing.T) {
	d := newDaemon(t, config.API{Listen: "0.0.0.0:9180", Token: "s3cret"})
	t.Setenv("IPFRONT_TOKEN", "")
	if _, _, err := d.run(t, "status"); err == nil || !strings.Contains(err.Error(), "--token") {
		t.Errorf("without token: err = %v, want a hint to pass --token", err)
	}
	if _, _, err := d.run(t, "--token", "wrong", "status"); err == nil {
		t.Error("wrong token accepted")
	}
	d.mustRun(t, "--token", "s3cret", "status")
	d.mustRun(t, "status", "--token", "s3cret")
	t.Setenv("IPFRONT_TOKEN", "s3cret")
	d.mustRun(t, "sets")
}

func TestCtlConnectErrorNamesAddress(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close() // nothing listens there now
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, api := range []string{addr, "unix:" + sock} {
		err := Run([]string{"--api", api, "status"}, &bytes.Buffer{}, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "cannot reach the ipfront API at "+api) {
			t.Errorf("--api %s: err = %v", api, err)
		}
	}
	t.Setenv("IPFRONT_API", addr)
	if err := Run([]string{"sets"}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("$IPFRONT_API: err = %v", err)
	}
}

func TestCtlUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"bogus"}, {"status", "extra"}, {"-o", "yaml", "status"}, {"--api", "nohostport", "status"}} {
		if err := Run(args, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
			t.Errorf("ipfront ctl %q succeeded", args)
		}
	}
	var out bytes.Buffer
	if err := Run([]string{"help"}, &out, &bytes.Buffer{}); err != nil || !strings.Contains(out.String(), "drain SET SERVER") {
		t.Errorf("ctl help = %v\n%s", err, out.String())
	}
}

func TestNum(t *testing.T) {
	for n, want := range map[uint64]string{0: "0", 99999: "99999", 100000: "100K", 1234567: "1234K",
		99999999: "99999K", 100000000: "100M", 1200000000: "1200M", 1 << 62: "4611P"} {
		if got := num(n); got != want {
			t.Errorf("num(%d) = %q, want %q", n, got, want)
		}
	}
}
