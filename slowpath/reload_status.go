package slowpath

import (
	"sync"
	"time"
)

// ReloadStatus is what the daemon remembers of its configuration loads: the
// start counts as the first successful one. A reload is successful when it
// was applied (keys it could not apply, such as [log], leave it successful
// and are reported by the reload's result); one refused at any stage —
// parse, validation, a change that needs a restart, building or publishing
// the tables — is a failure and changed nothing.
type ReloadStatus struct {
	Successful  bool      // the last attempt (or the start) succeeded
	LastAttempt time.Time // the last reload attempt, or the start
	LastSuccess time.Time // the last successful reload, or the start
	Reloads     uint64    // successful reloads since start (the start not counted)
	Failures    uint64    // failed reload attempts since start
}

// reloadLog records ReloadStatus; any goroutine may read it.
type reloadLog struct {
	mu sync.Mutex
	st ReloadStatus
}

// start records the configuration the daemon started with.
func (r *reloadLog) start(at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st = ReloadStatus{Successful: true, LastAttempt: at, LastSuccess: at}
}

// note records a reload attempt's outcome.
func (r *reloadLog) note(ok bool, at time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Successful, r.st.LastAttempt = ok, at
	if ok {
		r.st.LastSuccess = at
		r.st.Reloads++
	} else {
		r.st.Failures++
	}
}

func (r *reloadLog) get() ReloadStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st
}

// LastReload returns the outcome of the last configuration load (Reload or
// SIGHUP; the start before any). Safe from any goroutine.
func (d *Daemon) LastReload() ReloadStatus { return d.reloads.get() }

// ReloadReporter is a Backend that remembers its reloads (*Daemon is one);
// the metrics export it when the backend has it.
type ReloadReporter interface {
	LastReload() ReloadStatus
}

var _ ReloadReporter = (*Daemon)(nil)
