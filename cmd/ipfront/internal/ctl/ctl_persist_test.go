package ctl

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// fakeAPI serves reply as JSON at path and records the queries it got.
func fakeAPI(t *testing.T, path string, reply any) (api string, queries *[]string) {
	t.Helper()
	queries = new([]string)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		*queries = append(*queries, r.URL.RawQuery)
		json.NewEncoder(w).Encode(reply)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), queries
}

// TestCtlPersistence: "ctl persistence [--set S] [--client ADDR]" asks GET
// /v1/persistence with those filters and prints the counters, then one row
// per record; a record whose server left shows dashes.
func TestCtlPersistence(t *testing.T) {
	reply := v1.Persistence{
		Counters: v1.PersistenceCounters{Made: 10, Found: 40, Full: 1, Expired: 7, OwnedPort: 120000},
		Records: []v1.PersistenceRecord{
			{Group: "cd", Sets: []string{"cd-tcp", "cd-udp"}, Client: "203.0.113.0/24", Server: "cd-a", Address: "198.51.100.11",
				Age: 3, ExpiresIn: 597, Workers: 2, Flows: 5},
			{Group: "ssh", Sets: []string{"ssh"}, Client: "2001:db8:c::1/128", Age: 0, ExpiresIn: 30, Workers: 1},
		},
	}
	api, queries := fakeAPI(t, "/v1/persistence", reply)
	var out, errOut bytes.Buffer
	if err := Run([]string{"--api", api, "persistence"}, &out, &errOut); err != nil {
		t.Fatalf("ctl persistence: %v\n%s", err, errOut.String())
	}
	text := out.String()
	if want := "records made 10, found 40, full 1, expired 7; owned-port associations 120K\n"; !strings.HasPrefix(text, want) {
		t.Errorf("ctl persistence output starts\n%s\nwant %s", text, want)
	}
	rows := checkTable(t, lines(text[strings.Index(text, "GROUP"):]), "GROUP", "CLIENT", "SERVER", "ADDRESS", "AGE", "EXPIRES-IN", "WORKERS", "FLOWS", "SETS")
	want := [][]string{
		{"cd", "203.0.113.0/24", "cd-a", "198.51.100.11", "3s", "597s", "2", "5", "cd-tcp,cd-udp"},
		{"ssh", "2001:db8:c::1/128", "-", "-", "0s", "30s", "1", "0", "ssh"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows = %q\nwant %q", rows, want)
	}
	out.Reset()
	if err := Run([]string{"--api", api, "persistence", "--set", "cd-udp", "--client", "203.0.113.7"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if len(*queries) != 2 || (*queries)[0] != "" || (*queries)[1] != "client=203.0.113.7&set=cd-udp" {
		t.Errorf("queries = %q, want none then client=203.0.113.7&set=cd-udp", *queries)
	}
	if err := Run([]string{"--api", api, "persistence", "extra"}, &out, &errOut); err == nil {
		t.Error("ctl persistence extra: no error, want wrong number of arguments")
	}
}

// TestCtlServersOwnedPorts: "ctl servers" prints the owned port ranges in a
// table of their own below the servers, only when some server owns ports.
func TestCtlServersOwnedPorts(t *testing.T) {
	reply := v1.Servers{Servers: []v1.ServerStats{
		{Server: v1.Server{Set: "fasp", Name: "s1", Address: netip.MustParseAddr("198.51.100.11"), Weight: 1, Healthy: true, Resolved: true,
			OwnedPorts: []string{"33001-33010", "33020"}}},
		{Server: v1.Server{Set: "fasp", Name: "s2", Address: netip.MustParseAddr("198.51.100.12"), Weight: 1, Healthy: true, Resolved: true}},
	}}
	api, _ := fakeAPI(t, "/v1/servers", reply)
	var out, errOut bytes.Buffer
	if err := Run([]string{"--api", api, "servers"}, &out, &errOut); err != nil {
		t.Fatalf("ctl servers: %v\n%s", err, errOut.String())
	}
	parts := strings.Split(out.String(), "\n\n")
	if len(parts) != 2 {
		t.Fatalf("ctl servers printed %d blocks, want the servers and the owned ports:\n%s", len(parts), out.String())
	}
	if rows := checkTable(t, lines(parts[0]), "SET", "SERVER", "ADDRESS", "WEIGHT", "EFF", "STATE", "ASSOC", "PPS", "BPS", "PKTS", "BYTES", "SHARE"); len(rows) != 2 {
		t.Errorf("servers rows = %q", rows)
	}
	rows := checkTable(t, lines(parts[1]), "SET", "SERVER", "ADDRESS", "OWNED-PORTS")
	if want := [][]string{{"fasp", "s1", "198.51.100.11", "33001-33010,33020"}}; !reflect.DeepEqual(rows, want) {
		t.Errorf("owned ports rows = %q, want %q", rows, want)
	}

	reply.Servers[0].OwnedPorts = nil
	api, _ = fakeAPI(t, "/v1/servers", reply)
	out.Reset()
	if err := Run([]string{"--api", api, "servers"}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "OWNED-PORTS") {
		t.Errorf("ctl servers without owned ports printed an owned ports table:\n%s", out.String())
	}
}
