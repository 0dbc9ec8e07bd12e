package slowpath_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/ipfront/ipfront/slowpath"
	"github.com/ipfront/ipfront/slowpath/apitest"
	"github.com/ipfront/ipfront/slowpath/config"
)

// These tests attack a real listener, as a client on the network would,
// and check the attack is refused and the API still answers afterwards.

// guard bounds how long a test waits for the server to act; reaching it
// is the failure (the server kept a connection it should have cut), not
// a measurement.
const guard = 20 * time.Second

// serveAPI listens per cfg and o, serves until the test ends, and returns
// the API and its backend.
func serveAPI(t *testing.T, cfg config.API, o slowpath.Options) (*slowpath.API, *apitest.Backend) {
	t.Helper()
	b := apitest.NewBackend(apitest.Spec(t, apitest.ScenarioTOML))
	api, err := slowpath.ListenWith(b, cfg, o)
	if err != nil {
		t.Fatalf("ListenWith(%+v) = %v", cfg, err)
	}
	done := make(chan error, 1)
	go func() { done <- api.Serve() }()
	t.Cleanup(func() {
		api.Shutdown()
		if err := <-done; err != nil {
			t.Errorf("Serve() = %v", err)
		}
	})
	return api, b
}

// healthy checks the API still answers a plain request on a new
// connection.
func healthy(t *testing.T, hc *http.Client, base string, header ...string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/v1/status", nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("API after the attack: GET /v1/status: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("API after the attack: GET /v1/status = %d, want 200", resp.StatusCode)
	}
}

// freshClient makes a client that opens its own connections, so a test's
// check of health does not reuse one of the attack's.
func freshClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: guard}
}

// readUntilClosed reads c until the server closes it and returns what it
// sent; it fails the test if the server keeps the connection open.
func readUntilClosed(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(guard))
	var got strings.Builder
	_, err := io.Copy(&got, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server kept the connection open (%v); it sent %q", err, got.String())
	}
	return got.String()
}

// trickle writes one byte of body at a time until the connection fails or
// stop closes, as a client holding a connection with a slow body does.
func trickle(c net.Conn, stop <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
		}
	}
}

func TestAPISlowClientIsCut(t *testing.T) {
	lim := slowpath.Limits{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond}
	for _, tc := range []struct {
		name, head string
		quiet      bool // send head, then nothing
	}{
		// The token is checked and refused at once; without a read
		// timeout the server then waits for the rest of the body to
		// reuse the connection, for as long as the client trickles.
		{"body without token", "POST /v1/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n", false},
		{"body with token", "POST /v1/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer s3cret\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n", false},
		{"headers", "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", false},
		// A kept-alive connection that sends nothing more.
		{"idle after a request", "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer s3cret\r\n\r\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, _ := serveAPI(t, config.API{Listen: "127.0.0.1:0", Token: "s3cret"}, slowpath.Options{Limits: lim})
			c, err := net.Dial("tcp", api.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.head); err != nil {
				t.Fatal(err)
			}
			stop := make(chan struct{})
			defer close(stop)
			if !tc.quiet {
				go trickle(c, stop)
			}
			readUntilClosed(t, c)
			healthy(t, freshClient(), "http://"+api.Addr().String(), "Authorization", "Bearer s3cret")
		})
	}
}

func TestAPIHugeBodyRefused(t *testing.T) {
	api, b := serveAPI(t, config.API{Listen: "127.0.0.1:0"}, slowpath.Options{})
	c, err := net.Dial("tcp", api.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", int64(1)<<30)
	_ = c.SetReadDeadline(time.Now().Add(guard))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reply to a 1 GiB body: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "limit") {
		t.Errorf("POST /v1/reload with a 1 GiB body = %d %s, want 413", resp.StatusCode, body)
	}
	if !resp.Close {
		t.Errorf("413 reply keeps the connection open; the rest of the body would be read")
	}
	if n := b.Reloads(); n != 0 {
		t.Errorf("reloads after a refused request = %d, want 0", n)
	}
	healthy(t, freshClient(), "http://"+api.Addr().String())
}

// getOn sends GET /v1/status on an open connection (kept alive) and
// returns the status.
func getOn(t *testing.T, c net.Conn, br *bufio.Reader) int {
	t.Helper()
	if _, err := io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(guard))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET /v1/status on an open connection: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestAPIConnectionLimit(t *testing.T) {
	const max = 3
	api, _ := serveAPI(t, config.API{Listen: "127.0.0.1:0"}, slowpath.Options{Limits: slowpath.Limits{MaxConns: max}})
	addr := api.Addr().String()
	var held []net.Conn
	for i := range max {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A served request proves the server accepted and counts it.
		if code := getOn(t, c, bufio.NewReader(c)); code != http.StatusOK {
			t.Fatalf("connection %d of %d: GET /v1/status = %d, want 200", i+1, max, code)
		}
		held = append(held, c)
	}

	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer over.Close()
	if got := readUntilClosed(t, over); !strings.HasPrefix(got, "HTTP/1.1 503 ") || !strings.Contains(got, "too many connections") {
		t.Errorf("connection %d of limit %d got %q, want a 503 and close", max+1, max, got)
	}

	// A closed connection frees its slot once the server sees it close.
	held[0].Close()
	deadline := time.Now().Add(guard)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		if _, err := io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"); err == nil {
			_ = c.SetReadDeadline(time.Now().Add(guard))
			if resp, err := http.ReadResponse(br, nil); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					c.Close()
					break
				}
			}
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("no connection served after one of the held ones closed")
		}
		time.Sleep(10 * time.Millisecond) // polling for the server to see the close
	}
	// The connections still held were not disturbed.
	for i, c := range held[1:] {
		if code := getOn(t, c, bufio.NewReader(c)); code != http.StatusOK {
			t.Errorf("held connection %d after the refusal: GET = %d, want 200", i+2, code)
		}
	}
}

func TestAPICrossSiteRefused(t *testing.T) {
	api, b := serveAPI(t, config.API{Listen: "127.0.0.1:0"}, slowpath.Options{})
	base := "http://" + api.Addr().String()
	hc := freshClient()
	send := func(method, path, host, body string, header ...string) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(method, base+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	drained := func(name string) bool {
		for _, s := range b.Servers() {
			if s.Set == "web" && s.Name == name {
				return s.Drained
			}
		}
		t.Fatalf("no server web/%s", name)
		return false
	}

	const drain = "/v1/servers/web/web-a/drain"
	for _, tc := range []struct {
		name   string
		host   string
		body   string
		header []string
		want   int
	}{
		{name: "form from another site", body: "a=b", header: []string{"Origin", "http://evil.example", "Content-Type", "application/x-www-form-urlencoded"}, want: http.StatusForbidden},
		{name: "fetch from another site", header: []string{"Origin", "http://evil.example", "Sec-Fetch-Site", "cross-site"}, want: http.StatusForbidden},
		{name: "Sec-Fetch-Site cross-site alone", header: []string{"Sec-Fetch-Site", "cross-site"}, want: http.StatusForbidden},
		{name: "Origin of another port", header: []string{"Origin", "http://127.0.0.1:1"}, want: http.StatusForbidden},
		{name: "text/plain body", body: "{}", header: []string{"Content-Type", "text/plain"}, want: http.StatusUnsupportedMediaType},
		{name: "form body without Origin", body: "a=b", header: []string{"Content-Type", "application/x-www-form-urlencoded"}, want: http.StatusUnsupportedMediaType},
		{name: "body without content type", body: "{}", want: http.StatusUnsupportedMediaType},
		{name: "DNS rebinding", host: "evil.example:9180", header: []string{"Content-Type", "application/json"}, body: "{}", want: http.StatusForbidden},
	} {
		if code, body := send(http.MethodPost, drain, tc.host, tc.body, tc.header...); code != tc.want {
			t.Errorf("%s: POST %s = %d %s, want %d", tc.name, drain, code, body, tc.want)
		}
		if drained("web-a") {
			t.Fatalf("%s: web-a drained by a refused request", tc.name)
		}
	}
	// A page that rebinds its name to 127.0.0.1 cannot read either.
	if code, _ := send(http.MethodGet, "/v1/status", "rebind.example", ""); code != http.StatusForbidden {
		t.Errorf("GET /v1/status with Host rebind.example = %d, want 403", code)
	}

	// What ipfront ctl, curl and same-origin pages send still works.
	for _, tc := range []struct {
		name   string
		body   string
		header []string
	}{
		{name: "no body (ctl, curl -X POST)"},
		{name: "JSON body", body: "{}", header: []string{"Content-Type", "application/json; charset=utf-8"}},
		{name: "same origin", header: []string{"Origin", base, "Sec-Fetch-Site", "same-origin"}},
	} {
		if code, body := send(http.MethodPost, "/v1/servers/web/web-a/enable", "localhost:9180", tc.body, tc.header...); code != http.StatusOK {
			t.Errorf("%s: POST enable = %d %s, want 200", tc.name, code, body)
		}
		if code, body := send(http.MethodPost, drain, "", tc.body, tc.header...); code != http.StatusOK || !drained("web-a") {
			t.Errorf("%s: POST drain = %d %s, want 200 and web-a drained", tc.name, code, body)
		}
	}
	healthy(t, hc, base)
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ipfront api test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "api.pem"), filepath.Join(dir, "api.key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}

func TestAPITLSAndToken(t *testing.T) {
	certPath, keyPath, pool := selfSigned(t, t.TempDir())
	api, b := serveAPI(t, config.API{Listen: "127.0.0.1:0", Token: "s3cret", TLSCert: certPath, TLSKey: keyPath}, slowpath.Options{})
	base := "https://" + api.Addr().String()
	hc := &http.Client{Timeout: guard, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret2", "s3cret", "Basic s3cret"} {
		req, _ := http.NewRequest(http.MethodPost, base+"/v1/reload", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("POST /v1/reload over TLS with %q: %v", auth, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST /v1/reload over TLS with Authorization %q = %d, want 401", auth, resp.StatusCode)
		}
	}
	if n := b.Reloads(); n != 0 {
		t.Errorf("reloads after wrong tokens = %d, want 0", n)
	}
	// Plain HTTP on the TLS port is not served.
	if resp, err := freshClient().Get("http://" + api.Addr().String() + "/v1/status"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP to the TLS listener = 200")
		}
	}
	healthy(t, hc, base, "Authorization", "Bearer s3cret")
}

func TestAPITLSHandshakeStallIsCut(t *testing.T) {
	certPath, keyPath, pool := selfSigned(t, t.TempDir())
	lim := slowpath.Limits{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond}
	api, _ := serveAPI(t, config.API{Listen: "127.0.0.1:0", Token: "s3cret", TLSCert: certPath, TLSKey: keyPath}, slowpath.Options{Limits: lim})
	c, err := net.Dial("tcp", api.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Half a TLS record header, then nothing: the handshake never ends.
	if _, err := c.Write([]byte{0x16, 0x03}); err != nil {
		t.Fatal(err)
	}
	readUntilClosed(t, c)
	hc := &http.Client{Timeout: guard, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	healthy(t, hc, "https://"+api.Addr().String(), "Authorization", "Bearer s3cret")
}

func TestAPIRefusesCleartextBeyondLoopback(t *testing.T) {
	b := apitest.NewBackend(apitest.Spec(t, apitest.ScenarioTOML))
	for _, cfg := range []config.API{
		{Listen: "0.0.0.0:0", Token: "s3cret"},
		{Listen: "[::]:0", Token: "s3cret"},
	} {
		if api, err := slowpath.ListenWith(b, cfg, slowpath.Options{}); err == nil {
			api.Shutdown()
			t.Errorf("ListenWith(%+v) = nil error, want a refusal: the token would travel in clear", cfg)
		} else if !strings.Contains(err.Error(), "tls_cert") {
			t.Errorf("ListenWith(%+v) = %v, want it to name tls_cert", cfg, err)
		}
	}
	dir := t.TempDir()
	if _, err := slowpath.ListenWith(b, config.API{Listen: "127.0.0.1:0", TLSCert: filepath.Join(dir, "none.pem"), TLSKey: filepath.Join(dir, "none.key")}, slowpath.Options{}); err == nil || !strings.Contains(err.Error(), "none.pem") {
		t.Errorf("ListenWith with missing certificate files = %v, want an error naming the file", err)
	}
}

func unixClient(path string) *http.Client {
	return &http.Client{Timeout: guard, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return new(net.Dialer).DialContext(ctx, "unix", path)
		}}}
}

func TestAPISecondDaemonRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	cfg := config.API{Listen: "unix:" + path}
	first, _ := serveAPI(t, cfg, slowpath.Options{})
	_ = first

	b := apitest.NewBackend(apitest.Spec(t, apitest.ScenarioTOML))
	if api, err := slowpath.ListenWith(b, cfg, slowpath.Options{}); !errors.Is(err, slowpath.ErrAPIInUse) {
		if err == nil {
			api.Shutdown()
		}
		t.Fatalf("second ListenWith on a live socket = %v, want ErrAPIInUse", err)
	}
	healthy(t, unixClient(path), "http://ipfront")

	// A daemon on TCP: the port is in use.
	tcp, _ := serveAPI(t, config.API{Listen: "127.0.0.1:0"}, slowpath.Options{})
	if api, err := slowpath.ListenWith(b, config.API{Listen: tcp.Addr().String()}, slowpath.Options{}); !errors.Is(err, slowpath.ErrAPIInUse) {
		if err == nil {
			api.Shutdown()
		}
		t.Errorf("second ListenWith on %s = %v, want ErrAPIInUse", tcp.Addr(), err)
	}
	healthy(t, freshClient(), "http://"+tcp.Addr().String())
}

func TestAPILiveSocketOfAnotherProcessStays(t *testing.T) {
	// Another program (or a daemon that predates the lock file) serves
	// the socket: the connect probe finds it alive.
	path := filepath.Join(t.TempDir(), "api.sock")
	other, err := net.Listen("unix", path)
	if err != nil {
		t.Skipf("unix sockets unavailable: %v", err)
	}
	defer other.Close()
	accepted := make(chan struct{}, 4)
	go func() {
		for {
			c, err := other.Accept()
			if err != nil {
				return
			}
			c.Close()
			accepted <- struct{}{}
		}
	}()
	b := apitest.NewBackend(apitest.Spec(t, apitest.ScenarioTOML))
	if api, err := slowpath.ListenWith(b, config.API{Listen: "unix:" + path}, slowpath.Options{}); !errors.Is(err, slowpath.ErrAPIInUse) {
		if err == nil {
			api.Shutdown()
		}
		t.Fatalf("ListenWith on another process's live socket = %v, want ErrAPIInUse", err)
	}
	// The other process's socket is still the one at path.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the other process's socket after the refusal: %v", err)
	}
	c.Close()
	<-accepted
}

// inotifyEvents returns the events queued on fd as (name, mask) pairs.
func inotifyEvents(t *testing.T, fd int) map[string]uint32 {
	t.Helper()
	out := map[string]uint32{}
	buf := make([]byte, 64<<10)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EAGAIN) {
			return out
		}
		if err != nil {
			t.Fatalf("read inotify: %v", err)
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= n; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+syscall.SizeofInotifyEvent:off+syscall.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			out[name] |= ev.Mask
			off += syscall.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

func TestAPIUnixSocketBornPrivate(t *testing.T) {
	dir := t.TempDir()
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		t.Skipf("inotify unavailable: %v", err)
	}
	defer syscall.Close(fd)
	if _, err := syscall.InotifyAddWatch(fd, dir, syscall.IN_CREATE|syscall.IN_ATTRIB); err != nil {
		t.Fatal(err)
	}
	// The most open umask: a socket bound under it and fixed by a chmod
	// afterwards is open to every local user until the chmod.
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	path := filepath.Join(dir, "api.sock")
	serveAPI(t, config.API{Listen: "unix:" + path}, slowpath.Options{})
	events := inotifyEvents(t, fd)
	if events["api.sock"]&syscall.IN_CREATE == 0 {
		t.Fatalf("no IN_CREATE for the socket; events %v", events)
	}
	if events["api.sock"]&syscall.IN_ATTRIB != 0 {
		t.Errorf("socket's mode changed after it was created (IN_ATTRIB): it was reachable with other modes before")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("socket mode = %o, want 600", mode)
	}
	healthy(t, unixClient(path), "http://ipfront")
}
