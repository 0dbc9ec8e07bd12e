package slowpath

import (
	"net/netip"
	"time"

	"github.com/ipfront/ipfront/slowpath/config"
)

// ServerState is one server as the slow path sees it: configuration, operator
// state and health, and the weight new associations currently see.
type ServerState struct {
	Set             string     `json:"set"`
	Name            string     `json:"name"`
	Address         netip.Addr `json:"address"`
	Weight          int        `json:"weight"`           // configured
	EffectiveWeight uint32     `json:"effective_weight"` // after drain, health and balance
	Drained         bool       `json:"drained"`
	Healthy         bool       `json:"healthy"`
	Resolved        bool       `json:"resolved"` // MAC known on every interface
}

// Alarm is a connection-balance alarm of a target set (the IPFE's "out of
// balance"): raised when servers' shares of traffic deviate from their weight
// shares for a sustained period, cleared with hysteresis.
type Alarm struct {
	ID        string        `json:"id"`
	Set       string        `json:"set"`
	Active    bool          `json:"active"`
	Raised    time.Time     `json:"raised"`
	Cleared   time.Time     `json:"cleared,omitzero"`
	Deviation float64       `json:"deviation"` // largest |share - weight share| when last evaluated
	Servers   []AlarmServer `json:"servers"`
}

// AlarmServer is one server's shares when an alarm was evaluated.
type AlarmServer struct {
	Name        string  `json:"name"`
	Address     string  `json:"address"`
	WeightShare float64 `json:"weight_share"`
	PacketShare float64 `json:"packet_share"`
	AssocShare  float64 `json:"association_share"`
}

// Spec returns the configuration in force. Callers must not modify it.
func (d *Daemon) Spec() *config.Spec {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.spec
}

// Servers lists every configured server with its run-time state.
func (d *Daemon) Servers() []ServerState {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []ServerState
	for i := range d.spec.TargetSets {
		ts := &d.spec.TargetSets[i]
		for j := range ts.Servers {
			s := &ts.Servers[j]
			ref := serverRef{ts.Name, s.Address}
			w, _ := d.policy(ts, s)
			st := ServerState{Set: ts.Name, Name: s.Name, Address: s.Address, Weight: s.Weight, EffectiveWeight: w,
				Drained: d.drained[ref], Healthy: !d.down[ref], Resolved: d.dp != nil}
			if d.dp != nil {
				for _, ifc := range d.dp.Interfaces() {
					if _, ok := d.neigh.Lookup(ifc.Index, s.Address); !ok {
						st.Resolved = false
					}
				}
			}
			out = append(out, st)
		}
	}
	return out
}

// Alarms returns every balance alarm raised since start, active ones first.
func (d *Daemon) Alarms() []Alarm {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Alarm, 0, len(d.alarms))
	for _, a := range d.alarms {
		if a.Active {
			out = append(out, a)
		}
	}
	for _, a := range d.alarms {
		if !a.Active {
			out = append(out, a)
		}
	}
	return out
}
