package ctl

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// printBGP lays out GET /v1/bgp (ctl bgp, drain-node, undrain-node).
func printBGP(w io.Writer, r *v1.BGP) {
	if r.Mode == "" {
		fmt.Fprintln(w, "no [bgp]: the VIPs are not announced")
		return
	}
	state := "announcing"
	switch {
	case r.Stopping:
		state = "stopping (everything withdrawn, draining)"
	case r.NodeDrained:
		state = "drained (everything withdrawn; undrain-node to announce)"
	}
	fmt.Fprintf(w, "mode: %s  node: %s\n", r.Mode, state)
	fmt.Fprintf(w, "announced: %s\n", prefixList(r.Announced))
	fmt.Fprintf(w, "withdrawn: %s\n", prefixList(r.Withdrawn))
	if len(r.Neighbors) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw := table(w)
	row(tw, "NEIGHBOR", "ASN", "STATE", "SINCE", "ADVERTISED", "RECEIVED")
	for _, n := range r.Neighbors {
		since := "-"
		if n.Since != nil {
			since = n.Since.Local().Format(time.RFC3339)
		}
		row(tw, n.Address, n.ASN, n.State, since, n.Advertised, n.Received)
	}
	tw.Flush()
}

func prefixList(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "-"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}
