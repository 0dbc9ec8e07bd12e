package fastpath

import (
	"errors"
	"os"
)

// Publish hands a new generation of tables to the workers and makes the
// steering programs send exactly its VIPs to them. Tables go first, so a
// newly steered VIP always finds its target set.
func (d *Dataplane) Publish(t *Tables) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return os.ErrClosed
	}
	d.tables.Store(t)
	vips := t.VIPs()
	var errs []error
	for _, p := range d.programs {
		errs = append(errs, p.SetVIPs(vips))
	}
	return errors.Join(errs...)
}
