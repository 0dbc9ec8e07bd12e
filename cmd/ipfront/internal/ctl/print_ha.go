package ctl

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// printHA prints GET /v1/ha: whether the instance joined, then one line per
// mate with its state, lag and counters.
func printHA(w io.Writer, r *v1.HA) {
	if !r.Enabled {
		fmt.Fprintln(w, "replication off (no [ha] table)")
		return
	}
	fmt.Fprintf(w, "listen %s  joined %v\n", r.Listen, r.Joined)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MATE\tSTATE\tPULLED\tLAST HEARD\tLAG\tSENT\tRECEIVED\tIMPORTED\tUNRESOLVED\tRESYNCS REQ/SERVED\tREJECTED")
	for _, m := range r.Mates {
		heard := "never"
		if !m.LastReceived.IsZero() {
			heard = time.Since(m.LastReceived).Round(time.Millisecond).String() + " ago"
		}
		rej := m.Rejected["forged"] + m.Rejected["replayed"] + m.Rejected["stale"] + m.Rejected["malformed"]
		fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%d\t%d\t%d\t%d\t%d/%d\t%d\n", m.Mate, m.State, m.Pulled, heard,
			time.Duration(m.LagSeconds*float64(time.Second)).Round(time.Microsecond), m.SentRecords, m.ReceivedRecords,
			m.Imported, m.Unresolved, m.ResyncsRequested, m.ResyncsServed, rej)
	}
	tw.Flush()
}
