package slowpath

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipfront/ipfront/slowpath/config"
)

// ErrRestartNeeded reports a reload that changes what only a restart can:
// the [dataplane] section (interfaces, queues, rings) or the API listener;
// the error names the keys.
var ErrRestartNeeded = errors.New("change needs a restart")

// ErrUnknownServer reports a drain or enable naming no configured server.
var ErrUnknownServer = errors.New("no such server")

// Reload re-reads the configuration file the daemon was started with. It is
// all or nothing: a file that does not parse or validate, a spec whose tables
// cannot be built and a publication the data plane refuses all leave the
// daemon as it was (spec, numbering, published tables, steered VIPs), and
// the error lists every problem with its file:line:column; so does a change
// to [dataplane] or [api], whose keys the error names. A valid one is
// applied with one table publication: associations whose server remains
// keep it; the others re-select on their next packet. Changed [log] keys,
// which also need a restart, do not stop the rest: the result names them
// (NotApplied), the log warns, and they stay reported until a restart.
func (d *Daemon) Reload(ctx context.Context) (_ ReloadReply, err error) {
	defer func() { d.reloads.note(err == nil, d.opts.Clock.Now()) }() // reload_status.go
	path := d.Spec().Path
	next, err := config.Load(path)
	if err != nil {
		d.log.Error().Str("config", path).Msg("reload refused: invalid configuration, nothing changed")
		for _, line := range splitErrors(err) {
			d.log.Error().Str("config", path).Msg(line)
		}
		return ReloadReply{}, err
	}
	for _, w := range next.Warnings {
		d.log.Warn().Str("config", path).Msg(w.Error())
	}
	var res ReloadReply
	err = d.do(ctx, func() (err error) {
		res, err = d.reload(next)
		return err
	})
	return res, err
}

// reload applies a validated spec. Control goroutine only.
func (d *Daemon) reload(next *config.Spec) (ReloadReply, error) {
	cur := d.cur()
	path := next.Path
	var restart, notApplied []string
	for _, k := range config.RestartKeys(cur.spec, next) {
		if strings.HasPrefix(k, "log.") {
			notApplied = append(notApplied, k)
		} else {
			restart = append(restart, k)
		}
	}
	if len(restart) > 0 {
		err := fmt.Errorf("%s: %s changed: %w; nothing was applied", path, strings.Join(restart, ", "), ErrRestartNeeded)
		d.log.Error().Err(err).Msg("reload refused")
		return ReloadReply{}, err
	}
	st := *cur
	st.spec = next
	if len(notApplied) > 0 {
		// The spec in force keeps the [log] the daemon runs with, so the
		// next reload reports the keys again until a restart applies them.
		applied := *next
		applied.Log = cur.spec.Log
		st.spec = &applied
	}
	st.down = checkedOnly(cur.down, next)
	if err := d.apply(&st); err != nil {
		err = fmt.Errorf("apply %s: %w", path, err)
		d.log.Error().Err(err).Msg("reload refused, nothing changed")
		return ReloadReply{}, err
	}
	d.log.Info().Str("config", path).Uint64("generation", d.Generation()).Int("target_sets", len(next.TargetSets)).Msg("reloaded")
	if len(notApplied) > 0 {
		d.log.Warn().Str("config", path).Strs("keys", notApplied).Msg("reload: keys not applied, they need a restart")
	}
	if d.health != nil {
		// Update waits for stopped checkers; they never wait on us (healthQueue).
		d.health.Update(healthTargets(next))
	}
	return ReloadReply{Generation: d.Generation(), NotApplied: notApplied}, nil
}

// checkedOnly keeps the down verdicts of servers spec still checks: a
// server whose set no longer has a health check, or that left its set, has
// no checker left to bring it back up.
func checkedOnly(down map[serverRef]bool, spec *config.Spec) map[serverRef]bool {
	checked := map[serverRef]bool{}
	for _, t := range healthTargets(spec) {
		checked[serverRef{t.Set, t.Addr}] = true
	}
	out := map[serverRef]bool{}
	for ref := range down {
		if checked[ref] {
			out[ref] = true
		}
	}
	return out
}

func splitErrors(err error) []string {
	var errs config.Errors
	if errors.As(err, &errs) {
		out := make([]string, len(errs))
		for i, e := range errs {
			out[i] = e.Error()
		}
		return out
	}
	return []string{err.Error()}
}

// SetDrained drains (no new associations, existing ones continue) or
// re-enables a server of a target set. server is its name or address. If
// the tables cannot be published, nothing changes.
func (d *Daemon) SetDrained(ctx context.Context, set, server string, drained bool) error {
	return d.do(ctx, func() error {
		cur := d.cur()
		ref, err := findServer(cur.spec, set, server)
		if err != nil {
			return err
		}
		st := *cur
		st.drained = cloneRefs(cur.drained)
		if drained {
			st.drained[ref] = true
		} else {
			delete(st.drained, ref)
		}
		if err := d.apply(&st); err != nil {
			return err
		}
		d.log.Info().Str("target_set", set).Str("server", server).Bool("drained", drained).Msg("server admin state")
		return nil
	})
}

func findServer(spec *config.Spec, set, server string) (serverRef, error) {
	for _, ts := range spec.TargetSets {
		if ts.Name != set {
			continue
		}
		for _, s := range ts.Servers {
			if s.Name == server || s.Address.String() == server {
				return serverRef{set, s.Address}, nil
			}
		}
		return serverRef{}, fmt.Errorf("target set %q has no server %q: %w", set, server, ErrUnknownServer)
	}
	return serverRef{}, fmt.Errorf("no target set %q: %w", set, ErrUnknownServer)
}

// Drained reports whether a server is drained by an operator.
func (d *Daemon) Drained(set string, addr netip.Addr) bool {
	return d.cur().drained[serverRef{set, addr}]
}
