package config_test

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

// FuzzParse checks that Parse never panics, that every error it returns has
// a position inside the document, and that every Spec it returns holds the
// invariants the data plane relies on.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(configsDir, "*.toml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"[dataplane]\ninterfaces = [\"eth1\"]\n",
		"dataplane.interfaces = [\"eth1\"]\n[[target_set]]\nname = \"a\"\naddress = \"::1\"\nserver = [{address = \"::2\"}]\n",
		"[dataplane]\ninterfaces = [\"eth1\"]\n[[target_set]]\nname = \"a\"\naddress = \"192.0.2.1\"\nports = [\"1-2\", 3]\n[[target_set.server]]\naddress = \"10.0.0.1\"\nweight = 0\n",
		"target_set = [5, {name = \"x\"}]\n[target_set.server]\n",
		"[a.b]\n[a]\nc = { d = [1, [2, {e = 3}]] }\n",
		"[dataplane]\ninterfaces = [\"eth1\"]\n[[target_set]]\nname = \"a\"\naddress = \"192.0.2.1\"\nmethod = \"peer_aware_least_load\"\n" +
			"on_server_failure = \"keep\"\nserver = [{address = \"10.0.0.1\"}]\n" +
			"health = {type = \"http\", port = 80, path = \"/h\", expect_status = 204, interval = \"1s\", timeout = \"999ms\", rise = 1, fall = 3}\n" +
			"peer_group = [{name = \"p\", prefixes = [\"198.51.100.0/28\", \"0.0.0.0/0\"]}]\n" +
			"balance = {threshold = 0.3, clear = 0, window = \"1s\", sustain = \"0s\", enabled = false}\n",
		"[dataplane]\ninterfaces = [\"eth1\"]\n[[target_set]]\nname = \"a\"\naddress = \"2001:db8::1\"\nports = [\"*\"]\n" +
			"server = [{address = \"2001:db8::2\"}]\n[target_set.health]\ntype = \"none\"\n[target_set.balance]\nthreshold = 1\n",
		"[dataplane]\ninterfaces = [\"eth1\"]\nqueues = [0]\npartial_queues = true\nhash_seed = \"0123456789abcdef\"\nvlans = [1, 4094]\n" +
			"[[target_set]]\nname = \"a\"\naddress = \"192.0.2.1\"\ndelete_age = \"1s\"\nsyn_age = \"1s\"\nserver = [{address = \"10.0.0.1\"}]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := config.Parse("f.toml", data)
		if err != nil {
			checkFuzzErrors(t, data, err)
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("Parse() returned a Spec that fails Validate():\n%v", err)
		}
		checkInvariants(t, s)
		again, err := config.Parse("f.toml", data)
		if err != nil || !reflect.DeepEqual(s, again) {
			t.Fatalf("Parse() is not deterministic: %+v, then %+v, %v", s, again, err)
		}
	})
}

func checkFuzzErrors(t *testing.T, data []byte, err error) {
	t.Helper()
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		t.Fatalf("Parse() error = %T %v, want non-empty config.Errors", err, err)
	}
	lines := bytes.Count(data, []byte("\n")) + 1
	for _, e := range errs {
		if e.File != "f.toml" || e.Line < 1 || e.Line > lines || e.Column < 1 || e.Msg == "" {
			t.Fatalf("error %#v has no valid position in a %d-line document", e, lines)
		}
	}
}

// checkInvariants checks, independently of Validate, what the data plane
// assumes about a Spec.
func checkInvariants(t *testing.T, s *config.Spec) {
	t.Helper()
	d := s.Dataplane
	if len(d.Interfaces) == 0 || d.Frames < 2*d.RingSize || d.Frames&(d.Frames-1) != 0 ||
		d.RingSize&(d.RingSize-1) != 0 || d.BatchSize < 1 || d.BatchSize > d.RingSize {
		t.Fatalf("bad dataplane %+v", d)
	}
	// The data plane's fixed room (limits.go) and the robustness keys.
	if len(d.Interfaces) > config.MaxInterfaces || len(s.TargetSets) > config.MaxTargetSets ||
		(d.PartialQueues && d.Queues == nil) || (!d.HashSeedSet && d.HashSeed != 0) {
		t.Fatalf("bad dataplane %+v with %d target sets", d, len(s.TargetSets))
	}
	vlans := make(map[uint16]bool)
	for _, v := range d.VLANs {
		if v < 1 || v > 4094 || vlans[v] {
			t.Fatalf("bad VLAN list %v", d.VLANs)
		}
		vlans[v] = true
	}
	for _, ts := range s.TargetSets {
		if len(ts.Servers) < 1 || len(ts.Servers) > config.MaxServers {
			t.Fatalf("target set %q has %d servers", ts.Name, len(ts.Servers))
		}
		if len(ts.Protocols) == 0 || len(ts.Ports) == 0 || ts.TableSize < 251 || len(ts.PeerGroups) > config.MaxPeerGroups {
			t.Fatalf("bad target set %+v", ts)
		}
		if ts.SynAge < time.Second || (ts.SynAge >= ts.DeleteAge && ts.SynAge != time.Second) {
			t.Fatalf("target set %q: syn_age %s with delete_age %s", ts.Name, ts.SynAge, ts.DeleteAge)
		}
		seen := make(map[any]bool)
		for _, srv := range ts.Servers {
			if srv.Address.Is4() != ts.Address.Is4() || srv.Address == ts.Address || seen[srv.Address] {
				t.Fatalf("target set %q: bad server %v (VIP %v)", ts.Name, srv.Address, ts.Address)
			}
			seen[srv.Address] = true
			if srv.Weight < 0 || srv.Weight > 1000 || srv.Name == "" {
				t.Fatalf("target set %q: bad server %+v", ts.Name, srv)
			}
		}
		for _, r := range ts.Ports {
			if r.First == 0 || r.First > r.Last {
				t.Fatalf("target set %q: bad port range %v", ts.Name, r)
			}
		}
		checkOptionInvariants(t, &ts)
	}
}

// checkOptionInvariants checks what the selection, health checks and the
// balancing alarm assume about a target set.
func checkOptionInvariants(t *testing.T, ts *config.TargetSet) {
	t.Helper()
	switch ts.Method {
	case config.MethodHash, config.MethodLeastLoad, config.MethodPeerAware:
	default:
		t.Fatalf("target set %q: bad method %q", ts.Name, ts.Method)
	}
	if ts.OnServerFailure != config.FailureReselect && ts.OnServerFailure != config.FailureKeep {
		t.Fatalf("target set %q: bad on_server_failure %q", ts.Name, ts.OnServerFailure)
	}

	h := ts.Health
	switch h.Type {
	case config.HealthTCP:
		if h.Path != "" || h.ExpectStatus != 0 {
			t.Fatalf("target set %q: tcp health check with HTTP settings %+v", ts.Name, h)
		}
	case config.HealthHTTP:
		if !strings.HasPrefix(h.Path, "/") || strings.HasPrefix(h.Path, "//") || strings.ContainsAny(h.Path, "# \t\r\n") ||
			h.ExpectStatus < 100 || h.ExpectStatus > 599 {
			t.Fatalf("target set %q: bad http health check %+v", ts.Name, h)
		}
	case config.HealthNone:
		if h.Path != "" || h.ExpectStatus != 0 {
			t.Fatalf("target set %q: health check none with HTTP settings %+v", ts.Name, h)
		}
	default:
		t.Fatalf("target set %q: bad health check type %q", ts.Name, h.Type)
	}
	if h.Type != config.HealthNone && h.Port == 0 {
		t.Fatalf("target set %q: health check without a port %+v", ts.Name, h)
	}
	if h.Interval < 100*time.Millisecond || h.Timeout <= 0 || h.Timeout >= h.Interval ||
		h.Rise < 1 || h.Rise > 100 || h.Fall < 1 || h.Fall > 100 {
		t.Fatalf("target set %q: bad health check timing %+v", ts.Name, h)
	}

	if (ts.Method == config.MethodPeerAware) != (len(ts.PeerGroups) > 0) {
		t.Fatalf("target set %q: method %q with %d peer groups", ts.Name, ts.Method, len(ts.PeerGroups))
	}
	names := make(map[string]bool)
	prefixes := make(map[netip.Prefix]bool)
	for _, g := range ts.PeerGroups {
		if g.Name == "" || names[g.Name] || len(g.Prefixes) == 0 {
			t.Fatalf("target set %q: bad peer group %+v", ts.Name, g)
		}
		names[g.Name] = true
		for _, p := range g.Prefixes {
			if !p.IsValid() || p != p.Masked() || p.Addr().Is4() != ts.Address.Is4() || p.Addr().Is4In6() || prefixes[p] {
				t.Fatalf("target set %q: bad peer prefix %v in %+v (VIP %v)", ts.Name, p, g, ts.Address)
			}
			prefixes[p] = true
		}
	}

	b := ts.Balance
	if !(b.Threshold > 0 && b.Threshold < 1) || !(b.Clear >= 0 && b.Clear < b.Threshold) ||
		b.Window < time.Second || b.Sustain < 0 {
		t.Fatalf("target set %q: bad balance %+v", ts.Name, b)
	}
}
