package slowpath

import (
	"slices"

	v1 "github.com/ipfront/ipfront/slowpath/api/v1"
	"github.com/ipfront/ipfront/slowpath/config"
)

// The daemon keeps its server states and alarms in the API's types, which
// package v1 defines so that clients need not import the daemon.
type (
	// ServerState is one server as the slow path sees it: configuration,
	// operator state and health, and the weight new associations
	// currently see.
	ServerState = v1.Server
	// Alarm is a target set's connection-balance alarm or a worker's
	// table-full alarm (Kind).
	Alarm = v1.Alarm
	// AlarmServer is one server's shares when an alarm was evaluated.
	AlarmServer = v1.AlarmServer
)

// Spec returns the configuration in force. Callers must not modify it.
func (d *Daemon) Spec() *config.Spec { return d.cur().spec }

// Servers lists every configured server with its run-time state. It reads
// one consistent state without waiting for the control goroutine.
func (d *Daemon) Servers() []ServerState {
	st := d.cur()
	p := d.Plane()
	var out []ServerState
	for i := range st.spec.TargetSets {
		ts := &st.spec.TargetSets[i]
		for j := range ts.Servers {
			s := &ts.Servers[j]
			ref := serverRef{ts.Name, s.Address}
			w, _ := st.policy(ts, s)
			ss := ServerState{Set: ts.Name, Name: s.Name, Address: s.Address, Weight: s.Weight, EffectiveWeight: w,
				Drained: st.drained[ref], Healthy: !st.down[ref], Resolved: p != nil}
			for _, r := range s.OwnedPorts {
				ss.OwnedPorts = append(ss.OwnedPorts, r.String())
			}
			if p != nil {
				for _, ifc := range p.Interfaces() {
					if _, ok := d.opts.Neighbors.Lookup(ifc.Index, s.Address); !ok {
						ss.Resolved = false
					}
				}
			}
			out = append(out, ss)
		}
	}
	return out
}

// Alarms returns every alarm raised since start (balance and table-full,
// the latest maxAlarmHistory), active ones first.
func (d *Daemon) Alarms() []Alarm {
	v := d.alarmView.Load()
	if v == nil {
		return []Alarm{}
	}
	return slices.Clone(v.alarms)
}
