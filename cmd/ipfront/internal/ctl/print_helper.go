package ctl

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// printExpectations prints the FTP helper's counters, then the expected
// data connections.
func printExpectations(w io.Writer, r *v1.Expectations) {
	h := &r.Helper
	counts := func(m map[string]uint64, order ...string) string {
		keys := order
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+" "+num(m[k]))
		}
		return strings.Join(parts, ", ")
	}
	tw := table(w)
	row(tw, "commands", counts(h.Commands, "PORT", "EPRT", "227", "229"))
	row(tw, "rewrites", num(h.Rewrites))
	row(tw, "expectations", fmt.Sprintf("waiting %s, installed %s, used %s, expired %s", num(h.Expectations),
		num(h.ExpectationsInstalled), num(h.ExpectationsUsed), num(h.ExpectationsExpired)))
	row(tw, "refused", counts(h.Refused, "bounce"))
	row(tw, "dropped", counts(h.Dropped))
	row(tw, "connections", fmt.Sprintf("%s followed, %s resyncs, %s segments unparsed", num(h.Connections),
		num(h.Resyncs), num(h.Unparsed)))
	row(tw, "rings", fmt.Sprintf("punted %s, injected %s, punt ring full %s, inject overflow %s, control overflow %s",
		num(h.Punted), num(h.Injected), num(h.PuntRingFull), num(h.InjectOverflow), num(h.ControlOverflow)))
	tw.Flush()
	fmt.Fprintln(w)
	if len(r.Expectations) == 0 {
		fmt.Fprintln(w, "no expectations")
		return
	}
	tw = table(w)
	row(tw, "SET", "MODE", "CLIENT", "PORT", "SERVER", "ADDRESS", "AGE", "EXPIRES-IN", "WORKER")
	for _, e := range r.Expectations {
		row(tw, e.Set, e.Mode, e.Client, strconv.Itoa(int(e.Port)), orDash(e.Server), orDash(e.Address),
			strconv.Itoa(int(e.Age))+"s", strconv.Itoa(int(e.ExpiresIn))+"s", e.Worker)
	}
	tw.Flush()
}
