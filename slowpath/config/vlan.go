package config

import "fmt"

// [dataplane] vlans and partial_queues.

// decodeVLANs reads vlans: a list of VLAN IDs, nil when absent or empty.
// Values that do not fit 16 bits are reported here; the range
// 1..4094 and duplicates are Validate's.
func decodeVLANs(t table) []uint16 {
	ids, _ := t.ints("vlans")
	if len(ids) == 0 {
		return nil
	}
	path := join(t.path, "vlans")
	out := make([]uint16, len(ids))
	for i, id := range ids {
		ep := elem(path, i)
		if t.r.muted(ep) {
			continue // not an integer: already reported
		}
		if id < 0 || id > 0xffff {
			t.r.errorf(ep, "VLAN IDs are 1..4094", "VLAN ID %d is out of range", id)
			continue
		}
		out[i] = uint16(id)
	}
	return out
}

// validateVLANs checks the VLAN IDs: 1..4094 (0 means a priority tag
// without a VLAN and 4095 is reserved, IEEE 802.1Q), each once.
func (d *Dataplane) validateVLANs(r *reporter) {
	seen := make(map[uint16]int)
	for i, id := range d.VLANs {
		ep := elem("dataplane.vlans", i)
		switch j, dup := seen[id]; {
		case r.muted(ep):
		case id < 1 || id > 4094:
			r.errorf(ep, "VLAN IDs are 1..4094; untagged VIP traffic needs no entry", "VLAN ID %d is out of range", id)
		case dup:
			r.errorf(ep, "list each VLAN once", "VLAN %d is already listed at index %d", id, j)
		default:
			seen[id] = i
		}
	}
}

// validatePartialQueues refuses partial_queues where it means nothing.
func (d *Dataplane) validatePartialQueues(r *reporter) {
	if d.PartialQueues && d.Queues == nil && !r.muted("dataplane.queues") {
		r.errorf("dataplane.partial_queues", fmt.Sprintf("remove it: %s serves every queue", `queues = "all"`),
			"partial_queues applies to a list of queues")
	}
}
