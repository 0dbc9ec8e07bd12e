package v1_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.json from the types")

// samples has one value of every body the API serves, every field set, so
// the golden files cover the whole wire format.
func samples() map[string]any {
	raised := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	server := v1.Server{Set: "web", Name: "web-b", Address: netip.MustParseAddr("198.51.100.12"), Weight: 3,
		EffectiveWeight: 2, Drained: true, Healthy: true, Resolved: true, OwnedPorts: []string{"33001-33010", "33020"}}
	return map[string]any{
		"status": v1.Status{Ready: true, Generation: 7,
			Interfaces: []v1.Interface{{Name: "eth1", Index: 3, XDPMode: "native", Queues: []int{0, 1}}},
			Workers: []v1.Worker{{Name: "eth1/1", Interface: "eth1", Queue: 1, CPU: -1, Associations: 5, Capacity: 1024,
				RxPackets: 120500, TxPackets: 120400, RxPPS: 250.5, TxPPS: 249.5, Unproven: 3, UnprovenLimit: 512, TableFull: true}}},
		"counters": v1.Counters{RxPackets: 1, RxBytes: 2, TxPackets: 3, TxBytes: 4, Dropped: 12,
			Drops: map[string]uint64{"no_server": 12, "truncated": 0}, Associations: 11, NewAssociations: 13,
			Reselected: 14, Expired: 15, Stateless: 16, ICMPForwarded: 17, SteeredToXSK: 18, PassedToKernel: 19, ShedOpenings: 29,
			Defences:   v1.Defences{Unproven: 40, UnprovenLimit: 41, FloodStateless: 42, TeardownIgnored: 43, SCTPTagMismatch: 44, PartialChecksum: 45},
			Signalling: v1.Signalling{TagIndexHits: 46, TagCollisions: 47, DiameterStale: 48},
			Servers:    []v1.ServerCounters{{Set: "dns", Name: "dns-1", Address: "2001:db8::1", Weight: 1, Packets: 500, Bytes: 50000}},
			Workers: []v1.WorkerCounters{{Name: "eth1/0", Interface: "eth1", Queue: 1, CPU: 2, RxPackets: 21, RxBytes: 22,
				TxPackets: 23, TxBytes: 24, Dropped: 25, Drops: map[string]uint64{"no_server": 25}, Associations: 26,
				Capacity: 27, NewAssociations: 28, Reselected: 29, Expired: 30, Stateless: 31, ICMPForwarded: 32,
				Defences:   v1.Defences{Unproven: 33, UnprovenLimit: 34, FloodStateless: 35, TeardownIgnored: 36, SCTPTagMismatch: 37, PartialChecksum: 38},
				Signalling: v1.Signalling{TagIndexHits: 39, TagCollisions: 40, DiameterStale: 41}}}},
		"sets": v1.Sets{Sets: []v1.Set{{Name: "dns", VIP: netip.MustParseAddr("2001:db8::53"), Protocols: []string{"udp"},
			Ports: []string{"53", "5300-5399"}, Method: "hash", Forwarding: "dsr", DeleteAge: "10m0s", TableSize: 65537,
			Servers: 1, Associations: 2}}},
		"servers": v1.Servers{Interval: 2, Servers: []v1.ServerStats{{Server: server,
			Associations: 6, Packets: 120500, Bytes: 1200500000, PPS: 250, BPS: 2e6, Share: 0.75}}},
		"server": server,
		"associations": v1.Associations{NextCursor: "AQAAAAAAAAAAAA",
			Associations: []v1.Association{{Worker: "eth1/0", Client: netip.MustParseAddr("203.0.113.7"), Port: 1000,
				Protocol: "tcp", Set: "web", Server: "web-a", Address: "198.51.100.11", Idle: 4, Flags: []string{"fin", "rst"},
				NAT: "192.0.2.10->198.51.100.11", SeqOffset: -3},
				{Worker: "eth1/1", Client: netip.MustParseAddr("203.0.113.8"), Port: 3868, Protocol: "sctp", Set: "dra",
					Server: "dra-1", Address: "198.51.100.21", Idle: 1, Flags: []string{"tag"}, SCTPTag: 0x1234abcd, TagIndexed: true,
					Paths: []v1.Path{{Client: netip.MustParseAddr("203.0.113.8"), Port: 3868, Worker: "eth1/1", Server: "dra-1"},
						{Client: netip.MustParseAddr("203.0.113.9"), Port: 3868, Worker: "eth1/0", Server: "dra-1"}}}}},
		"alarms": v1.Alarms{Alarms: []v1.Alarm{
			{ID: "table-full-eth1/0-1", Kind: v1.AlarmTableFull, Active: true, Raised: raised, Servers: []v1.AlarmServer{},
				Worker: "eth1/0", Table: &v1.AlarmTable{Causes: []string{"unproven_full", "stateless"}, Associations: 600,
					Capacity: 1024, Unproven: 512, UnprovenLimit: 512, Stateless: 9000, FloodStateless: 8990}},
			{ID: "web-1", Kind: v1.AlarmBalance, Set: "web", Active: true, Raised: raised, Deviation: 0.125,
				Servers: []v1.AlarmServer{{Name: "web-a", Address: "198.51.100.11", WeightShare: 0.25, PacketShare: 0.5, AssocShare: 0.4}}},
			{ID: "web-0", Kind: v1.AlarmBalance, Set: "web", Active: false, Raised: raised.Add(-time.Hour), Cleared: raised.Add(-time.Minute), Deviation: 0.01,
				Servers: []v1.AlarmServer{}}}},
		"reload": v1.ReloadResult{Generation: 8, NotApplied: []string{"log.level"}},
		"expectations": v1.Expectations{
			Helper: v1.HelperCounters{Commands: map[string]uint64{"PORT": 1, "EPRT": 2, "227": 3, "229": 4}, Rewrites: 3,
				ExpectationsInstalled: 10, ExpectationsUsed: 9, ExpectationsExpired: 8, Expectations: 2,
				Refused: map[string]uint64{"bounce": 1, "low_port": 2}, Dropped: map[string]uint64{"bad_checksum": 1, "gap": 2},
				Resyncs: 5, Unparsed: 6, Connections: 7, Punted: 100, Injected: 99, PuntRingFull: 11, InjectOverflow: 12,
				ControlOverflow: 13},
			Expectations: []v1.Expectation{{Worker: "eth1/0", Set: "ftp", Mode: "passive", Client: netip.MustParseAddr("203.0.113.7"),
				Port: 30000, Server: "ftp-a", Address: "198.51.100.11", Age: 5, ExpiresIn: 55}}},
		"persistence": v1.Persistence{
			Counters: v1.PersistenceCounters{Made: 10, Found: 40, Full: 1, Expired: 7, OwnedPort: 12},
			Records: []v1.PersistenceRecord{{Group: "transfers", Sets: []string{"cd-tcp", "cd-udp"}, Client: "203.0.113.0/24",
				Server: "cd-a", Address: "198.51.100.11", Age: 3, ExpiresIn: 597, Workers: 2, Flows: 5}}},
		"error": v1.Error{Error: "invalid configuration, nothing changed",
			Errors: []string{"/etc/ipfront/ipfront.toml:3:1: unknown key batch_sise (hint: did you mean \"batch_size\"?)"}},
	}
}

// encode writes v as the daemon does: indented by two spaces.
func encode(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	return b.Bytes()
}

// The JSON of every body is what clients (ipfront ctl, the e2e tests,
// operators' scripts) decode: the golden files were written by the types as
// they were in package slowpath before they moved here, so a renamed,
// retagged or removed field fails this test. Decoding a golden file and
// encoding it again gives it back unchanged, so nothing is lost on the way
// through a client either.
func TestWireFormat(t *testing.T) {
	for name, v := range samples() {
		path := filepath.Join("testdata", name+".json")
		got := encode(t, v)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("json(%T) =\n%s\nwant (%s)\n%s", v, got, path, want)
		}
		back := reflect.New(reflect.TypeOf(v))
		if err := json.Unmarshal(want, back.Interface()); err != nil {
			t.Fatalf("decode %s into %T: %v", path, v, err)
		}
		if again := encode(t, back.Elem().Interface()); !bytes.Equal(again, want) {
			t.Errorf("json(decode(%s)) =\n%s\nwant the file unchanged", path, again)
		}
	}
}

// Every field of every type is set in some sample, so the golden files
// cover every field: a field added without a sample value would go
// unchecked.
func TestSamplesSetEveryField(t *testing.T) {
	set := map[string]bool{} // "Type.Field": non-zero somewhere
	for _, v := range samples() {
		walk(reflect.ValueOf(v), set)
	}
	for f, ok := range set {
		if !ok {
			t.Errorf("no sample sets %s", f)
		}
	}
}

// walk records in set, for every struct field under v, whether it is
// non-zero.
func walk(v reflect.Value, set map[string]bool) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type().PkgPath() != reflect.TypeFor[v1.Status]().PkgPath() {
			return // time.Time, netip.Addr: leaves
		}
		for i := range v.NumField() {
			f := v.Type().Name() + "." + v.Type().Field(i).Name
			set[f] = set[f] || !v.Field(i).IsZero()
			walk(v.Field(i), set)
		}
	case reflect.Pointer:
		if !v.IsNil() {
			walk(v.Elem(), set)
		}
	case reflect.Slice:
		for i := range v.Len() {
			walk(v.Index(i), set)
		}
	}
}
