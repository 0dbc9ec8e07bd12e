package config_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

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
	for _, ts := range s.TargetSets {
		if len(ts.Servers) < 1 || len(ts.Servers) > config.MaxServers {
			t.Fatalf("target set %q has %d servers", ts.Name, len(ts.Servers))
		}
		if len(ts.Protocols) == 0 || len(ts.Ports) == 0 || ts.TableSize < 251 {
			t.Fatalf("bad target set %+v", ts)
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
	}
}
