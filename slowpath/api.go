package slowpath

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/ipfront/ipfront/fastpath"
)

// API is the control and observation endpoint: JSON over HTTP on a loopback
// address or a unix socket (mode 0600). It only reads published state.
type API struct {
	d   *Daemon
	srv *http.Server
	ln  net.Listener
}

// Listen opens the API listener ("host:port" or "unix:/path").
func Listen(d *Daemon, addr string) (*API, error) {
	var ln net.Listener
	var err error
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		_ = os.Remove(path)
		ln, err = net.Listen("unix", path)
		if err == nil {
			err = os.Chmod(path, 0o600)
		}
	} else {
		ln, err = net.Listen("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	a := &API{d: d, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", a.status)
	mux.HandleFunc("GET /v1/counters", a.counters)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return a, nil
}

// Addr is the address the API listens on.
func (a *API) Addr() net.Addr { return a.ln.Addr() }

// Serve serves until Shutdown.
func (a *API) Serve() error {
	if err := a.srv.Serve(a.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops the listener and waits briefly for requests in flight.
func (a *API) Shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = a.srv.Shutdown(ctx)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// StatusReply is the body of GET /v1/status.
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
	Interface    string `json:"interface"`
	Queue        int    `json:"queue"`
	CPU          int    `json:"cpu"`
	Associations int    `json:"associations"`
	Capacity     int    `json:"capacity"`
	RxPackets    uint64 `json:"rx_packets"`
	TxPackets    uint64 `json:"tx_packets"`
}

func (a *API) status(w http.ResponseWriter, _ *http.Request) {
	rep := StatusReply{Ready: a.d.Ready(), Generation: a.d.Generation()}
	dp := a.d.Dataplane()
	if dp != nil {
		for _, ifc := range dp.Interfaces() {
			rep.Interfaces = append(rep.Interfaces, InterfaceStatus{ifc.Name, ifc.Index, ifc.XDPMode.String(), ifc.Queues})
		}
		var c fastpath.Counters
		for _, wk := range dp.Workers() {
			wk.Engine().Snapshot(&c)
			sh := wk.Engine().Shard()
			rep.Workers = append(rep.Workers, WorkerStatus{wk.Interface, wk.Queue, wk.CPU, sh.Live(), sh.Limit(), c.RxPackets, c.TxPackets})
		}
	}
	code := http.StatusOK
	if !rep.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rep)
}

// CountersReply is the body of GET /v1/counters: totals over all workers.
type CountersReply struct {
	RxPackets       uint64            `json:"rx_packets"`
	RxBytes         uint64            `json:"rx_bytes"`
	TxPackets       uint64            `json:"tx_packets"`
	TxBytes         uint64            `json:"tx_bytes"`
	Dropped         uint64            `json:"dropped"`
	Drops           map[string]uint64 `json:"drops"`
	Associations    int               `json:"associations"`
	NewAssociations uint64            `json:"new_associations"`
	Reselected      uint64            `json:"reselected"`
	Expired         uint64            `json:"expired"`
	Stateless       uint64            `json:"stateless"`
	ICMPForwarded   uint64            `json:"icmp_forwarded"`
	SteeredToXSK    uint64            `json:"steered_to_xsk"`
	PassedToKernel  uint64            `json:"passed_to_kernel"`
	Servers         []ServerCounters  `json:"servers"`
}

// ServerCounters is one server's traffic.
type ServerCounters struct {
	Set     string `json:"set"`
	Name    string `json:"name"`
	Address string `json:"address"`
	Weight  uint32 `json:"weight"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

func (a *API) counters(w http.ResponseWriter, _ *http.Request) {
	dp := a.d.Dataplane()
	if dp == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": ErrNotRunning.Error()})
		return
	}
	writeJSON(w, http.StatusOK, CountersOf(dp))
}

// CountersOf sums the data plane's counters into the API's shape.
func CountersOf(dp *fastpath.Dataplane) CountersReply {
	c := dp.Counters()
	rep := CountersReply{
		RxPackets: c.RxPackets, RxBytes: c.RxBytes, TxPackets: c.TxPackets, TxBytes: c.TxBytes,
		Dropped: c.Dropped(), Drops: map[string]uint64{}, NewAssociations: c.NewAssociations,
		Reselected: c.Reselected, Expired: c.Expired, Stateless: c.Stateless, ICMPForwarded: c.ICMPForwarded,
	}
	for r := fastpath.Reason(1); r < fastpath.NumReasons; r++ {
		rep.Drops[r.String()] = c.Drops[r]
	}
	for _, wk := range dp.Workers() {
		rep.Associations += wk.Engine().Shard().Live()
	}
	rep.SteeredToXSK, rep.PassedToKernel, _ = dp.SteeringStats()
	if t := dp.Tables(); t != nil {
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
