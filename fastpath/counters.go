package fastpath

import (
	"sync/atomic"

	"github.com/ipfront/ipfront/fastpath/packet"
)

// Drop reasons of the forwarder itself, after a frame parsed cleanly. They
// share one numbering with packet.Reason so that every drop has exactly one
// named counter.
const (
	DropNoTargetSet        = Reason(packet.NumReasons) + iota // VIP traffic no target set serves (protocol or port)
	DropNoServer                                              // every server of the set is drained or failed
	DropNeighborUnresolved                                    // the chosen server's MAC is not known yet
	DropTxRingFull                                            // the TX ring had no room
	DropKernelRx                                              // dropped by the kernel before the RX ring: frame bigger than a UMEM frame, ring full
	DropNoForwarding                                          // the set's forwarding strategy is not one this build knows
	DropPuntRingFull                                          // a frame for the slow path found the worker's punt ring full
	DropNATNoRoute                                            // NAT: no route towards the client of a reply
	DropNATNoAssociation                                      // NAT: a server's frame that matches no association or expectation
	DropHandoffFull                                           // NAT: the ring to the egress interface's worker was full
	DropVLANNotConfigured                                     // a VIP frame tagged with a VLAN that [dataplane] vlans does not list
	DropEncapTooBig                                           // IPIP/GUE: the encapsulated frame exceeds the UMEM frame or the set's encap MTU (forward_encap.go)
	DropEncapNoSource                                         // IPIP/GUE: no outer source address for the server's IP family
	NumReasons
)

// Reason is a drop reason: a packet.Reason or one of the Drop* constants.
type Reason uint8

var dropNames = [...]string{"no_target_set", "no_server", "neighbor_unresolved", "tx_ring_full", "kernel_rx_dropped", "no_forwarding", "punt_ring_full",
	"nat_no_route", "nat_no_association", "handoff_ring_full", "vlan_not_configured", "encap_too_big", "encap_no_source"}

// String returns the reason's metric label.
func (r Reason) String() string {
	if r < Reason(packet.NumReasons) {
		return packet.Reason(r).String()
	}
	if int(r-Reason(packet.NumReasons)) < len(dropNames) {
		return dropNames[r-Reason(packet.NumReasons)]
	}
	return "unknown"
}

// Counters are one worker's totals. The worker keeps a private copy it
// increments with plain arithmetic and publishes it into a shared copy once
// per batch (see publish), so the per-packet cost is an add, and readers get
// a view at most one batch old without ever stopping the worker.
type Counters struct {
	RxPackets, RxBytes uint64
	TxPackets, TxBytes uint64
	Drops              [NumReasons]uint64
	NewAssociations    uint64 // associations created, including re-selections
	Reselected         uint64 // associations moved to a new server (teardown seen, server gone)
	Expired            uint64 // associations that went stale (swept or found stale)
	Stateless          uint64 // flows forwarded without an association: table full
	ICMPForwarded      uint64 // ICMP errors sent to the server of the flow they quote
	// The worker's rings with the slow path (Worker.Punted, Inject,
	// PushControl). Injected frames are not counted in RxPackets; once
	// through the engine they count in TxPackets, Forwarded and the drop
	// reasons like any frame.
	Punted          uint64 // frames copied into the punt ring for the slow path
	Injected        uint64 // frames from the inject ring the TX ring accepted
	InjectDropped   uint64 // frames taken from the inject ring but not sent: no free frame, too long, the engine dropped them, TX ring full
	InjectOverflow  uint64 // frames the inject ring refused to the slow path (ring full or too long)
	ControlApplied  uint64 // control messages applied to the shard
	ControlRejected uint64 // control messages that could not apply: insert of an existing key, update or delete of a missing one, shard full, invalid (see ControlResult)
	ControlOverflow uint64 // control messages the control ring refused to the slow path (ring full)
	ExpectUsed      uint64 // SYNs of data connections a helper's expectation admitted (forward_nat.go; a retransmitted SYN counts again)
	// Persistence and port ownership (persist.go).
	PersistMade    uint64 // persistence records written with a new choice
	PersistFound   uint64 // new associations a live persistence record decided
	PersistFull    uint64 // choices not recorded: the shard holds its share of persistence records
	PersistExpired uint64 // persistence records swept after their timeout
	OwnedPort      uint64 // packets an owned destination port sent to its owner, without an association
	// Flood and forgery defences (engine_guard.go).
	Unproven        uint64 // gauge: the shard's associations that have not proven a connection (at most half the shard)
	FloodStateless  uint64 // openings forwarded by hash without an association: unproven ones held their half of the shard
	TeardownIgnored uint64 // TCP FIN or RST whose sequence number is far from the client's: not taken as a teardown
	SCTPTagMismatch uint64 // SCTP teardown chunks without the association's learned verification tag: not taken as a teardown
	// PartialChecksum counts new flows whose first packet carried only the
	// pseudo-header sum as its TCP or UDP checksum (packet.PartialChecksum:
	// a local sender's checksum offload, which copy-mode AF_XDP cannot
	// complete). The server drops such packets; the fix is on the sender
	// (`ethtool -K <dev> tx off`). Tested once per flow, not per packet.
	PartialChecksum uint64
	// Signalling (signalling.go).
	TagIndexHits  uint64 // SCTP packets of an unknown path that the verification-tag index sent to their association's server
	TagCollisions uint64 // SCTP associations whose tag another association of the set already indexed for another server
	DiameterStale uint64 // Diameter flows expired without an application message (connect, CER/CEA, disconnect only)
	// Replication (replicate.go).
	ChangesDropped uint64 // record changes the full change ring refused: the mates need a resync
	Adopted        uint64 // new flows that found a mate's imported record in another worker's shard and took it
	// Loop utilisation and UMEM occupancy (worker.go), for operators.
	// BusyNanos and IdleNanos split the worker's time between loop
	// iterations that received frames (and their housekeeping) and those
	// that found the RX ring empty, sleeping in poll(2) included: one clock
	// reading per iteration, the one the association clock takes anyway.
	// The UMEM* gauges say where the port's frames were at the last
	// once-a-second refresh (xsk.Accounting; zero for ports without it).
	BusyNanos, IdleNanos uint64
	UMEMFrames           uint64 // gauge: frames of the port's UMEM
	UMEMFree             uint64 // gauge: on the free stack
	UMEMFillRx           uint64 // gauge: on the fill ring, being received into, or waiting on the RX ring
	UMEMHeld             uint64 // gauge: held by the worker (received or allocated, not yet sent or released)
	UMEMTx               uint64 // gauge: on the TX ring, being sent, or waiting on the completion ring
	// Forwarded counts frames each forwarding strategy sent, by strategy
	// (FwdDSR, ...).
	Forwarded [NumForwardings]uint64
	// Server packets and bytes, indexed by set id * MaxServers + slot.
	ServerPackets, ServerBytes [MaxSets * MaxServers]uint64
	// ServerAssociations is the number of live associations per server
	// (same index), kept by the worker as it makes, moves and expires them,
	// so nobody has to walk the table to know it.
	ServerAssociations [MaxSets * MaxServers]int64
}

// numScalars is the number of fields scalars returns.
const numScalars = 39 + int(NumForwardings)

// scalars lists the fields publish copies every batch, in one place so that
// publish and Snapshot cannot drift apart.
func (c *Counters) scalars() [numScalars]*uint64 {
	out := [numScalars]*uint64{&c.RxPackets, &c.RxBytes, &c.TxPackets, &c.TxBytes, &c.NewAssociations,
		&c.Reselected, &c.Expired, &c.Stateless, &c.ICMPForwarded,
		&c.Punted, &c.Injected, &c.InjectDropped, &c.InjectOverflow, &c.ControlApplied, &c.ControlRejected, &c.ControlOverflow,
		&c.ExpectUsed, &c.PersistMade, &c.PersistFound, &c.PersistFull, &c.PersistExpired, &c.OwnedPort,
		&c.Unproven, &c.FloodStateless, &c.TeardownIgnored, &c.SCTPTagMismatch, &c.PartialChecksum,
		&c.ChangesDropped, &c.Adopted, &c.TagIndexHits, &c.TagCollisions, &c.DiameterStale,
		&c.BusyNanos, &c.IdleNanos, &c.UMEMFrames, &c.UMEMFree, &c.UMEMFillRx, &c.UMEMHeld, &c.UMEMTx}
	for f := range c.Forwarded {
		out[39+f] = &c.Forwarded[f]
	}
	return out
}

// sharedCounters is the published copy: written only by the owning worker,
// with atomic stores; read by anyone with atomic loads.
type sharedCounters struct {
	c Counters
}

// publish copies what changed since the last publish. dirty lists the server
// indices touched in this batch.
func (s *sharedCounters) publish(local, last *Counters, dirty []uint16) {
	ls, ps, ss := local.scalars(), last.scalars(), s.c.scalars()
	for i := range ls {
		if *ls[i] != *ps[i] {
			atomic.StoreUint64(ss[i], *ls[i])
			*ps[i] = *ls[i]
		}
	}
	for i := range local.Drops {
		if local.Drops[i] != last.Drops[i] {
			atomic.StoreUint64(&s.c.Drops[i], local.Drops[i])
			last.Drops[i] = local.Drops[i]
		}
	}
	for _, j := range dirty {
		atomic.StoreUint64(&s.c.ServerPackets[j], local.ServerPackets[j])
		atomic.StoreUint64(&s.c.ServerBytes[j], local.ServerBytes[j])
		atomic.StoreInt64(&s.c.ServerAssociations[j], local.ServerAssociations[j])
	}
}

// snapshot reads the published copy into out.
func (s *sharedCounters) snapshot(out *Counters) {
	ss, os := s.c.scalars(), out.scalars()
	for i := range ss {
		*os[i] = atomic.LoadUint64(ss[i])
	}
	for i := range out.Drops {
		out.Drops[i] = atomic.LoadUint64(&s.c.Drops[i])
	}
	for i := range out.ServerPackets {
		out.ServerPackets[i] = atomic.LoadUint64(&s.c.ServerPackets[i])
		out.ServerBytes[i] = atomic.LoadUint64(&s.c.ServerBytes[i])
		out.ServerAssociations[i] = atomic.LoadInt64(&s.c.ServerAssociations[i])
	}
}

// Add accumulates o into c, for totals across workers.
func (c *Counters) Add(o *Counters) {
	cs, os := c.scalars(), o.scalars()
	for i := range cs {
		*cs[i] += *os[i]
	}
	for i := range c.Drops {
		c.Drops[i] += o.Drops[i]
	}
	for i := range c.ServerPackets {
		c.ServerPackets[i] += o.ServerPackets[i]
		c.ServerBytes[i] += o.ServerBytes[i]
		c.ServerAssociations[i] += o.ServerAssociations[i]
	}
}

// Dropped is the total of all drop counters.
func (c *Counters) Dropped() uint64 {
	var n uint64
	for _, d := range c.Drops {
		n += d
	}
	return n
}
