package health

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
)

// maxBody bounds how much of an HTTP check's response body is read.
const maxBody = 64 << 10

// A probe checks a server once; ctx carries the probe's deadline. It returns
// whether the server is healthy and what was seen (the error or the status).
type probe func(ctx context.Context) (ok bool, reason string)

// newProbe returns the probe for t, whose Check has been validated and is
// not TypeNone.
func newProbe(t Target) probe {
	d := &net.Dialer{}
	if t.Device != "" {
		d.Control = bindToDevice(t.Device)
	}
	ap := netip.AddrPortFrom(t.Addr.Unmap(), t.Check.Port).String()
	if t.Check.Type == TypeTCP {
		return func(ctx context.Context) (bool, string) {
			c, err := d.DialContext(ctx, "tcp", ap)
			if err != nil {
				return false, err.Error()
			}
			c.Close()
			return true, "connected"
		}
	}

	ref, _ := requestPath(t.Check.Path) // validated
	u := (&url.URL{Scheme: "http", Host: ap}).ResolveReference(ref).String()
	want := t.Check.ExpectStatus
	if want == 0 {
		want = http.StatusOK
	}
	client := &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // never the environment's proxy
			DialContext:            d.DialContext,
			DisableKeepAlives:      true,
			DisableCompression:     true,
			MaxResponseHeaderBytes: maxBody,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return func(ctx context.Context) (bool, string) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("User-Agent", "ipfront-health")
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error()
		}
		_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if resp.StatusCode != want {
			return false, fmt.Sprintf("status %s, want %d", resp.Status, want)
		}
		if err != nil {
			return false, fmt.Sprintf("status %s, read body: %v", resp.Status, err)
		}
		return true, "status " + resp.Status
	}
}
