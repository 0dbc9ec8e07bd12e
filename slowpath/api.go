package slowpath

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
	"github.com/ipfront/ipfront/slowpath/config"
)

// Backend is what the API needs from the daemon. *Daemon implements it.
type Backend interface {
	Ready() bool
	Generation() uint64
	Spec() *config.Spec
	Plane() Plane // nil until the data plane started
	Servers() []ServerState
	Alarms() []Alarm
	AlarmsRaised() map[string]uint64
	TableFullRaised() map[string]uint64 // table-full alarms raised per worker since start
	Reload(ctx context.Context) (ReloadReply, error)
	SetDrained(ctx context.Context, set, server string, drained bool) error
}

var _ Backend = (*Daemon)(nil)

// Options tune an API beyond its [api] configuration; the zero value is what
// the daemon uses.
type Options struct {
	// Plane returns the data plane to read, or nil while none runs. Nil
	// means the backend's Plane.
	Plane func() Plane
	// SampleInterval is how often rates (pps, bps) are sampled; zero means
	// one second.
	SampleInterval time.Duration
	// OpTimeout bounds a reload, drain or enable waiting for the control
	// goroutine; zero means 30 seconds.
	OpTimeout time.Duration
	// Limits bound each client's time, memory and connections; zero
	// fields take the defaults (api_guard.go).
	Limits Limits
}

// API is the control and observation endpoint: JSON over HTTP, plus
// Prometheus metrics and optionally pprof, on one listener ("host:port" or
// a unix socket of mode 0600). It only reads published state; changes go
// through the Backend, which runs them on the control goroutine.
//
// A listener reachable from other hosts requires TLS and "Authorization:
// Bearer <api.token>" on every request; so does any listener with a token
// set. Every listener bounds each client's time, body and connections, and
// refuses state-changing requests a browser sends cross-site (Limits,
// guard).
type API struct {
	b        Backend
	cfg      config.API
	plane    func() Plane
	opTO     time.Duration
	limits   Limits
	mux      *http.ServeMux
	handler  http.Handler
	registry *prometheus.Registry
	rates    *sampler

	srv *http.Server
	ln  net.Listener

	stopOnce sync.Once
	stop     chan struct{} // closed by Shutdown; ends the sampler
}

// DefaultOpTimeout bounds reload, drain and enable requests.
const DefaultOpTimeout = v1.OpTimeout

// New returns an API for b without a listener; serve Handler yourself, or
// use Listen. Rates are sampled only under Serve, or by SampleRates.
func New(b Backend, cfg config.API, o Options) *API {
	a := &API{b: b, cfg: cfg, plane: o.Plane, opTO: o.OpTimeout, stop: make(chan struct{})}
	if a.plane == nil {
		a.plane = b.Plane
	}
	if a.opTO <= 0 {
		a.opTO = DefaultOpTimeout
	}
	a.limits = o.Limits.withDefaults(a.opTO)
	interval := o.SampleInterval
	if interval <= 0 {
		interval = time.Second
	}
	a.rates = newSampler(interval)

	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(metricCollectors(b, a.plane)...) // metrics_ops.go

	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", a.status)
	mux.HandleFunc("GET /v1/counters", a.counters)
	mux.HandleFunc("GET /v1/sets", a.sets)
	mux.HandleFunc("GET /v1/servers", a.servers)
	mux.HandleFunc("GET /v1/associations", a.associations)
	mux.HandleFunc("GET /v1/alarms", a.alarms)
	mux.HandleFunc("GET /v1/expectations", a.expectations) // api_helper.go
	mux.HandleFunc("GET /v1/persistence", a.persistence)   // api_persist.go
	mux.HandleFunc("POST /v1/reload", a.reload)
	mux.HandleFunc("POST /v1/servers/{set}/{server}/drain", a.drain(true))
	mux.HandleFunc("POST /v1/servers/{set}/{server}/enable", a.drain(false))
	a.routeBGP(mux) // api_bgp.go
	a.routeHA(mux)  // api_ha.go
	a.routeUI(mux)  // api_ui.go: the status page at / and /ui/
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	if cfg.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	a.mux = mux
	a.handler = a.guard(a.authorize(http.HandlerFunc(a.route)))
	return a
}

// Listen opens the listener cfg.Listen names and returns an API ready to
// Serve, with the daemon's options (ListenWith).
func Listen(b Backend, cfg config.API) (*API, error) {
	return ListenWith(b, cfg, Options{})
}

// ListenWith opens the listener cfg.Listen names and returns an API ready
// to Serve. A unix socket is created with mode 0600; a dead socket at the
// path is replaced, a live one (another daemon) fails with ErrAPIInUse and
// any other file is left alone and reported (api_guard_listen.go). A TCP
// listener with cfg.TLSCert serves TLS; one reachable from other hosts
// without it is refused. o.Limits bound every connection.
func ListenWith(b Backend, cfg config.API, o Options) (*API, error) {
	a := New(b, cfg, o)
	ln, err := openListener(cfg, a.limits.MaxConns)
	if err != nil {
		return nil, err
	}
	a.ln = ln
	a.srv = &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: a.limits.ReadHeaderTimeout,
		ReadTimeout:       a.limits.ReadTimeout,
		WriteTimeout:      a.limits.WriteTimeout,
		IdleTimeout:       a.limits.IdleTimeout,
		MaxHeaderBytes:    a.limits.MaxHeaderBytes,
	}
	return a, nil
}

// Handler serves every endpoint, with authorization applied.
func (a *API) Handler() http.Handler { return a.handler }

// Registry is the Prometheus registry /metrics serves.
func (a *API) Registry() *prometheus.Registry { return a.registry }

// Addr is the address the API listens on.
func (a *API) Addr() net.Addr { return a.ln.Addr() }

// Serve samples rates and serves requests on the listener Listen opened
// until Shutdown.
func (a *API) Serve() error {
	if a.srv == nil {
		return errors.New("api: Serve needs an API from Listen")
	}
	go a.rates.run(a.SampleRates, a.stop)
	if err := a.srv.Serve(a.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// SampleRates reads the counters rates are computed from, as Serve does
// every sampling interval: pps and bps cover the time between the last two
// readings. Tests call it to get rates without waiting.
func (a *API) SampleRates(now time.Time) {
	if p := a.plane(); p != nil {
		a.rates.sample(now, p)
	}
}

// Shutdown stops the listener and the sampler and waits briefly for
// requests in flight.
func (a *API) Shutdown() {
	a.stopOnce.Do(func() { close(a.stop) })
	if a.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
	_ = a.ln.Close() // unlocks a unix socket even if Serve never ran
}

// route dispatches to the mux, answering unknown paths and methods in JSON
// like every other error.
func (a *API) route(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.mux.Handler(r); pattern != "" {
		a.mux.ServeHTTP(w, r)
		return
	}
	rec := &statusRecorder{header: w.Header()}
	a.mux.ServeHTTP(rec, r) // 404, or 405 with an Allow header
	code := rec.code
	if code == 0 || code == http.StatusOK {
		code = http.StatusNotFound
	}
	writeError(w, code, fmt.Errorf("%s %s: %s", r.Method, r.URL.Path, strings.ToLower(http.StatusText(code))))
}

// statusRecorder keeps the status code and headers of a response and drops
// its body.
type statusRecorder struct {
	header http.Header
	code   int
}

func (s *statusRecorder) Header() http.Header         { return s.header }
func (s *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusRecorder) WriteHeader(code int)        { s.code = code }

// authorize requires the bearer token where the configuration calls for
// one: on a listener reachable from other hosts (the configuration then
// guarantees a token), and on any listener an operator gave a token. A
// non-loopback listener without a token refuses everything.
func (a *API) authorize(next http.Handler) http.Handler {
	if LoopbackListen(a.cfg.Listen) && a.cfg.Token == "" {
		return next
	}
	want := sha256.Sum256([]byte(a.cfg.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			// A browser on the status page: it asks for a user name and
			// password once and sends them on every request; the
			// password is the token, the name is not checked.
			_, tok, ok = r.BasicAuth()
		}
		// Comparing digests keeps the comparison constant-time in the
		// token's length too.
		got := sha256.Sum256([]byte(tok))
		if !ok || a.cfg.Token == "" || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			w.Header().Add("WWW-Authenticate", `Bearer realm="ipfront"`)
			w.Header().Add("WWW-Authenticate", `Basic realm="ipfront: the API token is the password", charset="UTF-8"`)
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong bearer token"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// LoopbackListen reports whether an [api] listen address is reachable only
// from this host: a unix socket, localhost or a loopback IP.
func LoopbackListen(listen string) bool {
	if strings.HasPrefix(listen, "unix:") {
		return true
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ErrorReply is the body of every error response, defined in package v1.
type ErrorReply = v1.Error

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, ErrorReply{Error: err.Error()})
}
