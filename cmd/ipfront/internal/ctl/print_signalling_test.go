package ctl

import (
	"encoding/binary"
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
	"github.com/ipfront/ipfront/slowpath/apitest"
)

const signallingTOML = `
[dataplane]
interfaces = ["eth1"]

[[target_set]]
name = "dra"
address = "192.0.2.50"
secondary_address = "192.0.2.51"
protocols = ["sctp"]
ports = ["3868"]
  [[target_set.server]]
  name = "dra-1"
  address = "198.51.100.21"
  [[target_set.server]]
  name = "dra-2"
  address = "198.51.100.22"
`

// TestCtlSCTPPathsAndSignallingCounters: ctl assoc shows a multihomed SCTP
// association's learned tag, whether the index holds it, and every path
// that learned the tag on any worker (a path on another server marked);
// ctl counters shows the signalling counters per worker and in total.
func TestCtlSCTPPathsAndSignallingCounters(t *testing.T) {
	spec := apitest.Spec(t, signallingTOML)
	p := apitest.NewPlane(t, spec, 1024, 0, 1)
	now := assoc.Now()
	id, s1, g1 := p.Slot(t, "dra", netip.MustParseAddr("198.51.100.21"))
	_, s2, g2 := p.Slot(t, "dra", netip.MustParseAddr("198.51.100.22"))
	put := func(w int, k assoc.Key, v assoc.Value) {
		sh := p.Worker(w).Shard
		idx, _ := sh.Find(&k, k.Hash())
		if idx < 0 {
			t.Fatal("shard full")
		}
		sh.Put(idx, &k, v)
	}
	path := func(w int, client string, port uint16, slot uint8, gen, tag uint32) {
		put(w, assoc.Key{Addr: netip.MustParseAddr(client).As16(), Port: port, Proto: packet.ProtoSCTP, Set: id},
			assoc.Value{Server: slot, Gen: gen, Tag: tag, Flags: assoc.FlagProven | assoc.FlagTagLearned, LastSeen: now})
	}
	// One association on three paths over both workers, its tag indexed; a
	// second one whose tag collided, a path of it on the other server.
	path(0, "203.0.113.8", 3868, s1, g1, 0xa1)
	path(1, "203.0.113.9", 3868, s1, g1, 0xa1)
	path(1, "198.51.100.200", 3868, s1, g1, 0xa1)
	var tk assoc.Key
	tk.Proto, tk.Set, tk.Kind = packet.ProtoSCTP, id, assoc.KindTag
	binary.BigEndian.PutUint32(tk.Addr[:4], 0xa1)
	put(1, tk, assoc.Value{Server: s1, Gen: g1, Flags: assoc.FlagProven, LastSeen: now})
	path(0, "203.0.113.20", 3868, s2, g2, 0xb2)
	path(0, "203.0.113.21", 3868, s1, g1, 0xb2)
	p.Worker(1).Update(func(c *fastpath.Counters) { c.TagIndexHits, c.TagCollisions, c.DiameterStale = 7, 1, 3 })

	api := slowpath.New(apitest.NewBackend(spec), spec.API, slowpath.Options{Plane: func() slowpath.Plane { return p }})
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	d := &daemon{srv: srv, api: strings.TrimPrefix(srv.URL, "http://")}

	out := d.mustRun(t, "assoc", "--client", "203.0.113.8")
	parts := strings.Split(out, "\n\n")
	if len(parts) != 2 {
		t.Fatalf("ctl assoc --client 203.0.113.8: %d blocks, want the associations and their SCTP paths:\n%s", len(parts), out)
	}
	rows := checkTable(t, lines(parts[1]), "CLIENT", "PORT", "SET", "SERVER", "TAG", "INDEXED", "PATHS")
	want := [][]string{{"203.0.113.8", "3868", "dra", "dra-1", "0x000000a1", "yes",
		"198.51.100.200:3868@eth1/1,203.0.113.8:3868@eth1/0,203.0.113.9:3868@eth1/1"}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("ctl assoc paths = %q, want %q\n%s", rows, want, out)
	}

	out = d.mustRun(t, "assoc", "--client", "203.0.113.20")
	if !strings.Contains(out, "0x000000b2  no ") || !strings.Contains(out, "203.0.113.21:3868@eth1/0->dra-1") {
		t.Errorf("ctl assoc of a collided tag: want tag 0xb2 not indexed and the other server's path marked:\n%s", out)
	}

	out = d.mustRun(t, "counters")
	parts = strings.Split(out, "\n\n")
	if len(parts) < 4 {
		t.Fatalf("counters has %d blocks, want the signalling table as the fourth:\n%s", len(parts), out)
	}
	sig := strings.TrimSuffix(strings.TrimRight(parts[3], "\n"), "\nno drops")
	rows = checkTable(t, lines(sig), "WORKER", "SCTP-TAG-INDEX-HITS", "SCTP-TAG-COLLISIONS", "DIAMETER-STALE")
	if want := [][]string{{"eth1/0", "0", "0", "0"}, {"eth1/1", "7", "1", "3"}, {"total", "7", "1", "3"}}; !reflect.DeepEqual(rows, want) {
		t.Errorf("counters signalling = %q, want %q\n%s", rows, want, out)
	}

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"ipfront_sctp_tag_index_hits_total 7", "ipfront_sctp_tag_collisions_total 1", "ipfront_diameter_stale_total 3"} {
		if !strings.Contains(string(body), "\n"+m+"\n") {
			t.Errorf("GET /metrics lacks %q", m)
		}
	}
}
