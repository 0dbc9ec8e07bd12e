package slowpath

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

// TestAPIAbuseLeavesDaemonServing runs every attack of api_abuse_test.go
// at once against the API of a real Daemon (on fakes), each client without
// the token, and then checks the daemon still serves: the attackers'
// connections were all cut, and an operator's reload and drain work.
func TestAPIAbuseLeavesDaemonServing(t *testing.T) {
	h := startDaemon(t, dataplaneTOML+checkedSet("web", "192.0.2.10", "reselect", 3))
	lim := Limits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, MaxConns: 16}
	api, err := ListenWith(h.d, config.API{Listen: "127.0.0.1:0", Token: "s3cret"}, Options{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- api.Serve() }()
	defer func() {
		api.Shutdown()
		if err := <-served; err != nil {
			t.Errorf("Serve() = %v", err)
		}
	}()
	addr := api.Addr().String()
	gen := h.d.Generation()

	attacks := map[string]string{
		"slow body":  "POST /v1/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n",
		"slow head":  "GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ",
		"huge body":  "POST /v1/reload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n{",
		"cross-site": "POST /v1/servers/web/198.51.100.11/drain HTTP/1.1\r\nHost: 127.0.0.1\r\nOrigin: http://evil.example\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
		"wrong key":  "POST /v1/servers/web/198.51.100.11/drain HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer s3cre7\r\n\r\n",
		"idle":       "",
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	kept := make(chan string, 64)
	for round := range 6 { // 36 connections against a limit of 16
		for name, head := range attacks {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := net.Dial("tcp", addr)
				if err != nil {
					kept <- fmt.Sprintf("%s %d: dial: %v", name, round, err)
					return
				}
				defer c.Close()
				if _, err := io.WriteString(c, head); err != nil {
					return // refused already
				}
				go func() { // trickle until the server cuts the connection
					for {
						select {
						case <-stop:
							return
						case <-time.After(20 * time.Millisecond):
							if _, err := c.Write([]byte("x")); err != nil {
								return
							}
						}
					}
				}()
				_ = c.SetReadDeadline(time.Now().Add(waitLimit))
				_, err = io.Copy(io.Discard, c)
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					kept <- fmt.Sprintf("%s %d: the server kept the connection", name, round)
				}
			}()
		}
	}
	wg.Wait()
	close(stop)
	close(kept)
	for msg := range kept {
		t.Error(msg)
	}

	if g := h.d.Generation(); g != gen {
		t.Errorf("generation after the attacks = %d, want %d: an attack reloaded or drained", g, gen)
	}
	hc := &http.Client{Timeout: waitLimit, Transport: &http.Transport{DisableKeepAlives: true}}
	post := func(path string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer s3cret")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("POST %s after the attacks: %v", path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("POST %s after the attacks = %d %s, want 200", path, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		return resp.StatusCode
	}
	post("/v1/reload")
	post("/v1/servers/web/198.51.100.11/drain")
	for _, s := range h.d.Servers() {
		if s.Address.String() == "198.51.100.11" && !s.Drained {
			t.Errorf("198.51.100.11 not drained by the operator's request after the attacks")
		}
	}
	if !h.d.Ready() {
		t.Errorf("daemon not ready after the attacks")
	}
}
