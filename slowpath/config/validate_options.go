package config

import (
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// validate checks the health checks of a set whose ports are ports.
func (h *Health) validate(r *reporter, path string, ports []PortRange) {
	r.enum(path+".type", h.Type, []string{HealthTCP, HealthHTTP, HealthNone}, nil)
	// Checks that depend on the type are left out when it is not valid.
	typeOK := !r.muted(path + ".type")

	if typeOK && h.Type != HealthNone && h.Port == 0 && len(ports) > 0 {
		switch {
		case ports[0] == allPorts:
			r.errorf(path+".port", `set the port the checks connect to, such as port = 80, or type = "none"`,
				`no port to check: the set's first port range is "*"`)
		case validRange(ports[0]):
			r.errorf(path+".port", "ports are 1..65535", "port 0 is out of range")
		}
	}

	if typeOK && h.Type != HealthHTTP {
		const hint = `path and expect_status apply to type = "http" only`
		if h.Path != "" {
			r.errorf(path+".path", hint, "path is set but type is %s", quote(h.Type))
		}
		if h.ExpectStatus != 0 {
			r.errorf(path+".expect_status", hint, "expect_status is set but type is %s", quote(h.Type))
		}
	}
	if typeOK && h.Type == HealthHTTP {
		if problem, hint := httpPathProblem(h.Path); problem != "" {
			r.errorf(path+".path", hint, "%s", problem)
		}
		if h.ExpectStatus < 100 || h.ExpectStatus > 599 {
			r.errorf(path+".expect_status", "the default is 200", "expect_status %d is out of range 100..599", h.ExpectStatus)
		}
	}

	if h.Interval < 100*time.Millisecond {
		r.errorf(path+".interval", "the default is 1s", "interval %s is shorter than 100ms", h.Interval)
	}
	intervalOK := !r.muted(path + ".interval")
	switch {
	case h.Timeout <= 0:
		r.errorf(path+".timeout", "the default is 500ms", "timeout %s is not positive", h.Timeout)
	case intervalOK && h.Timeout >= h.Interval:
		// A check that runs into a timeout equal to the interval ends
		// just after the next tick, which is then skipped: detection would
		// take up to twice interval * fall instead of interval * fall +
		// timeout (see slowpath/health).
		r.errorf(path+".timeout", "a check must end before the next one starts",
			"timeout %s is not shorter than interval %s", h.Timeout, h.Interval)
	}
	if h.Rise < 1 || h.Rise > 100 {
		r.errorf(path+".rise", "checks passed in a row that mark a server up; the default is 2",
			"rise %d is out of range 1..100", h.Rise)
	}
	if h.Fall < 1 || h.Fall > 100 {
		r.errorf(path+".fall", "checks failed in a row that mark a server down; the default is 2",
			"fall %d is out of range 1..100", h.Fall)
	}
}

// httpPathProblem says what keeps p from being the path (and query) of an
// HTTP check's request, and how to fix it, or returns "".
func httpPathProblem(p string) (problem, hint string) {
	switch i := strings.IndexFunc(p, func(c rune) bool { return unicode.IsSpace(c) || unicode.IsControl(c) }); {
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("path %s does not start with '/'", quote(p)), fmt.Sprintf("write %q", "/"+clip(p))
	case strings.HasPrefix(p, "//"):
		return fmt.Sprintf("path %s starts with \"//\", which reads as a host name", quote(p)), "start it with a single '/'"
	case i >= 0:
		return fmt.Sprintf("path %s has a blank or control character at byte %d", quote(p), i),
			"percent-encode it, such as %20 for a blank"
	case strings.Contains(p, "#"):
		return fmt.Sprintf("path %s has a fragment", quote(p)), "a fragment ('#...') is never sent to the server; remove it"
	}
	if _, err := url.ParseRequestURI(p); err != nil {
		return fmt.Sprintf("path %s is not a valid request path", quote(p)), "percent-encode a '%' that does not start an escape as %25"
	}
	return "", ""
}

// validatePeerGroups checks the peer groups of the set at path against its
// method and VIP. A prefix may be in one group of the set only.
func (ts *TargetSet) validatePeerGroups(r *reporter, path string) {
	gp := path + ".peer_group"
	switch {
	case r.muted(path + ".method"):
		// An unknown method: which groups it needs is unknown.
	case ts.Method == MethodPeerAware && len(ts.PeerGroups) == 0:
		r.errorf(gp, `add a [[target_set.peer_group]] with a name and prefixes, or use method = "least_load"`,
			"method %s needs at least one peer group", quote(MethodPeerAware))
	case ts.Method != MethodPeerAware && len(ts.PeerGroups) > 0:
		r.errorf(gp, fmt.Sprintf("set method = %q", MethodPeerAware),
			"peer groups are only used by method %s, not %s", quote(MethodPeerAware), quote(ts.Method))
	}
	type place struct{ group, index int }
	names := make(map[string]int)
	seen := make(map[netip.Prefix]place)
	for i, g := range ts.PeerGroups {
		ep := elem(gp, i)
		switch j, dup := names[g.Name]; {
		case !validSetName(g.Name):
			r.errorf(ep+".name", "use 1 to 32 characters from a-z, 0-9, '_' and '-'", "invalid peer group name %s", quote(g.Name))
		case dup:
			r.errorf(ep+".name", "peer group names must be unique within a target set",
				"name %s is already used by peer_group[%d]", quote(g.Name), j)
		default:
			names[g.Name] = i
		}
		pp := ep + ".prefixes"
		if len(g.Prefixes) == 0 {
			r.errorf(pp, `list the peers' source prefixes, such as prefixes = ["198.51.100.0/28"]`, "no prefixes listed")
		}
		for k, p := range g.Prefixes {
			kp := elem(pp, k)
			if problem, hint := prefixProblem(p, ts.Address); problem != "" {
				r.errorf(kp, hint, "%s", problem)
				continue
			}
			switch at, dup := seen[p]; {
			case dup && at.group == i:
				r.errorf(kp, "list each prefix once", "prefix %s is already listed as prefixes[%d]", p, at.index)
			case dup:
				r.errorf(kp, "a peer belongs to one group of a target set",
					"prefix %s is already in peer_group[%d] %s", p, at.group, quote(ts.PeerGroups[at.group].Name))
			default:
				seen[p] = place{i, k}
			}
		}
	}
}

// prefixProblem says what keeps p from being a peer prefix of the set with
// VIP vip, and how to fix it, or returns "".
func prefixProblem(p netip.Prefix, vip netip.Addr) (problem, hint string) {
	a := p.Addr()
	switch {
	case !p.IsValid():
		return "prefix is not set", ""
	case a.Is4In6():
		if p.Bits() >= 96 {
			hint = fmt.Sprintf("write it as %s", netip.PrefixFrom(a.Unmap(), p.Bits()-96))
		}
		return fmt.Sprintf("prefix %s is an IPv4-mapped IPv6 prefix", p), hint
	case p != p.Masked():
		return fmt.Sprintf("prefix %s has bits set after the first %d", p, p.Bits()), fmt.Sprintf("write %q", p.Masked())
	case vip.IsValid() && a.Is4() != vip.Is4():
		return fmt.Sprintf("prefix %s is %s but the VIP %s is %s", p, ipVersion(a), vip, ipVersion(vip)),
			"clients reach the VIP with its IP version; put peers of the other version in a target set of their own"
	}
	return "", ""
}

func (b *Balance) validate(r *reporter, path string) {
	if !(b.Threshold > 0 && b.Threshold < 1) {
		r.errorf(path+".threshold", "the default is 0.2", "threshold %s is not between 0 and 1 (exclusive)", ftoa(b.Threshold))
	}
	thresholdOK := !r.muted(path + ".threshold")
	const clearHint = "the alarm clears when the deviation falls below clear; the default is threshold / 2"
	switch c := b.Clear; {
	case math.IsNaN(c) || c < 0:
		r.errorf(path+".clear", clearHint, "clear %s is not >= 0", ftoa(c))
	case thresholdOK && c >= b.Threshold:
		r.errorf(path+".clear", clearHint, "clear %s is not below threshold %s", ftoa(c), ftoa(b.Threshold))
	}
	if b.Window < time.Second {
		r.errorf(path+".window", "the default is 10s", "window %s is shorter than 1s", b.Window)
	}
	if b.Sustain < 0 {
		r.errorf(path+".sustain", `"0s" raises the alarm at once; the default is 5s`, "sustain %s is negative", b.Sustain)
	}
}

// ftoa formats a float as go-toml's decode shows it in messages.
func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
