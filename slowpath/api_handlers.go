package slowpath

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/slowpath/config"
)

// StatusReply is the body of GET /v1/status. It is served with 503 until the
// daemon is ready.
type StatusReply struct {
	Ready      bool              `json:"ready"`
	Generation uint64            `json:"generation"`
	Interfaces []InterfaceStatus `json:"interfaces"`
	Workers    []WorkerStatus    `json:"workers"`
}

// InterfaceStatus describes one data-plane interface.
type InterfaceStatus struct {
	Name    string `json:"name"`
	Index   int    `json:"ifindex"`
	XDPMode string `json:"xdp_mode"`
	Queues  []int  `json:"queues"`
}

// WorkerStatus describes one worker.
type WorkerStatus struct {
	Name         string  `json:"name"` // "interface/queue"
	Interface    string  `json:"interface"`
	Queue        int     `json:"queue"`
	CPU          int     `json:"cpu"` // -1: not pinned
	Associations int     `json:"associations"`
	Capacity     int     `json:"capacity"`
	RxPackets    uint64  `json:"rx_packets"`
	TxPackets    uint64  `json:"tx_packets"`
	RxPPS        float64 `json:"rx_pps"` // over the last sampling interval
	TxPPS        float64 `json:"tx_pps"`
}

func (a *API) status(w http.ResponseWriter, _ *http.Request) {
	rep := StatusReply{Ready: a.b.Ready(), Generation: a.b.Generation(), Interfaces: []InterfaceStatus{}, Workers: []WorkerStatus{}}
	if p := a.plane(); p != nil {
		for _, ifc := range p.Interfaces() {
			rep.Interfaces = append(rep.Interfaces, InterfaceStatus{ifc.Name, ifc.Index, ifc.XDPMode.String(), ifc.Queues})
		}
		snap, r := snapshotPlane(p), a.rates.current()
		for i := range snap.workers {
			wk, c := &snap.workers[i], snap.per[i]
			rx, tx := r.worker(wk.Name())
			rep.Workers = append(rep.Workers, WorkerStatus{wk.Name(), wk.Interface, wk.Queue, wk.CPU,
				wk.Assoc.Live(), wk.Assoc.Limit(), c.RxPackets, c.TxPackets, rx, tx})
		}
	}
	code := http.StatusOK
	if !rep.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rep)
}

// CountersReply is the body of GET /v1/counters: totals over all workers,
// then each worker's own.
type CountersReply struct {
	RxPackets       uint64            `json:"rx_packets"`
	RxBytes         uint64            `json:"rx_bytes"`
	TxPackets       uint64            `json:"tx_packets"`
	TxBytes         uint64            `json:"tx_bytes"`
	Dropped         uint64            `json:"dropped"`
	Drops           map[string]uint64 `json:"drops"` // every reason, zero included
	Associations    int               `json:"associations"`
	NewAssociations uint64            `json:"new_associations"`
	Reselected      uint64            `json:"reselected"`
	Expired         uint64            `json:"expired"`
	Stateless       uint64            `json:"stateless"`
	ICMPForwarded   uint64            `json:"icmp_forwarded"`
	SteeredToXSK    uint64            `json:"steered_to_xsk"`
	PassedToKernel  uint64            `json:"passed_to_kernel"`
	Servers         []ServerCounters  `json:"servers"`
	Workers         []WorkerCounters  `json:"workers"`
}

// ServerCounters is one server's traffic.
type ServerCounters struct {
	Set     string `json:"set"`
	Name    string `json:"name"`
	Address string `json:"address"`
	Weight  uint32 `json:"weight"` // effective
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// WorkerCounters is one worker's share of the totals.
type WorkerCounters struct {
	Name            string            `json:"name"` // "interface/queue"
	Interface       string            `json:"interface"`
	Queue           int               `json:"queue"`
	CPU             int               `json:"cpu"`
	RxPackets       uint64            `json:"rx_packets"`
	RxBytes         uint64            `json:"rx_bytes"`
	TxPackets       uint64            `json:"tx_packets"`
	TxBytes         uint64            `json:"tx_bytes"`
	Dropped         uint64            `json:"dropped"`
	Drops           map[string]uint64 `json:"drops"`
	Associations    int               `json:"associations"`
	Capacity        int               `json:"capacity"`
	NewAssociations uint64            `json:"new_associations"`
	Reselected      uint64            `json:"reselected"`
	Expired         uint64            `json:"expired"`
	Stateless       uint64            `json:"stateless"`
	ICMPForwarded   uint64            `json:"icmp_forwarded"`
}

func (a *API) counters(w http.ResponseWriter, _ *http.Request) {
	p := a.plane()
	if p == nil {
		writeError(w, http.StatusServiceUnavailable, ErrNotRunning)
		return
	}
	writeJSON(w, http.StatusOK, countersOf(p))
}

// CountersOf sums the data plane's counters into the API's shape.
func CountersOf(dp *fastpath.Dataplane) CountersReply { return countersOf(DataplanePlane(dp)) }

func countersOf(p Plane) CountersReply {
	snap := snapshotPlane(p)
	c := snap.total
	rep := CountersReply{
		RxPackets: c.RxPackets, RxBytes: c.RxBytes, TxPackets: c.TxPackets, TxBytes: c.TxBytes,
		Dropped: c.Dropped(), Drops: dropMap(c), NewAssociations: c.NewAssociations,
		Reselected: c.Reselected, Expired: c.Expired, Stateless: c.Stateless, ICMPForwarded: c.ICMPForwarded,
		Servers: []ServerCounters{}, Workers: []WorkerCounters{},
	}
	rep.SteeredToXSK, rep.PassedToKernel, _ = p.SteeringStats()
	for i := range snap.workers {
		wk, wc := &snap.workers[i], snap.per[i]
		live := wk.Assoc.Live()
		rep.Associations += live
		rep.Workers = append(rep.Workers, WorkerCounters{
			Name: wk.Name(), Interface: wk.Interface, Queue: wk.Queue, CPU: wk.CPU,
			RxPackets: wc.RxPackets, RxBytes: wc.RxBytes, TxPackets: wc.TxPackets, TxBytes: wc.TxBytes,
			Dropped: wc.Dropped(), Drops: dropMap(wc), Associations: live, Capacity: wk.Assoc.Limit(),
			NewAssociations: wc.NewAssociations, Reselected: wc.Reselected, Expired: wc.Expired,
			Stateless: wc.Stateless, ICMPForwarded: wc.ICMPForwarded,
		})
	}
	if t := snap.tables; t != nil {
		for _, ts := range t.Sets() {
			for slot, s := range ts.Servers {
				if !s.Present {
					continue
				}
				j := int(ts.ID)*fastpath.MaxServers + slot
				rep.Servers = append(rep.Servers, ServerCounters{ts.Name, s.Name, s.Addr.String(), s.Weight, c.ServerPackets[j], c.ServerBytes[j]})
			}
		}
	}
	return rep
}

// dropMap names every drop counter, zero included, so clients see the
// complete set of reasons.
func dropMap(c *fastpath.Counters) map[string]uint64 {
	m := make(map[string]uint64, fastpath.NumReasons)
	for r := fastpath.Reason(1); r < fastpath.NumReasons; r++ {
		m[r.String()] = c.Drops[r]
	}
	return m
}

// SetsReply is the body of GET /v1/sets.
type SetsReply struct {
	Sets []SetInfo `json:"sets"`
}

// SetInfo is one target set: its configuration and live association count.
type SetInfo struct {
	Name         string     `json:"name"`
	VIP          netip.Addr `json:"vip"`
	Protocols    []string   `json:"protocols"`
	Ports        []string   `json:"ports"`
	Method       string     `json:"method"`
	Forwarding   string     `json:"forwarding"`
	DeleteAge    string     `json:"delete_age"` // a Go duration, as in the file
	TableSize    int        `json:"table_size"`
	Servers      int        `json:"servers"`
	Associations int        `json:"associations"`
}

func (a *API) sets(w http.ResponseWriter, _ *http.Request) {
	spec := a.b.Spec()
	var counts *assocCounts
	ids := map[string]uint16{}
	if p := a.plane(); p != nil {
		t := p.Tables()
		counts = countAssociations(p.Workers(), t)
		if t != nil {
			for _, ts := range t.Sets() {
				ids[ts.Name] = ts.ID
			}
		}
	}
	rep := SetsReply{Sets: make([]SetInfo, 0, len(spec.TargetSets))}
	for i := range spec.TargetSets {
		ts := &spec.TargetSets[i]
		si := SetInfo{Name: ts.Name, VIP: ts.Address, Protocols: []string{}, Ports: []string{}, Method: ts.Method,
			Forwarding: ts.Forwarding, DeleteAge: ts.DeleteAge.String(), TableSize: ts.TableSize, Servers: len(ts.Servers)}
		for _, p := range ts.Protocols {
			si.Protocols = append(si.Protocols, p.String())
		}
		for _, r := range ts.Ports {
			si.Ports = append(si.Ports, r.String())
		}
		if id, ok := ids[ts.Name]; ok && counts != nil {
			si.Associations = counts.bySet[id]
		}
		rep.Sets = append(rep.Sets, si)
	}
	writeJSON(w, http.StatusOK, rep)
}

// ServersReply is the body of GET /v1/servers.
type ServersReply struct {
	// Interval is the length in seconds of the interval PPS and BPS cover;
	// 0 until the sampler has two readings.
	Interval float64      `json:"interval_seconds"`
	Servers  []ServerInfo `json:"servers"`
}

// ServerInfo is a server's state with its traffic.
type ServerInfo struct {
	ServerState
	Associations int     `json:"associations"` // live associations made for this server
	Packets      uint64  `json:"packets"`      // forwarded since start
	Bytes        uint64  `json:"bytes"`
	PPS          float64 `json:"pps"`   // packets per second over the last interval
	BPS          float64 `json:"bps"`   // bits per second over the last interval
	Share        float64 `json:"share"` // fraction of its set's packets since start, 0..1
}

func (a *API) servers(w http.ResponseWriter, r *http.Request) {
	set := r.URL.Query().Get("set")
	if set != "" && findSet(a.b.Spec(), set) == nil {
		writeError(w, http.StatusNotFound, fmt.Errorf("no target set %q: %w", set, ErrUnknownServer))
		return
	}
	writeJSON(w, http.StatusOK, a.serverInfos(set))
}

func (a *API) serverInfos(set string) ServersReply {
	states := a.b.Servers()
	infos := make([]ServerInfo, len(states))
	for i, st := range states {
		infos[i].ServerState = st
	}
	rep := ServersReply{Servers: []ServerInfo{}}
	if p := a.plane(); p != nil {
		snap, rt := snapshotPlane(p), a.rates.current()
		rep.Interval = rt.interval().Seconds()
		idx := indexServers(snap.tables)
		counts := countAssociations(snap.workers, snap.tables)
		setPackets := map[string]uint64{}
		for i := range infos {
			si := &infos[i]
			j, ok := idx.lookup(si.Set, si.Address)
			if !ok {
				continue // not published yet
			}
			si.Associations = counts.byServer[j]
			si.Packets, si.Bytes = snap.total.ServerPackets[j], snap.total.ServerBytes[j]
			si.PPS, si.BPS = rt.server(j)
			setPackets[si.Set] += si.Packets
		}
		for i := range infos {
			if n := setPackets[infos[i].Set]; n > 0 {
				infos[i].Share = float64(infos[i].Packets) / float64(n)
			}
		}
	}
	for _, si := range infos {
		if set == "" || si.Set == set {
			rep.Servers = append(rep.Servers, si)
		}
	}
	return rep
}

func findSet(spec *config.Spec, name string) *config.TargetSet {
	for i := range spec.TargetSets {
		if spec.TargetSets[i].Name == name {
			return &spec.TargetSets[i]
		}
	}
	return nil
}

// AlarmsReply is the body of GET /v1/alarms: active alarms first.
type AlarmsReply struct {
	Alarms []Alarm `json:"alarms"`
}

func (a *API) alarms(w http.ResponseWriter, _ *http.Request) {
	rep := AlarmsReply{Alarms: a.b.Alarms()}
	if rep.Alarms == nil {
		rep.Alarms = []Alarm{}
	}
	writeJSON(w, http.StatusOK, rep)
}

// ReloadReply is the body of a successful POST /v1/reload.
type ReloadReply struct {
	Generation uint64 `json:"generation"`
}

// reload answers 200 when the file was applied, 422 with every problem when
// it is invalid (nothing changed), 409 when it changes what only a restart
// can.
func (a *API) reload(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), a.opTO)
	defer cancel()
	err := a.b.Reload(ctx)
	var cerrs config.Errors
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, ReloadReply{Generation: a.b.Generation()})
	case errors.As(err, &cerrs):
		lines := splitErrors(cerrs)
		writeJSON(w, http.StatusUnprocessableEntity, ErrorReply{Error: "invalid configuration, nothing changed", Errors: lines})
	case errors.Is(err, ErrRestartNeeded):
		writeError(w, http.StatusConflict, err)
	default:
		writeError(w, opStatus(err), err)
	}
}

// drain serves POST /v1/servers/{set}/{server}/drain and /enable. The reply
// is the server's state afterwards.
func (a *API) drain(drained bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		set, server := r.PathValue("set"), r.PathValue("server")
		ctx, cancel := context.WithTimeout(r.Context(), a.opTO)
		defer cancel()
		if err := a.b.SetDrained(ctx, set, server, drained); err != nil {
			code := opStatus(err)
			if errors.Is(err, ErrUnknownServer) {
				code = http.StatusNotFound
			}
			writeError(w, code, err)
			return
		}
		for _, st := range a.b.Servers() {
			if st.Set == set && (st.Name == server || st.Address.String() == server) {
				writeJSON(w, http.StatusOK, st)
				return
			}
		}
		writeError(w, http.StatusNotFound, fmt.Errorf("target set %q has no server %q: %w", set, server, ErrUnknownServer))
	}
}

// opStatus maps the error of an operation the control goroutine runs.
func opStatus(err error) int {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled), errors.Is(err, ErrNotRunning):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
