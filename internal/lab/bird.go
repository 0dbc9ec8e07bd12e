//go:build linux

package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// RouterASN is the router's AS in the routed lab; LBASN the load
// balancers' (one AS for all, as instances of one service).
const (
	RouterASN = 64500
	LBASN     = 64512
)

// BIRD is the BIRD 2 routing daemon running in a routed lab's router: an
// eBGP session with every load balancer over IPv4 and one over IPv6, the
// routes it learns installed in the router's kernel table (ECMP across
// instances announcing the same VIP), nothing exported to them.
type BIRD struct {
	lab  *RoutedLab
	ns   string // where it runs
	sock string
	proc *Proc
}

// BIRDPath is the bird binary (Debian's bird2 package puts it in /usr/sbin,
// which a non-login PATH may lack).
func BIRDPath() (string, error) {
	if p, err := exec.LookPath("bird"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/bird", "/usr/local/sbin/bird"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("bird not found: install the bird2 package")
}

// BIRDConfig is the router's configuration: short connect and retry timers
// so that a session comes up within seconds of its speaker starting, and a
// hold time of 3 s so that a killed instance's routes go within seconds.
func (r *RoutedLab) BIRDConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, `router id %s;
log stderr all;
protocol device { scan time 1; }
protocol kernel k4 { ipv4 { import none; export all; }; merge paths on; }
protocol kernel k6 { ipv6 { import none; export all; }; merge paths on; }
template bgp lb {
  local as %d;
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 2;
  hold time 3;
  keepalive time 1;
}
`, r.router.IPv4, RouterASN)
	for _, lb := range r.lbs {
		fmt.Fprintf(&b, "protocol bgp %s_4 from lb { neighbor %s as %d; ipv4 { import all; export none; }; }\n", lb.Role, lb.IPv4, LBASN)
		fmt.Fprintf(&b, "protocol bgp %s_6 from lb { neighbor %s as %d; ipv6 { import all; export none; }; }\n", lb.Role, lb.IPv6, LBASN)
	}
	return b.String()
}

// StartBIRD writes the router's configuration into dir and starts BIRD in
// the router's namespace, its log to out. Close (or the lab's Close) stops
// it.
func (r *RoutedLab) StartBIRD(dir string, out io.Writer) (*BIRD, error) {
	return r.StartBIRDOn(r.router, dir, r.BIRDConfig(), out)
}

// StartBIRDOn starts BIRD with configuration conf on host h (a load
// balancer that exports ipfront's kernel routes, say), its files in dir.
// The returned BIRD's Show talks to that daemon; NextHops and
// WaitNextHops always read the router's table.
func (r *RoutedLab) StartBIRDOn(h Host, dir, conf string, out io.Writer) (*BIRD, error) {
	bin, err := BIRDPath()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "bird.conf")
	sock := filepath.Join(dir, "bird.ctl")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := r.StartProc(h.NS, "bird-"+h.Role, out, bin, "-f", "-c", path, "-s", sock)
	if err != nil {
		return nil, err
	}
	return &BIRD{lab: r, ns: h.NS, sock: sock, proc: p}, nil
}

// Close stops BIRD.
func (b *BIRD) Close() error { return b.proc.Stop(5 * time.Second) }

// Show runs birdc with args ("show protocols") and returns its output.
func (b *BIRD) Show(args ...string) (string, error) {
	bird, err := BIRDPath()
	if err != nil {
		return "", err
	}
	birdc := filepath.Join(filepath.Dir(bird), "birdc") // the bird2 package ships both side by side
	return b.lab.Exec(b.ns, append([]string{birdc, "-s", b.sock}, args...)...)
}

// NextHops returns the gateways of the router's kernel route to prefix
// (sorted), nil when it has none: what the router forwards by, whoever
// installed it.
func (b *BIRD) NextHops(prefix netip.Prefix) ([]netip.Addr, error) {
	fam := "-4"
	if prefix.Addr().Is6() {
		fam = "-6"
	}
	out, err := b.lab.Exec(b.lab.router.NS, "ip", fam, "-j", "route", "show", "exact", prefix.String())
	if err != nil {
		return nil, err
	}
	var routes []struct {
		Gateway  string `json:"gateway"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal([]byte(out), &routes); err != nil {
		return nil, fmt.Errorf("ip route show %s: %w: %s", prefix, err, out)
	}
	var hops []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil && !slices.Contains(hops, a) {
			hops = append(hops, a)
		}
	}
	for _, rt := range routes {
		add(rt.Gateway)
		for _, nh := range rt.Nexthops {
			add(nh.Gateway)
		}
	}
	slices.SortFunc(hops, netip.Addr.Compare)
	return hops, nil
}

// WaitNextHops polls the router's route to prefix until its gateways are
// exactly want (none: no route), or ctx ends; it returns how long that
// took.
func (b *BIRD) WaitNextHops(ctx context.Context, prefix netip.Prefix, want ...netip.Addr) (time.Duration, error) {
	start := time.Now()
	slices.SortFunc(want, netip.Addr.Compare)
	var last []netip.Addr
	for {
		hops, err := b.NextHops(prefix)
		if err == nil && slices.Equal(hops, want) {
			return time.Since(start), nil
		}
		last = hops
		select {
		case <-ctx.Done():
			proto, _ := b.Show("show", "protocols")
			return time.Since(start), fmt.Errorf("router's route to %s: next hops %v, want %v (%w)\n%s", prefix, last, want, ctx.Err(), proto)
		case <-time.After(50 * time.Millisecond):
		case <-b.proc.Done():
			return time.Since(start), fmt.Errorf("bird exited: %v", b.proc.Err())
		}
	}
}
