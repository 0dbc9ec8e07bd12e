package slowpath_test

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/slowpath/config"
	"github.com/ipfront/ipfront/slowpath/ui"
)

// uiGet fetches path from s with optional header pairs; the page's replies
// are not all JSON, so this does not use scenario.do.
func uiGet(t *testing.T, s *scenario, path string, header ...string) (int, string) {
	t.Helper()
	resp, body := s.send(t, http.MethodGet, path, header...)
	return resp.StatusCode, string(body)
}

// TestStatusPageUnderAuth: the page and its assets are served by the API
// to exactly those who may read the API: without the token a listener that
// requires one answers 401 for them too; with it, the page is served and
// offers its buttons; a loopback listener without a token serves it with
// buttons (ctl could drain from there as well).
func TestStatusPageUnderAuth(t *testing.T) {
	locked := newScenario(t, config.API{Listen: "0.0.0.0:9180", Token: "s3cret"})
	for _, p := range ui.Paths {
		if code, body := uiGet(t, locked, p); code != http.StatusUnauthorized {
			t.Errorf("GET %s without the token = %d %.80q, want 401", p, code, body)
		}
		if code, _ := uiGet(t, locked, p, "Authorization", "Bearer wrong"); code != http.StatusUnauthorized {
			t.Errorf("GET %s with a wrong token = %d, want 401", p, code)
		}
		if code, body := uiGet(t, locked, p, "Authorization", "Bearer s3cret"); code != http.StatusOK {
			t.Errorf("GET %s with the token = %d %.80q, want 200", p, code, body)
		}
	}
	wantControl := func(s *scenario, want bool, header ...string) {
		t.Helper()
		code, body := uiGet(t, s, "/ui/session", header...)
		var got ui.Session
		if err := json.Unmarshal([]byte(body), &got); code != http.StatusOK || err != nil || got.Control != want {
			t.Errorf("GET /ui/session %q = %d %s, want control %v", header, code, body, want)
		}
	}
	wantControl(locked, true, "Authorization", "Bearer s3cret")
	wantControl(newScenario(t, config.API{Listen: "127.0.0.1:9180"}), true)

	// An unknown asset is the API's JSON 404, not a directory listing.
	open := newScenario(t, config.API{})
	if code, body := uiGet(t, open, "/ui/"); code != http.StatusNotFound || !strings.Contains(body, `"error"`) {
		t.Errorf("GET /ui/ = %d %q, want the API's 404", code, body)
	}
	wantError(t, open, http.MethodPost, "/", http.StatusMethodNotAllowed, "method not allowed")
}

// TestStatusPageEndpointsExist: every API path the page's script reads or
// posts to is one the API serves, so renaming an endpoint breaks this test
// rather than the page.
func TestStatusPageEndpointsExist(t *testing.T) {
	js, err := os.ReadFile("ui/assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	s := newScenario(t, config.API{})
	paths := regexp.MustCompile(`'(/(?:v1|ui)/[a-z]+|/metrics)'`).FindAllStringSubmatch(string(js), -1)
	if len(paths) < 10 {
		t.Fatalf("found %d API paths in app.js, want the ten it polls: %v", len(paths), paths)
	}
	for _, m := range paths {
		if code, body := uiGet(t, s, m[1]); code != http.StatusOK {
			t.Errorf("app.js reads %s: GET = %d %.100q, want 200", m[1], code, body)
		}
	}
	// The buttons post to /v1/servers/{set}/{server}/{drain,enable}.
	if !strings.Contains(string(js), "`/v1/servers/${encodeURIComponent(set)}/${encodeURIComponent(server)}/${action}`") {
		t.Errorf("app.js no longer posts to /v1/servers/{set}/{server}/{action}")
	}
	for _, action := range []string{"drain", "enable"} {
		req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/v1/servers/web/web-a/"+action, nil)
		resp, err := s.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("POST /v1/servers/web/web-a/%s (the page's button) = %d, want 200", action, resp.StatusCode)
		}
	}
}
