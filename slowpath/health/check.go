package health

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Check types.
const (
	TypeTCP  = "tcp"
	TypeHTTP = "http"
	TypeNone = "none"
)

// ErrInvalid is wrapped by the errors of Check.Validate and Target.Validate.
var ErrInvalid = errors.New("invalid health check")

// Check says how to probe a server. It is comparable: a Check that compares
// equal across an Update keeps the server's checker and its state.
type Check struct {
	Type         string // TypeTCP, TypeHTTP or TypeNone; with TypeNone the other fields are ignored
	Port         uint16 // port probed on the server's address; must not be 0
	Path         string // HTTP only: request path and query, "/" if empty
	ExpectStatus int    // HTTP only: the status a healthy server answers, 200 if 0
	Interval     time.Duration
	Timeout      time.Duration // bound on one probe; keep it below Interval (see the package doc)
	Rise         int           // consecutive successes that bring a server up, at least 1
	Fall         int           // consecutive failures that bring a server down, at least 1
}

// Validate reports whether c can be run, as an error wrapping ErrInvalid.
func (c Check) Validate() error {
	switch c.Type {
	case TypeNone:
		return nil
	case TypeTCP, TypeHTTP:
	default:
		return fmt.Errorf("%w: type %q, want %q, %q or %q", ErrInvalid, c.Type, TypeTCP, TypeHTTP, TypeNone)
	}
	switch {
	case c.Port == 0:
		return fmt.Errorf("%w: port 0", ErrInvalid)
	case c.Interval <= 0:
		return fmt.Errorf("%w: interval %v, want > 0", ErrInvalid, c.Interval)
	case c.Timeout <= 0:
		return fmt.Errorf("%w: timeout %v, want > 0", ErrInvalid, c.Timeout)
	case c.Rise < 1:
		return fmt.Errorf("%w: rise %d, want >= 1", ErrInvalid, c.Rise)
	case c.Fall < 1:
		return fmt.Errorf("%w: fall %d, want >= 1", ErrInvalid, c.Fall)
	}
	if c.Type != TypeHTTP {
		return nil
	}
	if c.ExpectStatus != 0 && (c.ExpectStatus < 100 || c.ExpectStatus > 599) {
		return fmt.Errorf("%w: expect status %d, want 100..599", ErrInvalid, c.ExpectStatus)
	}
	if _, err := requestPath(c.Path); err != nil {
		return err
	}
	return nil
}

// requestPath parses an HTTP check's path ("" means "/") into a reference
// that only carries a path and a query.
func requestPath(p string) (*url.URL, error) {
	if p == "" {
		p = "/"
	}
	u, err := url.Parse(p)
	if err != nil || !strings.HasPrefix(p, "/") || u.Scheme != "" || u.Host != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: path %q, want an absolute path such as /healthz", ErrInvalid, p)
	}
	return u, nil
}

// Target is one server of one target set, as the Monitor checks it. The pair
// (Set, Addr) identifies it across Updates.
type Target struct {
	Set    string
	Server string // the server's name, for events and logs
	Addr   netip.Addr
	Check  Check
	Device string // if not empty, probes are bound to this interface
}

// Validate reports whether t can be checked, as an error wrapping ErrInvalid.
func (t Target) Validate() error {
	if !t.Addr.IsValid() {
		return fmt.Errorf("%w: no address", ErrInvalid)
	}
	return t.Check.Validate()
}

// Event reports a change of a server's verdict.
type Event struct {
	Target Target
	Up     bool
	Reason string // the result of the last probe: an error, or the status seen
	At     time.Time
}
