package slowpath

// The daemon's side of association replication ([ha]; slowpath/ha): it
// starts the node once the first tables are published, and holds readiness
// (and so the BGP announcement, announce.go) until the node has pulled a
// mate's table or found no mate to pull from.

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/ipfront/ipfront/fastpath"
	"github.com/ipfront/ipfront/fastpath/assoc"
	"github.com/ipfront/ipfront/slowpath/config"
	"github.com/ipfront/ipfront/slowpath/ha"
)

var _ ha.Plane = dataplanePlane{}

// DrainChanges implements ha.Plane.
func (p dataplanePlane) DrainChanges(w int, out []fastpath.Change) int {
	return p.dp.DrainChanges(w, out)
}

// Range implements ha.Plane: worker w's shard, read lock-free.
func (p dataplanePlane) Range(w int, fn func(assoc.Key, assoc.Value) bool) {
	if ws := p.dp.Workers(); w >= 0 && w < len(ws) {
		ws[w].Engine().Shard().Range(fn)
	}
}

// ChangesDropped implements ha.Plane.
func (p dataplanePlane) ChangesDropped() uint64 { return p.dp.Counters().ChangesDropped }

// ReadHAKey reads an [ha] key_file: the shared secret, surrounding
// whitespace ignored, at least ha.MinKeyLen bytes.
func ReadHAKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ha key_file: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) < ha.MinKeyLen {
		return nil, fmt.Errorf("ha key_file %s: %d bytes, want at least %d (e.g. head -c 32 /dev/urandom | base64 > %s)",
			path, len(b), ha.MinKeyLen, path)
	}
	return b, nil
}

// startHA starts replication if spec has [ha]; the returned function stops
// it. The data plane must have been started with replication on
// (fastpath.Config.Replicate).
func (d *Daemon) startHA(spec *config.Spec, dp DataPlane) (func(), error) {
	if !spec.HA.Enabled {
		return func() {}, nil
	}
	p, ok := dp.(ha.Plane)
	if !ok {
		return nil, errors.New("ha: the data plane cannot replicate associations")
	}
	key, err := ReadHAKey(spec.HA.KeyFile)
	if err != nil {
		return nil, err
	}
	n, err := ha.Start(ha.Config{Listen: spec.HA.Listen, Mates: spec.HA.Mates, Key: key,
		Log: d.log.With().Str("component", "ha").Logger()}, p)
	if err != nil {
		return nil, err
	}
	d.haNode.Store(n)
	d.log.Info().Str("listen", spec.HA.Listen.String()).Int("mates", len(spec.HA.Mates)).
		Msg("ha started; pulling the mates' associations before ready")
	return func() {
		if err := n.Close(); err != nil {
			d.log.Warn().Err(err).Msg("ha stop")
		}
	}, nil
}

// haJoined reports whether replication lets the daemon be ready: no [ha],
// or the node has joined its mates.
func (d *Daemon) haJoined() bool {
	n := d.haNode.Load()
	return n == nil || n.Joined()
}

// HAStats returns replication's state, and false without [ha].
func (d *Daemon) HAStats() (ha.Stats, bool) {
	n := d.haNode.Load()
	if n == nil {
		return ha.Stats{}, false
	}
	return n.Stats(), true
}
