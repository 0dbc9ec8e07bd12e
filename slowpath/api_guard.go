package slowpath

import (
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// Limits bound what one client can hold of the API: time, memory and
// connections. Zero fields take the defaults given on each field; the
// daemon uses the defaults.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers (default 5s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included, from its
	// first byte (default 10s): a trickled body cannot keep a connection
	// and its goroutine, whether or not the client has the token.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request's handling and response (default the
	// operation timeout plus 10s, so a reload that waits its full
	// operation timeout still answers; it also caps pprof's ?seconds=).
	WriteTimeout time.Duration
	// IdleTimeout closes a kept-alive connection waiting for its next
	// request (default 60s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header block (default 32 KiB).
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request's body (default 64 KiB; no endpoint
	// takes more than a small JSON document). A longer declared body is
	// answered 413 before any of it is read, and the connection closed.
	MaxBodyBytes int64
	// MaxConns bounds the connections open at once (default 64); more are
	// answered 503 and closed as soon as they are accepted.
	MaxConns int
}

// Default limits; see Limits.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultIdleTimeout       = time.Minute
	DefaultMaxHeaderBytes    = 32 << 10
	DefaultMaxBodyBytes      = 64 << 10
	DefaultMaxConns          = 64
)

// withDefaults fills zero fields; opTO is the API's operation timeout,
// which the write timeout must outlast.
func (l Limits) withDefaults(opTO time.Duration) Limits {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&l.ReadTimeout, DefaultReadTimeout)
	def(&l.WriteTimeout, opTO+10*time.Second)
	def(&l.IdleTimeout, DefaultIdleTimeout)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxConns <= 0 {
		l.MaxConns = DefaultMaxConns
	}
	return l
}

// guard refuses, before authorization, what no endpoint should serve:
//   - on a loopback TCP listener without a token, a Host header that is not
//     localhost or a loopback IP: a web page that rebinds its own DNS name
//     to 127.0.0.1 is "same origin" to the browser, and only the name it
//     sends in Host gives it away;
//   - a body longer than MaxBodyBytes (413, connection closed);
//   - a state-changing request (any method but GET, HEAD, OPTIONS, TRACE) a
//     browser sent cross-site, told by Sec-Fetch-Site or by an Origin that
//     is not the Host (403), or that carries a body not declared
//     application/json (415): HTML forms and simple fetch requests, the
//     ones a browser sends cross-site without asking first, can only be
//     form-encoded or text/plain.
//
// Without these, any web page a loopback API's operator visits could drain
// servers or reload the daemon.
func (a *API) guard(next http.Handler) http.Handler {
	checkHost := a.cfg.Token == "" && LoopbackListen(a.cfg.Listen) && !strings.HasPrefix(a.cfg.Listen, "unix:")
	cop := http.NewCrossOriginProtection()
	maxBody := a.limits.MaxBodyBytes
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if checkHost && !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, fmt.Errorf("host %q is not this API's address: use 127.0.0.1, [::1] or localhost", r.Host))
			return
		}
		if r.ContentLength > maxBody {
			w.Header().Set("Connection", "close")
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("request body of %d bytes is over the limit of %d", r.ContentLength, maxBody))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
		if err := cop.Check(r); err != nil {
			writeError(w, http.StatusForbidden, fmt.Errorf("cross-origin request refused: %w", err))
			return
		}
		if !safeMethod(r.Method) {
			if err := jsonBody(r); err != nil {
				writeError(w, http.StatusUnsupportedMediaType, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// safeMethod reports whether a method only reads (RFC 9110, 9.2.1).
func safeMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// jsonBody accepts a state-changing request with no body and no content
// type (ipfront ctl, curl -X POST), or one declared application/json;
// anything else is what a cross-site form or fetch can send unasked.
func jsonBody(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength != 0 { // -1: chunked, length unknown
			return errors.New("a request body needs Content-Type: application/json")
		}
		return nil
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return fmt.Errorf("content type %q refused: state-changing requests take application/json or no body", ct)
	}
	return nil
}

// loopbackHost reports whether a request's Host names this host: localhost
// or a loopback IP, with or without a port. An empty Host (HTTP/1.0, which
// browsers do not speak) names nothing an attacker chose.
func loopbackHost(host string) bool {
	if host == "" {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
