package ctl

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// Human output: aligned columns in the manner of "ipvsadm -L -n --stats
// --rate". Counts below 100000 print exactly; larger ones are scaled by
// 1000 with a K, M, G or T suffix, so columns stay narrow.

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

// row writes one tab-separated line.
func row(tw io.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, c)
	}
	fmt.Fprint(tw, "\n")
}

// num formats a count like ipvsadm does.
func num(n uint64) string {
	suffix := ""
	for _, s := range []string{"K", "M", "G", "T", "P"} {
		if n < 100000 {
			break
		}
		n, suffix = n/1000, s
	}
	return strconv.FormatUint(n, 10) + suffix
}

// rate formats a per-second rate, rounded.
func rate(r float64) string {
	if r <= 0 || math.IsNaN(r) {
		return "0"
	}
	return num(uint64(math.Round(r)))
}

func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 1, 64) + "%" }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func cpu(c int) string {
	if c < 0 {
		return "-"
	}
	return strconv.Itoa(c)
}

func ints(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func printStatus(w io.Writer, r *v1.Status) {
	fmt.Fprintf(w, "ready: %s  generation: %d\n", yesNo(r.Ready), r.Generation)
	if len(r.Interfaces) > 0 {
		fmt.Fprintln(w)
		tw := table(w)
		row(tw, "INTERFACE", "IFINDEX", "XDP", "QUEUES")
		for _, i := range r.Interfaces {
			row(tw, i.Name, i.Index, i.XDPMode, ints(i.Queues))
		}
		tw.Flush()
	}
	if len(r.Workers) > 0 {
		fmt.Fprintln(w)
		tw := table(w)
		row(tw, "WORKER", "CPU", "ASSOC", "CAPACITY", "USE", "RX-PKTS", "TX-PKTS", "RX-PPS", "TX-PPS", "UNPROVEN", "TABLE-FULL")
		for _, k := range r.Workers {
			use := 0.0
			if k.Capacity > 0 {
				use = float64(k.Associations) / float64(k.Capacity)
			}
			row(tw, k.Name, cpu(k.CPU), num(uint64(k.Associations)), num(uint64(k.Capacity)), pct(use),
				num(k.RxPackets), num(k.TxPackets), rate(k.RxPPS), rate(k.TxPPS),
				num(uint64(k.Unproven))+"/"+num(uint64(k.UnprovenLimit)), yesNo(k.TableFull))
		}
		tw.Flush()
	}
}

func printCounters(w io.Writer, r *v1.Counters) {
	tw := table(w)
	row(tw, "WORKER", "RX-PKTS", "RX-BYTES", "TX-PKTS", "TX-BYTES", "DROPPED", "ASSOC", "CREATED", "RESELECTED", "EXPIRED", "STATELESS")
	for _, k := range r.Workers {
		row(tw, k.Name, num(k.RxPackets), num(k.RxBytes), num(k.TxPackets), num(k.TxBytes), num(k.Dropped),
			num(uint64(k.Associations)), num(k.NewAssociations), num(k.Reselected), num(k.Expired), num(k.Stateless))
	}
	row(tw, "total", num(r.RxPackets), num(r.RxBytes), num(r.TxPackets), num(r.TxBytes), num(r.Dropped),
		num(uint64(r.Associations)), num(r.NewAssociations), num(r.Reselected), num(r.Expired), num(r.Stateless))
	tw.Flush()
	fmt.Fprintf(w, "\nicmp forwarded: %s  steered to AF_XDP: %s  passed to kernel: %s  openings shed (overload): %s\n",
		num(r.ICMPForwarded), num(r.SteeredToXSK), num(r.PassedToKernel), num(r.ShedOpenings))
	// The flood and forged-teardown defences: unproven associations
	// against their limit, and what the fast path refused to believe.
	fmt.Fprintln(w)
	tw = table(w)
	row(tw, "WORKER", "UNPROVEN", "UNPROVEN-LIMIT", "FLOOD-STATELESS", "TEARDOWN-IGNORED", "SCTP-TAG-MISMATCH", "PARTIAL-CSUM")
	defences := func(name string, d *v1.Defences) {
		row(tw, name, num(d.Unproven), num(d.UnprovenLimit), num(d.FloodStateless), num(d.TeardownIgnored),
			num(d.SCTPTagMismatch), num(d.PartialChecksum))
	}
	for i := range r.Workers {
		defences(r.Workers[i].Name, &r.Workers[i].Defences)
	}
	defences("total", &r.Defences)
	tw.Flush()
	printSignalling(w, r) // print_signalling.go
	reasons := make([]string, 0, len(r.Drops))
	for k, v := range r.Drops {
		if v > 0 {
			reasons = append(reasons, k)
		}
	}
	if len(reasons) == 0 {
		fmt.Fprintln(w, "no drops")
		return
	}
	sort.Slice(reasons, func(i, j int) bool { return r.Drops[reasons[i]] > r.Drops[reasons[j]] })
	fmt.Fprintln(w)
	tw = table(w)
	row(tw, "DROP-REASON", "PKTS")
	for _, k := range reasons {
		row(tw, k, num(r.Drops[k]))
	}
	tw.Flush()
}

func printSets(w io.Writer, r *v1.Sets) {
	tw := table(w)
	row(tw, "SET", "VIP", "PROTOCOLS", "PORTS", "METHOD", "FORWARDING", "DELETE-AGE", "SERVERS", "ASSOC")
	for _, s := range r.Sets {
		row(tw, s.Name, s.VIP, strings.Join(s.Protocols, ","), strings.Join(s.Ports, ","), s.Method, s.Forwarding,
			s.DeleteAge, s.Servers, num(uint64(s.Associations)))
	}
	tw.Flush()
}

// serverState names what keeps a server from taking new associations, or
// "up".
func serverState(s *v1.Server) string {
	var st []string
	if s.Drained {
		st = append(st, "drained")
	}
	if !s.Healthy {
		st = append(st, "down")
	}
	if !s.Resolved {
		st = append(st, "unresolved")
	}
	if len(st) == 0 {
		return "up"
	}
	return strings.Join(st, ",")
}

func printServers(w io.Writer, r *v1.Servers) {
	tw := table(w)
	row(tw, "SET", "SERVER", "ADDRESS", "WEIGHT", "EFF", "STATE", "ASSOC", "PPS", "BPS", "PKTS", "BYTES", "SHARE")
	for i := range r.Servers {
		s := &r.Servers[i]
		row(tw, s.Set, s.Name, s.Address, s.Weight, s.EffectiveWeight, serverState(&s.Server), num(uint64(s.Associations)),
			rate(s.PPS), rate(s.BPS), num(s.Packets), num(s.Bytes), pct(s.Share))
	}
	tw.Flush()
	printOwnedPorts(w, r) // print_persist.go
}

func printAssociations(w io.Writer, r *v1.Associations) {
	tw := table(w)
	row(tw, "CLIENT", "PORT", "PROTO", "SET", "SERVER", "ADDRESS", "IDLE", "FLAGS", "WORKER", "NAT")
	for _, a := range r.Associations {
		nat := a.NAT
		if a.SeqOffset != 0 {
			nat += fmt.Sprintf("(seq%+d)", a.SeqOffset)
		}
		row(tw, a.Client, a.Port, a.Protocol, a.Set, orDash(a.Server), orDash(a.Address),
			(time.Duration(a.Idle) * time.Second).String(), orDash(strings.Join(a.Flags, ",")), a.Worker, orDash(nat))
	}
	tw.Flush()
	printSCTPPaths(w, r) // print_signalling.go
}

func printAlarms(w io.Writer, r *v1.Alarms) {
	if len(r.Alarms) == 0 {
		fmt.Fprintln(w, "no alarms")
		return
	}
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.Local().Format(time.RFC3339)
	}
	tw := table(w)
	row(tw, "ID", "KIND", "SET", "WORKER", "STATE", "RAISED", "CLEARED", "DEVIATION")
	var servers, tables bool
	for _, a := range r.Alarms {
		state := "cleared"
		if a.Active {
			state = "active"
		}
		dev := pct(a.Deviation)
		if a.Kind == v1.AlarmTableFull {
			dev = "-"
		}
		row(tw, a.ID, alarmKind(&a), orDash(a.Set), orDash(a.Worker), state, stamp(a.Raised), stamp(a.Cleared), dev)
		servers = servers || len(a.Servers) > 0
		tables = tables || a.Table != nil
	}
	tw.Flush()
	if servers {
		fmt.Fprintln(w)
		tw = table(w)
		row(tw, "ALARM", "SERVER", "ADDRESS", "WEIGHT-SHARE", "PACKET-SHARE", "ASSOC-SHARE")
		for _, a := range r.Alarms {
			for _, s := range a.Servers {
				row(tw, a.ID, s.Name, s.Address, pct(s.WeightShare), pct(s.PacketShare), pct(s.AssocShare))
			}
		}
		tw.Flush()
	}
	if tables {
		fmt.Fprintln(w)
		tw = table(w)
		row(tw, "ALARM", "CAUSES", "ASSOC", "CAPACITY", "UNPROVEN", "UNPROVEN-LIMIT", "STATELESS", "FLOOD-STATELESS")
		for _, a := range r.Alarms {
			if t := a.Table; t != nil {
				row(tw, a.ID, orDash(strings.Join(t.Causes, ",")), num(uint64(t.Associations)), num(uint64(t.Capacity)),
					num(t.Unproven), num(t.UnprovenLimit), num(t.Stateless), num(t.FloodStateless))
			}
		}
		tw.Flush()
	}
}

// alarmKind names an alarm's kind; daemons from before table-full alarms
// send none, and all their alarms were balance alarms.
func alarmKind(a *v1.Alarm) string {
	if a.Kind == "" {
		return v1.AlarmBalance
	}
	return a.Kind
}

func printReload(w io.Writer, r *v1.ReloadResult) {
	fmt.Fprintf(w, "reloaded: tables generation %d\n", r.Generation)
	if len(r.NotApplied) > 0 {
		fmt.Fprintf(w, "not applied (need a restart): %s\n", strings.Join(r.NotApplied, ", "))
	}
}

func printAdmin(w io.Writer, s *v1.Server) {
	verb := "enabled"
	if s.Drained {
		verb = "drained"
	}
	fmt.Fprintf(w, "%s %s/%s (%s): effective weight %d, state %s\n", verb, s.Set, s.Name, s.Address, s.EffectiveWeight, serverState(s))
}
