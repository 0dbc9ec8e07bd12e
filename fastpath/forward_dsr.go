package fastpath

import "github.com/ipfront/ipfront/fastpath/packet"

// Forwarding strategies (TargetSet.Forwarding): how a frame reaches the
// server the association chose. Each lives in a forward_*.go file of its
// own with its own counters, and forward dispatches on the set's strategy.
const (
	// FwdDSR is L2 direct server return, the zero value: the frame leaves
	// unchanged but for its MAC addresses, the server holds the VIP on a
	// loopback interface and answers the client directly.
	FwdDSR uint8 = iota
	// FwdNAT is address translation (forward_nat.go): ipfront is in the
	// path both ways, rewriting the VIP to the server on the way in and
	// back on the way out.
	FwdNAT
	// FwdIPIP is IP-in-IP encapsulation to servers on any routed subnet
	// (forward_encap.go), DSR return.
	FwdIPIP
	// FwdGUE is Generic UDP Encapsulation (forward_encap.go), DSR return.
	FwdGUE
	// NumForwardings is the number of strategies; Counters.Forwarded is
	// indexed by strategy.
	NumForwardings
)

// forwardingNames are the strategies' configuration and metric names.
var forwardingNames = [NumForwardings]string{"dsr", "nat", "ipip", "gue"}

// ForwardingName returns the configuration name of strategy f.
func ForwardingName(f uint8) string {
	if f < NumForwardings {
		return forwardingNames[f]
	}
	return "unknown"
}

// forwardDSR rewrites frame for L2 direct server return to slot of ts: the
// server's MAC as destination, and ours as source, so that a bridge between
// us and the servers keeps learning the client's MAC on the client's port.
func (e *Engine) forwardDSR(frame []byte, ts *TargetSet, slot uint8) Action {
	srv := &ts.Servers[slot]
	if !srv.HasMAC[e.iface] {
		e.local.Drops[DropNeighborUnresolved]++
		return Drop
	}
	eth := packet.Ethernet(frame)
	eth.SetDst(srv.MAC[e.iface])
	eth.SetSrc(e.srcMAC)
	e.local.Forwarded[FwdDSR]++
	return Transmit
}
