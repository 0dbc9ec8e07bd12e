package ui_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ipfront/ipfront/slowpath/ui"
)

func serve(t *testing.T, o ui.Options) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	ui.Register(mux, o)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func fetch(t *testing.T, srv *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// TestPathsServed: every path of the page answers with its content type and
// the headers that keep it from being framed or sniffed, and the page loads
// the script and style sheet that are served.
func TestPathsServed(t *testing.T) {
	srv := serve(t, ui.Options{})
	want := map[string]string{"/": "text/html; charset=utf-8", "/ui/app.js": "text/javascript; charset=utf-8",
		"/ui/style.css": "text/css; charset=utf-8", "/ui/session": "application/json"}
	for _, p := range ui.Paths {
		resp, body := fetch(t, srv, p)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != want[p] || body == "" {
			t.Errorf("GET %s = %d %q (%d bytes), want 200 %q", p, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), want[p])
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: CSP %q, nosniff %q, frame options %q; want a same-origin policy, no framing, nosniff",
				p, csp, resp.Header.Get("X-Content-Type-Options"), resp.Header.Get("X-Frame-Options"))
		}
	}
	_, page := fetch(t, srv, "/")
	for _, ref := range []string{`src="/ui/app.js"`, `href="/ui/style.css"`, `name="viewport"`} {
		if !strings.Contains(page, ref) {
			t.Errorf("GET / lacks %s", ref)
		}
	}
	if resp, _ := fetch(t, srv, "/index.html"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /index.html = %d, want 404: the page is only at /", resp.StatusCode)
	}
}

// TestRevalidation: a browser holding the page revalidates it with its
// ETag and gets 304 until the binary's assets change.
func TestRevalidation(t *testing.T) {
	srv := serve(t, ui.Options{})
	resp, _ := fetch(t, srv, "/ui/app.js")
	etag := resp.Header.Get("ETag")
	if etag == "" {
		t.Fatal("GET /ui/app.js: no ETag")
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ui/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	again, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusNotModified {
		t.Errorf("GET /ui/app.js with If-None-Match %s = %d, want 304", etag, again.StatusCode)
	}
}

// TestSession: the buttons are offered exactly when Options.Control says
// so, per request.
func TestSession(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    ui.Options
		hdr  string
		want bool
	}{
		{"no control func", ui.Options{}, "", false},
		{"control refused", ui.Options{Control: func(*http.Request) bool { return false }}, "", false},
		{"control by header", ui.Options{Control: func(r *http.Request) bool { return r.Header.Get("X-Test") == "yes" }}, "yes", true},
		{"control by header, absent", ui.Options{Control: func(r *http.Request) bool { return r.Header.Get("X-Test") == "yes" }}, "", false},
	} {
		srv := serve(t, tc.o)
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/ui/session", nil)
		if tc.hdr != "" {
			req.Header.Set("X-Test", tc.hdr)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var s ui.Session
		err = json.NewDecoder(resp.Body).Decode(&s)
		resp.Body.Close()
		if err != nil || s.Control != tc.want {
			t.Errorf("%s: GET /ui/session = %+v (%v), want control %v", tc.name, s, err, tc.want)
		}
	}
}

// TestNothingFromElsewhere: the assets name no other origin (no CDN, no
// web fonts, no imports), so the page works on a machine without internet
// and its policy can stay same-origin. The SVG namespace name is a name,
// not a fetch.
func TestNothingFromElsewhere(t *testing.T) {
	files, err := filepath.Glob("assets/*")
	if err != nil || len(files) < 3 {
		t.Fatalf("assets: %v %v", files, err)
	}
	url := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import|@font-face|url\(`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range url.FindAllString(string(b), -1) {
			if m != "http://www.w3.org" {
				t.Errorf("%s names %q: the page must load nothing from elsewhere", f, m)
			}
		}
	}
}
