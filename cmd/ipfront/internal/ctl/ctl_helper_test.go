package ctl

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// TestCtlExpectations: "ctl expectations [SET]" asks GET /v1/expectations
// (with ?set=) and prints the helper's counters and one row per
// expectation.
func TestCtlExpectations(t *testing.T) {
	reply := v1.Expectations{
		Helper: v1.HelperCounters{Commands: map[string]uint64{"PORT": 20, "EPRT": 0, "227": 20, "229": 0}, Rewrites: 20,
			ExpectationsInstalled: 40, ExpectationsUsed: 39, ExpectationsExpired: 1, Expectations: 2,
			Refused: map[string]uint64{"bounce": 1, "low_port": 0}, Dropped: map[string]uint64{"gap": 0},
			Punted: 300, Injected: 299, PuntRingFull: 0},
		Expectations: []v1.Expectation{
			{Worker: "eth0/0", Set: "ftp", Mode: "passive", Client: netip.MustParseAddr("203.0.113.7"), Port: 30000,
				Server: "ftp-a", Address: "198.51.100.11", Age: 5, ExpiresIn: 55},
			{Worker: "eth1/0", Set: "ftp", Mode: "active", Client: netip.MustParseAddr("203.0.113.7"), Port: 40001,
				Age: 1, ExpiresIn: 59}},
	}
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/expectations" {
			http.NotFound(w, r)
			return
		}
		queries = append(queries, r.URL.RawQuery)
		json.NewEncoder(w).Encode(reply)
	}))
	defer srv.Close()
	api := strings.TrimPrefix(srv.URL, "http://")
	var out, errOut bytes.Buffer
	if err := Run([]string{"--api", api, "expectations"}, &out, &errOut); err != nil {
		t.Fatalf("ctl expectations: %v\n%s", err, errOut.String())
	}
	text := out.String()
	for _, want := range []string{"commands      PORT 20, EPRT 0, 227 20, 229 0", "refused       bounce 1, low_port 0",
		"expectations  waiting 2, installed 40, used 39, expired 1"} {
		if !strings.Contains(text, want) {
			t.Errorf("ctl expectations output lacks %q:\n%s", want, text)
		}
	}
	ls := lines(text[strings.Index(text, "SET"):])
	rows := checkTable(t, ls, "SET", "MODE", "CLIENT", "PORT", "SERVER", "ADDRESS", "AGE", "EXPIRES-IN", "WORKER")
	if len(rows) != 2 || strings.Join(rows[0], " ") != "ftp passive 203.0.113.7 30000 ftp-a 198.51.100.11 5s 55s eth0/0" ||
		strings.Join(rows[1], " ") != "ftp active 203.0.113.7 40001 - - 1s 59s eth1/0" {
		t.Fatalf("rows = %q", rows)
	}
	out.Reset()
	if err := Run([]string{"--api", api, "expectations", "ftp"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if len(queries) != 2 || queries[0] != "" || queries[1] != "set=ftp" {
		t.Fatalf("queries = %q, want none then set=ftp", queries)
	}
}
