package config

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Validate checks the invariants Parse guarantees, for a Spec built or
// changed in code. It returns Errors without positions, or nil.
func (s *Spec) Validate() error {
	r := newReporter(s.Path, nil)
	s.validate(r)
	s.Warnings = r.warnings()
	return r.result()
}

func (s *Spec) validate(r *reporter) {
	s.Dataplane.validate(r)
	s.Log.validate(r)
	s.API.validate(r)
	s.BGP.validate(r) // bgp.go
	s.HA.validate(r)  // ha.go
	if s.HA.Enabled && !s.Dataplane.HashSeedSet {
		// Mates must choose alike for flows not replicated yet; without
		// hash_seed each derives its seed from its own machine.
		r.errorf("ha", `set [dataplane] hash_seed to the same secret on every mate, e.g. hash_seed = "3f9c0e7a51d24b8e96a0c4d1f27b5e83"`,
			"[ha] needs [dataplane] hash_seed: mated instances must hash flows alike")
	}
	validateTargetSets(r, s.TargetSets)
	validatePersistence(r, s) // persist.go
	validateLimits(r, s)      // limits.go
}

func (d *Dataplane) validate(r *reporter) {
	if len(d.Interfaces) == 0 {
		r.errorf("dataplane.interfaces", `list the NICs that receive VIP traffic: interfaces = ["eth1"]`,
			"at least one interface is required")
	}
	seen := make(map[string]int)
	for i, name := range d.Interfaces {
		path := elem("dataplane.interfaces", i)
		if problem := ifNameProblem(name); problem != "" {
			r.errorf(path, "Linux interface names are 1 to 15 bytes without '/', ':' or blanks", "%s", problem)
		} else if j, dup := seen[name]; dup {
			r.errorf(path, "list each interface once", "interface %s is already listed as interfaces[%d]", quote(name), j)
		} else {
			seen[name] = i
		}
	}
	if d.Queues != nil && len(d.Queues) == 0 {
		r.errorf("dataplane.queues", `write queues = "all" to serve every queue`, "no queues listed")
	}
	validateIDs(r, "dataplane.queues", "queue", d.Queues)
	validateIDs(r, "dataplane.cpus", "CPU", d.CPUs)
	r.enum("dataplane.xdp_mode", string(d.XDPMode), []string{string(XDPNative), string(XDPGeneric), string(XDPAuto)}, nil)

	ringOK := isPow2(d.RingSize) && d.RingSize >= 64 && d.RingSize <= 16384
	if !ringOK {
		r.errorf("dataplane.ring_size", "use 64, 128, ..., 16384", "ring_size %d is not a power of two in 64..16384", d.RingSize)
	}
	switch {
	case d.BatchSize < 1 || d.BatchSize > 1024:
		r.errorf("dataplane.batch_size", "", "batch_size %d is out of range 1..1024", d.BatchSize)
	case ringOK && d.BatchSize > d.RingSize:
		r.errorf("dataplane.batch_size", "a batch must fit in one ring",
			"batch_size %d is larger than ring_size %d", d.BatchSize, d.RingSize)
	}
	if d.MaxAssociations < 1024 {
		r.errorf("dataplane.max_associations", "", "max_associations %d is below the minimum of 1024", d.MaxAssociations)
	}
	if d.FrameSize != 2048 && d.FrameSize != 4096 {
		r.errorf("dataplane.frame_size", "", "frame_size %d is not 2048 or 4096", d.FrameSize)
	}
	if ringOK && (!isPow2(d.Frames) || d.Frames < 2*d.RingSize) {
		r.errorf("dataplane.frames", fmt.Sprintf("leave frames = 0 for %d (4 * ring_size)", 4*d.RingSize),
			"frames %d is not a power of two >= 2 * ring_size (%d)", d.Frames, 2*d.RingSize)
	}
	r.enum("dataplane.zero_copy", d.ZeroCopy, []string{ZeroCopyAuto, ZeroCopyOn, ZeroCopyOff}, nil)
	if d.IdleSpin < 0 || d.IdleSpin > maxIdleSpin {
		r.errorf("dataplane.idle_spin", `the default is "50us"; "0s" sleeps at once; busy_poll = true never sleeps`,
			"idle_spin %s is outside 0s..%s", d.IdleSpin, maxIdleSpin)
	}
	if d.HugePages != "" { // a Spec built in code: auto
		r.enum("dataplane.huge_pages", d.HugePages, []string{HugePagesAuto, HugePagesOn, HugePagesOff}, nil)
	}
	d.validateVLANs(r)         // vlan.go
	d.validatePartialQueues(r) // vlan.go
}

// validateIDs checks a list of queue or CPU ids: in range and unique.
func validateIDs(r *reporter, path, what string, ids []int) {
	seen := make(map[int]int)
	for i, id := range ids {
		ep := elem(path, i)
		if r.muted(ep) {
			continue // not an integer: already reported
		}
		if id < 0 || id > math.MaxInt32 {
			r.errorf(ep, "", "%s id %d is out of range 0..%d", what, id, math.MaxInt32)
		} else if j, dup := seen[id]; dup {
			r.errorf(ep, "list each id once", "%s %d is already listed at index %d", what, id, j)
		} else {
			seen[id] = i
		}
	}
}

// ifNameProblem says what keeps name from being a Linux interface name
// (dev_valid_name), or "".
func ifNameProblem(name string) string {
	switch {
	case name == "":
		return "interface name is empty"
	case len(name) > 15:
		return fmt.Sprintf("interface name %s is longer than 15 bytes", quote(name))
	case name == "." || name == "..", strings.ContainsAny(name, "/:"), strings.IndexFunc(name, unicode.IsSpace) >= 0:
		return fmt.Sprintf("%s is not a valid interface name", quote(name))
	}
	return ""
}

func (l *Log) validate(r *reporter) {
	r.enum("log.level", l.Level, []string{"debug", "info", "warn", "error"}, nil)
	r.enum("log.format", l.Format, []string{"console", "json"}, nil)
}

func (a *API) validate(r *reporter) {
	loopback, problem, hint := checkListen(a.Listen)
	switch {
	case problem != "":
		r.errorf("api.listen", hint, "%s", problem)
	case !loopback && a.Token == "":
		r.errorf("api.listen", "set api.token, or listen on 127.0.0.1 or a unix socket",
			"%s is reachable from other hosts but api.token is empty", quote(a.Listen))
	case !loopback && a.TLSCert == "":
		r.errorf("api.listen", "set api.tls_cert and api.tls_key, or listen on 127.0.0.1 or a unix socket",
			"%s is reachable from other hosts but has no TLS: the token would travel in clear", quote(a.Listen))
	}
	a.validateTLS(r, problem == "")
}

// validateTLS checks the pair of TLS files: both or neither, absolute
// paths, and a TCP listener to serve them on. Whether the files exist and
// match is checked when the API starts, not here: a Spec does not depend on
// the machine it is validated on.
func (a *API) validateTLS(r *reporter, listenOK bool) {
	for _, k := range []struct{ path, val string }{{"api.tls_cert", a.TLSCert}, {"api.tls_key", a.TLSKey}} {
		if k.val != "" && !strings.HasPrefix(k.val, "/") {
			r.errorf(k.path, `write an absolute path such as "/etc/ipfront/api.pem"`, "%s is not an absolute path", quote(k.val))
		}
	}
	switch {
	case (a.TLSCert == "") != (a.TLSKey == ""):
		path, missing := "api.tls_cert", "api.tls_key"
		if a.TLSCert == "" {
			path, missing = "api.tls_key", "api.tls_cert"
		}
		r.errorf(path, "set both, or neither", "%s is set but %s is not", path, missing)
	case a.TLSCert != "" && listenOK && strings.HasPrefix(a.Listen, "unix:"):
		r.errorf("api.tls_cert", "remove tls_cert and tls_key, or listen on host:port", "TLS is for TCP listeners; %s is a unix socket", quote(a.Listen))
	}
}

// checkListen parses an API listen address and reports whether only this
// host can reach it (loopback or unix socket). Host names other than
// localhost are refused: resolving them would make the Spec depend on DNS.
func checkListen(listen string) (loopback bool, problem, hint string) {
	if path, ok := strings.CutPrefix(listen, "unix:"); ok {
		switch {
		case !strings.HasPrefix(path, "/"):
			return false, fmt.Sprintf("unix socket path %s is not absolute", quote(path)), `write listen = "unix:/run/ipfront/api.sock"`
		case len(path) > 107:
			return false, "unix socket path is longer than 107 bytes", ""
		}
		return true, "", ""
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return false, fmt.Sprintf("invalid listen address %s", quote(listen)), `write "host:port" such as "127.0.0.1:9180", or "unix:/path"`
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return false, fmt.Sprintf("invalid port %s in listen address", quote(port)), "the port is a number in 1..65535"
	}
	switch host {
	case "localhost":
		return true, "", ""
	case "":
		return false, "", "" // every address
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false, fmt.Sprintf("listen host %s is not an IP address", quote(host)), "write an IP address or localhost; other names would need DNS"
	}
	return ip.IsLoopback(), "", ""
}

// enum reports value at path unless it is one of valid. Values in later are
// planned but not supported yet.
func (r *reporter) enum(path, value string, valid, later []string) {
	if slices.Contains(valid, value) {
		return
	}
	if slices.Contains(later, value) {
		r.errorf(path, fmt.Sprintf("only %s is supported in this version", quoteList(valid)), "%s is not supported yet", quote(value))
		return
	}
	hint := "valid values: " + quoteList(valid)
	if s := suggest(value, valid); s != "" {
		hint = fmt.Sprintf("did you mean %q?", s)
	}
	r.errorf(path, hint, "unknown value %s", quote(value))
}

// isPow2 reports whether n is a power of two.
func isPow2(n int) bool { return n > 0 && n&(n-1) == 0 }
