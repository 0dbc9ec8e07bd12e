package slowpath

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/ipfront/ipfront/fastpath"
	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
	"github.com/ipfront/ipfront/slowpath/config"
)

// The API's reply types are defined in package v1, which clients import
// without the daemon; the daemon's code knows them by these names.
type (
	// StatusReply is the body of GET /v1/status.
	StatusReply = v1.Status
	// InterfaceStatus describes one data-plane interface.
	InterfaceStatus = v1.Interface
	// WorkerStatus describes one worker.
	WorkerStatus = v1.Worker
)

func (a *API) status(w http.ResponseWriter, _ *http.Request) {
	rep := StatusReply{Ready: a.b.Ready(), Generation: a.b.Generation(), Interfaces: []InterfaceStatus{}, Workers: []WorkerStatus{}}
	if p := a.plane(); p != nil {
		for _, ifc := range p.Interfaces() {
			rep.Interfaces = append(rep.Interfaces, InterfaceStatus{Name: ifc.Name, Index: ifc.Index, XDPMode: ifc.XDPMode.String(), Queues: ifc.Queues})
		}
		snap, r := snapshotPlane(p), a.rates.current()
		full := tableFullWorkers(a.b.Alarms())
		for i := range snap.workers {
			wk, c := &snap.workers[i], snap.per[i]
			rx, tx := r.worker(wk.Name())
			limit := wk.Assoc.Limit()
			rep.Workers = append(rep.Workers, WorkerStatus{Name: wk.Name(), Interface: wk.Interface, Queue: wk.Queue, CPU: wk.CPU,
				Associations: wk.Assoc.Live(), Capacity: limit, RxPackets: c.RxPackets, TxPackets: c.TxPackets, RxPPS: rx, TxPPS: tx,
				Unproven: int(c.Unproven), UnprovenLimit: int(unprovenLimit(limit)), TableFull: full[wk.Name()]})
		}
	}
	code := http.StatusOK
	if !rep.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rep)
}

// tableFullWorkers names the workers whose table-full alarm is active.
func tableFullWorkers(alarms []Alarm) map[string]bool {
	out := map[string]bool{}
	for _, al := range alarms {
		if al.Kind == AlarmTableFull && al.Active {
			out[al.Worker] = true
		}
	}
	return out
}

type (
	// CountersReply is the body of GET /v1/counters.
	CountersReply = v1.Counters
	// ServerCounters is one server's traffic.
	ServerCounters = v1.ServerCounters
	// WorkerCounters is one worker's share of the totals.
	WorkerCounters = v1.WorkerCounters
)

func (a *API) counters(w http.ResponseWriter, _ *http.Request) {
	p := a.plane()
	if p == nil {
		writeError(w, http.StatusServiceUnavailable, ErrNotRunning)
		return
	}
	writeJSON(w, http.StatusOK, countersOf(p))
}

// CountersOf sums the data plane's counters into the API's shape.
func CountersOf(p Plane) CountersReply { return countersOf(p) }

func countersOf(p Plane) CountersReply {
	snap := snapshotPlane(p)
	c := snap.total
	rep := CountersReply{
		RxPackets: c.RxPackets, RxBytes: c.RxBytes, TxPackets: c.TxPackets, TxBytes: c.TxBytes,
		Dropped: c.Dropped(), Drops: dropMap(c), NewAssociations: c.NewAssociations,
		Reselected: c.Reselected, Expired: c.Expired, Stateless: c.Stateless, ICMPForwarded: c.ICMPForwarded,
		Servers: []ServerCounters{}, Workers: []WorkerCounters{},
	}
	if sc, err := p.SteeringStats(); err == nil {
		rep.SteeredToXSK, rep.PassedToKernel, rep.ShedOpenings = sc.Redirected, sc.Passed, sc.ShedOpenings
	}
	var unprovenLim uint64
	for i := range snap.workers {
		wk, wc := &snap.workers[i], snap.per[i]
		live, lim := wk.Assoc.Live(), unprovenLimit(wk.Assoc.Limit())
		unprovenLim += lim
		rep.Associations += live
		rep.Workers = append(rep.Workers, WorkerCounters{
			Name: wk.Name(), Interface: wk.Interface, Queue: wk.Queue, CPU: wk.CPU,
			RxPackets: wc.RxPackets, RxBytes: wc.RxBytes, TxPackets: wc.TxPackets, TxBytes: wc.TxBytes,
			Dropped: wc.Dropped(), Drops: dropMap(wc), Associations: live, Capacity: wk.Assoc.Limit(),
			NewAssociations: wc.NewAssociations, Reselected: wc.Reselected, Expired: wc.Expired,
			Stateless: wc.Stateless, ICMPForwarded: wc.ICMPForwarded, Defences: defencesOf(wc, lim), Signalling: signallingOf(wc),
		})
	}
	rep.Defences = defencesOf(c, unprovenLim)
	rep.Signalling = signallingOf(c) // api_signalling.go
	if t := snap.tables; t != nil {
		for _, ts := range t.Sets() {
			for slot, s := range ts.Servers {
				if !s.Present {
					continue
				}
				j := int(ts.ID)*fastpath.MaxServers + slot
				rep.Servers = append(rep.Servers, ServerCounters{Set: ts.Name, Name: s.Name, Address: s.Addr.String(), Weight: s.Weight,
					Packets: c.ServerPackets[j], Bytes: c.ServerBytes[j]})
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

type (
	// SetsReply is the body of GET /v1/sets.
	SetsReply = v1.Sets
	// SetInfo is one target set.
	SetInfo = v1.Set
)

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

type (
	// ServersReply is the body of GET /v1/servers.
	ServersReply = v1.Servers
	// ServerInfo is a server's state with its traffic.
	ServerInfo = v1.ServerStats
)

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
		infos[i].Server = st
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

// AlarmsReply is the body of GET /v1/alarms.
type AlarmsReply = v1.Alarms

func (a *API) alarms(w http.ResponseWriter, _ *http.Request) {
	rep := AlarmsReply{Alarms: a.b.Alarms()}
	if rep.Alarms == nil {
		rep.Alarms = []Alarm{}
	}
	writeJSON(w, http.StatusOK, rep)
}

// ReloadReply is the body of a successful POST /v1/reload.
type ReloadReply = v1.ReloadResult

// reload answers 200 when the file was applied (naming the keys that need a
// restart and were not), 422 with every problem when
// it is invalid (nothing changed), 409 when it changes what only a restart
// can.
func (a *API) reload(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), a.opTO)
	defer cancel()
	res, err := a.b.Reload(ctx)
	var cerrs config.Errors
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, res)
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
