package slowpath_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/fastpath/packet"
	"github.com/ipfront/ipfront/slowpath"
	"github.com/ipfront/ipfront/slowpath/apitest"
	"github.com/ipfront/ipfront/slowpath/config"
)

// fuzzPaths are the API's routes (and near misses), so that the fuzzer
// starts inside every handler; the input's suffix and query go after one.
var fuzzPaths = []string{
	"/v1/status", "/v1/counters", "/v1/sets", "/v1/servers", "/v1/associations", "/v1/alarms",
	"/v1/expectations", "/v1/persistence", "/v1/reload", "/v1/servers/web/web-a/drain",
	"/v1/servers/web/198.51.100.12/enable", "/v1/servers/", "/metrics", "/", "/v1/", "/debug/pprof/",
}

var fuzzMethods = []string{http.MethodGet, http.MethodPost, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions, "PATCH", "BREW"}

// apiState is what a request may change: the generation, reloads and admin
// state. A read must leave it as it was.
type apiState struct {
	gen     uint64
	reloads int
	drained []bool
}

func stateOf(b *apitest.Backend) apiState {
	st := apiState{gen: b.Generation(), reloads: b.Reloads()}
	for _, s := range b.Servers() {
		st.drained = append(st.drained, s.Drained)
	}
	return st
}

func (s apiState) equal(o apiState) bool {
	return s.gen == o.gen && s.reloads == o.reloads && slices.Equal(s.drained, o.drained)
}

// FuzzAPI sends arbitrary requests (method, path, query, headers, body) to
// the control API, once to a loopback listener without a token and once to
// one that requires a token, and checks what a client and an operator rely
// on whatever the input:
//   - no handler panics or answers 500 (the fake backend never fails);
//   - a reply declared JSON is valid JSON, and an error reply under /v1/ is
//     the v1 error object with a message;
//   - a read (GET, HEAD, OPTIONS, ...) never changes the daemon: generation,
//     reloads and drain state stay;
//   - without the right bearer token nothing succeeds (no 2xx) and nothing
//     changes.
func FuzzAPI(f *testing.F) {
	spec := apitest.Spec(f, apitest.ScenarioTOML)
	b := apitest.NewBackend(spec)
	p := apitest.NewPlane(f, spec, 64, 2, -1)
	seen := assoc.Now() - 5
	for port := uint16(1000); port < 1010; port++ {
		p.Associate(f, 0, client1, port, packet.ProtoTCP, "web", webA, 0, seen)
	}
	p.Associate(f, 1, client6, 5300, packet.ProtoUDP, "dns", dnsSrv, 0, seen)
	b.SetPlane(p)
	open := slowpath.New(b, config.API{Listen: "127.0.0.1:9180"}, slowpath.Options{})
	const token = "fuzz-token-0123456789"
	guarded := slowpath.New(b, config.API{Listen: "192.0.2.1:9180", Token: token}, slowpath.Options{})

	for _, s := range []struct {
		method, path                       uint8
		suffix, query, auth, origin, ctype string
		body                               []byte
	}{
		{0, 0, "", "", "", "", "", nil},
		{0, 4, "", "set=web&client=203.0.113.1&limit=3", "", "", "", nil},
		{0, 4, "", "cursor=AQAAAAAAAAAAAA&limit=-1", "", "", "", nil},
		{0, 4, "", "cursor=%ff%00&set=nope&client=::ffff:1.2.3.4", "", "", "", nil},
		{0, 7, "", "client=2001:db8::/129&set=web", "", "", "", nil},
		{0, 6, "", "set=%00", "", "", "", nil},
		{0, 3, "", "set=dns", "Bearer " + token, "", "", nil},
		{1, 8, "", "", "", "", "", nil},
		{1, 9, "", "", "", "https://evil.example", "text/plain", []byte("x=1")},
		{1, 9, "", "", "Bearer " + token, "", "application/json", []byte(`{}`)},
		{1, 10, "/../../reload", "", "", "", "", nil},
		{2, 12, "", "", "", "", "", nil},
		{3, 8, "", "", "Bearer wrong", "", "", []byte("{")},
	} {
		f.Add(s.method, s.path, s.suffix, s.query, s.auth, s.origin, s.ctype, s.body)
	}

	f.Fuzz(func(t *testing.T, method, path uint8, suffix, query, auth, origin, ctype string, body []byte) {
		for _, api := range []struct {
			name    string
			h       http.Handler
			granted bool // the request may act: no token needed, or the right one
		}{
			{"loopback", open.Handler(), true},
			{"token", guarded.Handler(), auth == "Bearer "+token},
		} {
			req := httptest.NewRequest(http.MethodGet, "/", bytes.NewReader(body))
			req.Method = fuzzMethods[int(method)%len(fuzzMethods)]
			req.URL = &url.URL{Path: fuzzPaths[int(path)%len(fuzzPaths)] + suffix, RawQuery: query}
			req.RequestURI = req.URL.RequestURI()
			req.Host = "127.0.0.1:9180"
			for k, v := range map[string]string{"Authorization": auth, "Origin": origin, "Content-Type": ctype} {
				if v != "" {
					req.Header.Set(k, v)
				}
			}
			before := stateOf(b)
			rec := httptest.NewRecorder()
			api.h.ServeHTTP(rec, req)
			after := stateOf(b)

			code, reply := rec.Code, rec.Body.Bytes()
			what := func() string {
				return api.name + ": " + req.Method + " " + req.URL.String() + " = " + http.StatusText(code) + " " + string(reply)
			}
			if code < 100 || code > 599 || code == http.StatusInternalServerError {
				t.Fatalf("%s: status %d", what(), code)
			}
			if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") && req.Method != http.MethodHead && !json.Valid(reply) {
				t.Fatalf("%s: reply declared JSON is not valid JSON", what())
			}
			if code >= 400 && strings.HasPrefix(req.URL.Path, "/v1/") && req.Method != http.MethodHead {
				var e slowpath.ErrorReply
				if err := json.Unmarshal(reply, &e); err != nil || e.Error == "" {
					t.Fatalf("%s: error reply is not the v1 error object: %v", what(), err)
				}
			}
			switch req.Method {
			case http.MethodGet, http.MethodHead, http.MethodOptions:
				if !before.equal(after) {
					t.Fatalf("%s: a read changed the daemon: %+v -> %+v", what(), before, after)
				}
			}
			if !api.granted {
				if code >= 200 && code < 300 {
					t.Fatalf("%s: succeeded without the bearer token", what())
				}
				if !before.equal(after) {
					t.Fatalf("%s: changed the daemon without the bearer token: %+v -> %+v", what(), before, after)
				}
			}
		}
	})
}
