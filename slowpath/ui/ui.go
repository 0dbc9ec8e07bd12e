// Package ui is ipfront's status page: static HTML, CSS and JavaScript
// embedded in the binary and served by the control API (slowpath.API) on
// its own listener, behind its authorization and guard, at GET / and
// GET /ui/....
//
// The page holds no data of its own. Its script polls the JSON API that
// "ipfront ctl" reads (/v1/status, /v1/sets, /v1/servers, /v1/counters,
// /v1/alarms, /v1/persistence, /v1/expectations, /v1/bgp, /v1/ha, and the
// reload metrics of /metrics) once a second and redraws itself without
// reloading; its drain and enable buttons post to the endpoints "ipfront
// ctl drain" and "enable" use, after a confirmation. So it shows nothing a
// user of ipfront ctl could not see, and can do nothing ctl cannot.
//
// Nothing is loaded from elsewhere (no CDN, no web fonts): the Content
// Security Policy the page is served with allows only this origin, and a
// test checks the assets name no other.
package ui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"path"
	"time"
)

//go:embed assets
var assets embed.FS

// Options configure the page's handlers.
type Options struct {
	// Control reports whether the client of r may drain and enable
	// servers; the page shows its buttons only then. Nil means never.
	Control func(r *http.Request) bool
}

// Session is the body of GET /ui/session: what the page may offer the
// client that loaded it.
type Session struct {
	// Control is whether the drain and enable buttons are shown.
	Control bool `json:"control"`
}

// Paths are the paths Register serves, for tests and documentation.
var Paths = []string{"/", "/ui/session", "/ui/app.js", "/ui/style.css"}

// contentSecurityPolicy allows the page only this origin's script, style
// and API, and no framing: a page that framed it could trick a click onto
// a drain button.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Register adds the page's routes to mux: GET / (the page), GET
// /ui/app.js and /ui/style.css (its assets) and GET /ui/session. The
// caller wraps mux in its authorization: the page is served exactly to
// those who may read the API.
func Register(mux *http.ServeMux, o Options) {
	mux.Handle("GET /{$}", asset("index.html"))
	mux.Handle("GET /ui/app.js", asset("app.js"))
	mux.Handle("GET /ui/style.css", asset("style.css"))
	mux.HandleFunc("GET /ui/session", func(w http.ResponseWriter, r *http.Request) {
		s := Session{Control: o.Control != nil && o.Control(r)}
		secure(w.Header())
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(s)
	})
}

// asset serves one embedded file. The ETag is the content's digest, so a
// browser revalidates cheaply and an upgraded daemon's page is never
// mixed with an old script.
func asset(name string) http.Handler {
	body, err := fs.ReadFile(assets, path.Join("assets", name))
	if err != nil {
		panic("ui: asset missing from the embedded files: " + name) // a build mistake, caught by the tests
	}
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	ctype := map[string]string{".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8"}[path.Ext(name)]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		secure(h)
		h.Set("Content-Type", ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", etag)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
	})
}

// secure sets the headers every response of the page carries.
func secure(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}
