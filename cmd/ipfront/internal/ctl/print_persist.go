package ctl

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// printOwnedPorts prints, below the servers table, the destination ports
// each server owns; nothing when no server owns any.
func printOwnedPorts(w io.Writer, r *v1.Servers) {
	var tw io.Writer
	for i := range r.Servers {
		s := &r.Servers[i]
		if len(s.OwnedPorts) == 0 {
			continue
		}
		if tw == nil {
			fmt.Fprintln(w)
			t := table(w)
			defer t.Flush()
			tw = t
			row(tw, "SET", "SERVER", "ADDRESS", "OWNED-PORTS")
		}
		row(tw, s.Set, s.Name, s.Address, strings.Join(s.OwnedPorts, ","))
	}
}

// printPersistence prints the persistence counters, then one row per
// client record.
func printPersistence(w io.Writer, r *v1.Persistence) {
	c := &r.Counters
	fmt.Fprintf(w, "records made %s, found %s, full %s, expired %s; owned-port associations %s\n",
		num(c.Made), num(c.Found), num(c.Full), num(c.Expired), num(c.OwnedPort))
	fmt.Fprintln(w)
	if len(r.Records) == 0 {
		fmt.Fprintln(w, "no persistence records")
		return
	}
	tw := table(w)
	row(tw, "GROUP", "CLIENT", "SERVER", "ADDRESS", "AGE", "EXPIRES-IN", "WORKERS", "FLOWS", "SETS")
	for _, p := range r.Records {
		row(tw, p.Group, p.Client, orDash(p.Server), orDash(p.Address), strconv.Itoa(int(p.Age))+"s",
			strconv.Itoa(int(p.ExpiresIn))+"s", p.Workers, p.Flows, strings.Join(p.Sets, ","))
	}
	tw.Flush()
}
