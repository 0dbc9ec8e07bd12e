package slowpath

import (
	"context"
	"errors"
	"net/http"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
)

// bgpBackend is the part of the daemon the BGP endpoints use; *Daemon
// implements it. A backend without it (test fakes of Backend) answers 404,
// as a daemon without [bgp] does for the node drain.
type bgpBackend interface {
	BGP() BGPState
	SetNodeDrained(ctx context.Context, drained bool) error
}

var _ bgpBackend = (*Daemon)(nil)

// routeBGP adds GET /v1/bgp, POST /v1/node/drain and POST
// /v1/node/undrain (ipfront ctl bgp, drain-node, undrain-node).
func (a *API) routeBGP(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/bgp", a.bgp)
	mux.HandleFunc("POST /v1/node/drain", a.nodeDrain(true))
	mux.HandleFunc("POST /v1/node/undrain", a.nodeDrain(false))
}

func (a *API) bgp(w http.ResponseWriter, _ *http.Request) {
	b, ok := a.b.(bgpBackend)
	if !ok {
		writeJSON(w, http.StatusOK, v1.BGP{})
		return
	}
	writeJSON(w, http.StatusOK, bgpReply(b.BGP()))
}

func (a *API) nodeDrain(drained bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, ok := a.b.(bgpBackend)
		if !ok {
			writeError(w, http.StatusNotFound, ErrNoBGP)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), a.opTO)
		defer cancel()
		if err := b.SetNodeDrained(ctx, drained); err != nil {
			code := opStatus(err)
			if errors.Is(err, ErrNoBGP) {
				code = http.StatusNotFound
			}
			writeError(w, code, err)
			return
		}
		writeJSON(w, http.StatusOK, bgpReply(b.BGP()))
	}
}

func bgpReply(st BGPState) v1.BGP {
	out := v1.BGP{Mode: st.Status.Mode, NodeDrained: st.NodeDrained, Stopping: st.Stopping,
		Announced: st.Status.Announced, Withdrawn: st.Withdrawn}
	for _, p := range st.Status.Peers {
		n := v1.BGPNeighbor{Address: p.Address, ASN: p.ASN, State: p.State, Advertised: p.Advertised, Received: p.Received}
		if !p.Since.IsZero() {
			since := p.Since
			n.Since = &since
		}
		out.Neighbors = append(out.Neighbors, n)
	}
	return out
}
