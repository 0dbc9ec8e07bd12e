package ctl

import (
	"fmt"
	"io"
	"strings"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// printSignalling prints the signalling counters per worker and in total:
// what the SCTP verification-tag index found, its collisions, and Diameter
// connections forgotten as stale.
func printSignalling(w io.Writer, r *v1.Counters) {
	fmt.Fprintln(w)
	tw := table(w)
	row(tw, "WORKER", "SCTP-TAG-INDEX-HITS", "SCTP-TAG-COLLISIONS", "DIAMETER-STALE")
	for i := range r.Workers {
		s := &r.Workers[i].Signalling
		row(tw, r.Workers[i].Name, num(s.TagIndexHits), num(s.TagCollisions), num(s.DiameterStale))
	}
	row(tw, "total", num(r.TagIndexHits), num(r.TagCollisions), num(r.DiameterStale))
	tw.Flush()
}

// printSCTPPaths prints, after the associations, the verification tag and
// paths of every SCTP association on the page that learned its tag: one
// line per association, its paths as address:port@worker, comma-separated
// (and the path's
// server when it differs from the association's).
func printSCTPPaths(w io.Writer, r *v1.Associations) {
	var any bool
	for _, a := range r.Associations {
		any = any || a.SCTPTag != 0
	}
	if !any {
		return
	}
	fmt.Fprintln(w)
	tw := table(w)
	row(tw, "CLIENT", "PORT", "SET", "SERVER", "TAG", "INDEXED", "PATHS")
	for _, a := range r.Associations {
		if a.SCTPTag == 0 {
			continue
		}
		paths := make([]string, 0, len(a.Paths))
		for _, p := range a.Paths {
			s := fmt.Sprintf("%s@%s", addrPort(p.Client.String(), p.Port), p.Worker)
			if p.Server != a.Server {
				s += "->" + orDash(p.Server)
			}
			paths = append(paths, s)
		}
		row(tw, a.Client, a.Port, a.Set, orDash(a.Server), fmt.Sprintf("0x%08x", a.SCTPTag), yesNo(a.TagIndexed),
			orDash(strings.Join(paths, ",")))
	}
	tw.Flush()
}

// addrPort writes an address and port, IPv6 in brackets.
func addrPort(addr string, port uint16) string {
	if strings.Contains(addr, ":") {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	return fmt.Sprintf("%s:%d", addr, port)
}
