package slowpath_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/slowpath"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
	"github.com/ipfront/ipfront/slowpath/apitest"
	"github.com/ipfront/ipfront/slowpath/config"
)

// persistTOML: group "cd" of cd-tcp and cd-udp (clients by /24, 60 s),
// "ssh" persistent on its own (30 s), "web" without persistence.
const persistTOML = `
[dataplane]
interfaces = ["eth1"]
[[target_set]]
name = "cd-tcp"
address = "192.0.2.10"
ports = ["1364"]
server = [{ name = "cd-a", address = "198.51.100.11" }, { name = "cd-b", address = "198.51.100.12" }]
[[target_set]]
name = "cd-udp"
address = "192.0.2.10"
protocols = ["udp"]
ports = ["33001-33099"]
server = [{ name = "fasp-b", address = "198.51.100.12" }, { name = "fasp-a", address = "198.51.100.11", owned_ports = ["33050-33099", "33001"] }]
[[target_set]]
name = "ssh"
address = "2001:db8::22"
ports = ["22"]
persistence = "client"
persistence_timeout = "30s"
server = [{ name = "ssh-a", address = "2001:db8::13" }]
[[target_set]]
name = "web"
address = "192.0.2.20"
ports = ["80"]
server = [{ address = "198.51.100.11" }]
[[persistence_group]]
name = "cd"
target_sets = ["cd-tcp", "cd-udp"]
timeout = "60s"
ipv4_prefix = 24
`

// persistScenario is an API over two workers holding persistence records
// and flows of persistTOML's sets.
type persistScenario struct {
	p   *apitest.Plane
	srv *httptest.Server
	now uint32
}

func newPersistScenario(t *testing.T) *persistScenario {
	t.Helper()
	spec := apitest.Spec(t, persistTOML)
	s := &persistScenario{p: apitest.NewPlane(t, spec, 64, -1, -1), now: assoc.Now()}
	cd := s.set(t, "cd-tcp").Persist.Group
	ssh := s.set(t, "ssh").Persist.Group
	a11, a12 := s.addrID(t, "198.51.100.11"), s.addrID(t, "198.51.100.12")
	// 203.0.113.0/24 on cd-a, copies on both workers; 192.0.2.0/24 on cd-b.
	s.pin(t, 0, "203.0.113.0", cd, a11, s.now-5)
	s.pin(t, 1, "203.0.113.0", cd, a11, s.now-2)
	s.pin(t, 1, "192.0.2.0", cd, a12, s.now-10)
	// A client of ssh, one expired but not swept, one whose server left.
	s.pin(t, 0, "2001:db8:c::1", ssh, s.addrID(t, "2001:db8::13"), s.now-1)
	s.pin(t, 0, "2001:db8:c::9", ssh, s.addrID(t, "2001:db8::13"), s.now-31)
	s.pin(t, 1, "198.51.100.99", cd, 9999, s.now)
	// Flows: two of 203.0.113.0/24 on .11 (one per set), one on .12 that
	// its record does not explain, one of web.
	s.p.Associate(t, 0, netip.MustParseAddr("203.0.113.7"), 40000, packet.ProtoTCP, "cd-tcp", netip.MustParseAddr("198.51.100.11"), 0, s.now)
	s.p.Associate(t, 1, netip.MustParseAddr("203.0.113.8"), 50000, packet.ProtoUDP, "cd-udp", netip.MustParseAddr("198.51.100.11"), 0, s.now)
	s.p.Associate(t, 1, netip.MustParseAddr("203.0.113.7"), 50001, packet.ProtoUDP, "cd-udp", netip.MustParseAddr("198.51.100.12"), 0, s.now)
	s.p.Associate(t, 0, netip.MustParseAddr("203.0.113.7"), 40001, packet.ProtoTCP, "web", netip.MustParseAddr("198.51.100.11"), 0, s.now)
	s.p.Worker(0).Update(func(c *fastpath.Counters) { c.PersistMade, c.PersistFound, c.OwnedPort = 3, 20, 4 })
	s.p.Worker(1).Update(func(c *fastpath.Counters) { c.PersistMade, c.PersistFull, c.PersistExpired = 2, 1, 6 })
	api := slowpath.New(apitest.NewBackend(spec), config.API{Listen: "127.0.0.1:9180"}, slowpath.Options{Plane: func() slowpath.Plane { return s.p }})
	s.srv = httptest.NewServer(api.Handler())
	t.Cleanup(s.srv.Close)
	return s
}

func (s *persistScenario) set(t *testing.T, name string) *fastpath.TargetSet {
	t.Helper()
	for _, ts := range s.p.Tables().Sets() {
		if ts.Name == name {
			return ts
		}
	}
	t.Fatalf("no set %q", name)
	return nil
}

func (s *persistScenario) addrID(t *testing.T, addr string) uint32 {
	t.Helper()
	for _, ts := range s.p.Tables().Sets() {
		for _, srv := range ts.Servers {
			if srv.Present && srv.Addr == netip.MustParseAddr(addr) {
				return srv.AddrID
			}
		}
	}
	t.Fatalf("no server %s", addr)
	return 0
}

// pin writes a persistence record of (masked) client in group on worker w.
func (s *persistScenario) pin(t *testing.T, w int, client string, group uint16, addrID uint32, seen uint32) {
	t.Helper()
	k := assoc.Key{Addr: netip.MustParseAddr(client).As16(), Set: group, Kind: assoc.KindPersist}
	sh := s.p.Worker(w).Shard
	idx, _ := sh.Find(&k, k.Hash())
	if idx < 0 {
		t.Fatal("shard full")
	}
	sh.Put(idx, &k, assoc.Value{Tag: addrID, LastSeen: seen})
}

func (s *persistScenario) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := s.srv.Client().Get(s.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestPersistenceEndpoint: GET /v1/persistence lists each client once per
// group and server, however many workers hold a copy, with the freshest
// copy's age, its group's member sets, the server's name in the first
// member and its address, and the client's flows that record explains;
// expired records are left out; ?set= and ?client= filter (the client
// matched within the group's prefix). The counters are the workers' sums.
func TestPersistenceEndpoint(t *testing.T) {
	s := newPersistScenario(t)
	cdSets := []string{"cd-tcp", "cd-udp"}
	all := []v1.PersistenceRecord{
		{Group: "cd", Sets: cdSets, Client: "192.0.2.0/24", Server: "cd-b", Address: "198.51.100.12", Age: 10, ExpiresIn: 50, Workers: 1},
		{Group: "cd", Sets: cdSets, Client: "198.51.100.0/24", Age: 0, ExpiresIn: 60, Workers: 1},
		{Group: "cd", Sets: cdSets, Client: "203.0.113.0/24", Server: "cd-a", Address: "198.51.100.11", Age: 2, ExpiresIn: 58, Workers: 2, Flows: 2},
		{Group: "ssh", Sets: []string{"ssh"}, Client: "2001:db8:c::1/128", Server: "ssh-a", Address: "2001:db8::13", Age: 1, ExpiresIn: 29, Workers: 1},
	}
	for _, tc := range []struct {
		query string
		want  []v1.PersistenceRecord
	}{
		{"", all},
		{"?set=cd-udp", all[:3]},
		{"?set=ssh", all[3:]},
		{"?client=203.0.113.200", all[2:3]},
		{"?client=2001:db8:c::1&set=ssh", all[3:]},
		{"?client=2001:db8:c::2", []v1.PersistenceRecord{}},
	} {
		code, body := s.get(t, "/v1/persistence"+tc.query)
		var got v1.Persistence
		if code != http.StatusOK || decodeJSON(body, &got) != nil {
			t.Fatalf("GET /v1/persistence%s = %d %s", tc.query, code, body)
		}
		if !reflect.DeepEqual(got.Records, tc.want) {
			t.Errorf("GET /v1/persistence%s records =\n%+v\nwant\n%+v", tc.query, got.Records, tc.want)
		}
		if want := (v1.PersistenceCounters{Made: 5, Found: 20, Full: 1, Expired: 6, OwnedPort: 4}); got.Counters != want {
			t.Errorf("GET /v1/persistence%s counters = %+v, want %+v", tc.query, got.Counters, want)
		}
	}
	for _, tc := range []struct {
		query string
		code  int
		want  string
	}{
		{"?set=web", http.StatusNotFound, `target set \"web\": not persistent`},
		{"?set=nope", http.StatusNotFound, `no target set \"nope\"`},
		{"?client=bad", http.StatusBadRequest, `client \"bad\" is not an IP address`},
	} {
		if code, body := s.get(t, "/v1/persistence"+tc.query); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("GET /v1/persistence%s = %d %s, want %d and %s", tc.query, code, body, tc.code, tc.want)
		}
	}
}

// TestPersistenceNotAssociations: persistence records are not flows: the
// associations listing and every association count leave them out.
func TestPersistenceNotAssociations(t *testing.T) {
	s := newPersistScenario(t)
	code, body := s.get(t, "/v1/associations?limit=100")
	var assocs v1.Associations
	if code != http.StatusOK || decodeJSON(body, &assocs) != nil {
		t.Fatalf("GET /v1/associations = %d %s", code, body)
	}
	if len(assocs.Associations) != 4 {
		t.Errorf("GET /v1/associations listed %d, want the 4 flows: %+v", len(assocs.Associations), assocs.Associations)
	}
	code, body = s.get(t, "/v1/sets")
	var sets v1.Sets
	if code != http.StatusOK || decodeJSON(body, &sets) != nil {
		t.Fatalf("GET /v1/sets = %d %s", code, body)
	}
	want := map[string]int{"cd-tcp": 1, "cd-udp": 2, "ssh": 0, "web": 1}
	for _, st := range sets.Sets {
		if st.Associations != want[st.Name] {
			t.Errorf("GET /v1/sets: %s has %d associations, want %d", st.Name, st.Associations, want[st.Name])
		}
	}
}

// TestPersistenceMetricsAndOwnedPorts: /metrics exports the persistence
// counters; /v1/servers shows each server's owned ranges as written.
func TestPersistenceMetricsAndOwnedPorts(t *testing.T) {
	s := newPersistScenario(t)
	_, body := s.get(t, "/metrics")
	for _, want := range []string{"ipfront_persistence_records_made_total 5", "ipfront_persistence_records_found_total 20",
		"ipfront_persistence_records_full_total 1", "ipfront_persistence_records_expired_total 6",
		"ipfront_owned_port_associations_total 4"} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	code, body := s.get(t, "/v1/servers?set=cd-udp")
	var srv v1.Servers
	if code != http.StatusOK || decodeJSON(body, &srv) != nil {
		t.Fatalf("GET /v1/servers = %d %s", code, body)
	}
	owned := map[string][]string{}
	for _, x := range srv.Servers {
		owned[x.Name] = x.OwnedPorts
	}
	if want := map[string][]string{"fasp-b": nil, "fasp-a": {"33050-33099", "33001"}}; !reflect.DeepEqual(owned, want) {
		t.Errorf("owned ports by server = %v, want %v", owned, want)
	}
}

func decodeJSON(body string, v any) error { return json.Unmarshal([]byte(body), v) }
