package config

import (
	"fmt"
	"time"
)

// The keys of a target set's application helper (helper = "ftp"). They
// exist only on a set with a helper: anywhere else they would do nothing.

// DefaultExpectTimeout is how long an expectation (a data connection a
// helper announced) waits to be used when expect_timeout is not set.
const DefaultExpectTimeout = 60 * time.Second

// Bounds of expect_timeout: long enough for a client to open the data
// connection after its command, short enough that an announced port does not
// stay open for long.
const (
	minExpectTimeout = time.Second
	maxExpectTimeout = time.Hour
)

// decodeHelperKeys reads the helper's keys of t into ts, whose Helper is
// already decoded. The keys of a set without a helper are reported.
func decodeHelperKeys(t table, ts *TargetSet) {
	if ts.Helper == "" {
		for _, k := range []string{"expect_timeout", "passive_ports"} {
			if _, path, present := t.get(k); present {
				t.r.errorf(path, `add helper = "ftp" (on a set with forwarding = "nat"), or remove the key`,
					"%s applies only to a set with a helper", k)
			}
		}
		return
	}
	ts.ExpectTimeout = t.duration("expect_timeout", DefaultExpectTimeout)
	elems, path, present := t.list("passive_ports")
	if !present {
		t.r.errorf(path, `list the servers' passive port range, vsftpd's pasv_min_port-pasv_max_port: passive_ports = ["30000-30099"] (or [] if clients only use active mode)`,
			"required key is missing")
		return
	}
	ts.PassivePorts = []PortRange{}
	for i, e := range elems {
		ep := elem(path, i)
		switch e := e.(type) {
		case string:
			r, problem, hint := parsePortRange(e)
			if problem != "" {
				t.r.errorf(ep, hint, "%s", problem)
				continue
			}
			ts.PassivePorts = append(ts.PassivePorts, r)
		default:
			t.r.wrongType(ep, `a port range string such as "30000-30099"`, e, "")
		}
	}
}

// validateHelperKeys checks the helper's keys of a set with a helper.
func (ts *TargetSet) validateHelperKeys(r *reporter, path string) {
	if ts.Helper == "" {
		return
	}
	if ts.ExpectTimeout < minExpectTimeout || ts.ExpectTimeout > maxExpectTimeout {
		r.errorf(path+".expect_timeout", fmt.Sprintf("the default is %s", DefaultExpectTimeout),
			"expect_timeout %s is outside %s..%s", ts.ExpectTimeout, minExpectTimeout, maxExpectTimeout)
	}
	pp := path + ".passive_ports"
	for i, pr := range ts.PassivePorts {
		ep := elem(pp, i)
		switch {
		case pr == allPorts:
			r.errorf(ep, `set the servers' passive range (vsftpd pasv_min_port/pasv_max_port) and list it: "30000-30099"`,
				`"*" would hand every connection the servers open to the workers`)
		case pr.First < 1024:
			r.errorf(ep, "passive ports are unprivileged: 1024..65535", "passive port range %s starts below 1024", pr)
		case pr.First > pr.Last:
			r.errorf(ep, fmt.Sprintf(`write "%d-%d"`, pr.Last, pr.First), "port range %d-%d is reversed", pr.First, pr.Last)
		}
	}
}
