package slowpath

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"

	"github.com/ipfront/ipfront/slowpath/config"
)

// ErrRestartNeeded reports a reload that changes what only a restart can:
// the [dataplane] section (interfaces, queues, rings) or the API listener.
var ErrRestartNeeded = errors.New("change needs a restart")

// ErrUnknownServer reports a drain or enable naming no configured server.
var ErrUnknownServer = errors.New("no such server")

// Reload re-reads the configuration file the daemon was started with. An
// invalid file changes nothing and the error lists every problem with its
// file:line:column. A valid one is applied with one table publication:
// associations whose server remains keep it; the others re-select on their
// next packet.
func (d *Daemon) Reload(ctx context.Context) error {
	d.mu.Lock()
	path := d.spec.Path
	d.mu.Unlock()
	next, err := config.Load(path)
	if err != nil {
		d.log.Error().Str("config", path).Msg("reload refused: invalid configuration, nothing changed")
		for _, line := range splitErrors(err) {
			d.log.Error().Str("config", path).Msg(line)
		}
		return err
	}
	return d.do(ctx, func() error {
		d.mu.Lock()
		defer d.mu.Unlock()
		if !reflect.DeepEqual(next.Dataplane, d.spec.Dataplane) || next.API != d.spec.API {
			err := fmt.Errorf("%s: [dataplane] or [api] changed: %w; target sets were not applied either", path, ErrRestartNeeded)
			d.log.Error().Err(err).Msg("reload refused")
			return err
		}
		prev := d.spec
		d.spec = next
		if err := d.publishLocked(); err != nil {
			d.spec = prev
			return fmt.Errorf("apply %s: %w", path, err)
		}
		d.log.Info().Str("config", path).Uint64("generation", d.gen).Int("target_sets", len(next.TargetSets)).Msg("reloaded")
		if d.health != nil {
			// Update waits for stopped checkers; they never wait on us (healthQueue).
			d.health.Update(healthTargets(next))
		}
		return nil
	})
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
// re-enables a server of a target set. server is its name or address.
func (d *Daemon) SetDrained(ctx context.Context, set, server string, drained bool) error {
	return d.do(ctx, func() error {
		d.mu.Lock()
		defer d.mu.Unlock()
		ref, err := d.findServer(set, server)
		if err != nil {
			return err
		}
		if drained {
			d.drained[ref] = true
		} else {
			delete(d.drained, ref)
		}
		if err := d.publishLocked(); err != nil {
			return err
		}
		d.log.Info().Str("target_set", set).Str("server", server).Bool("drained", drained).Msg("server admin state")
		return nil
	})
}

func (d *Daemon) findServer(set, server string) (serverRef, error) {
	for _, ts := range d.spec.TargetSets {
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
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.drained[serverRef{set, addr}]
}
