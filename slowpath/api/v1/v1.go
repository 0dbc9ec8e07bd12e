// Package v1 holds the types of ipfront's control API, version 1: the JSON
// bodies the daemon serves under /v1/ and that "ipfront ctl" and other
// clients decode. It depends on nothing but the standard library, so a
// client imports it without pulling in the daemon, the data plane or their
// dependencies.
//
// The JSON field names are the API's contract: a field may be added, never
// renamed or removed, within v1. Unless a field says otherwise, counters
// count since the daemon started and rates are per second over the last
// sampling interval (one second by default).
//
// Every error under /v1/, a refused bearer token and an unknown path
// included, is an [Error] with an HTTP status other than 2xx; GET
// /v1/status alone also answers 503 with a [Status] until the daemon is
// ready.
package v1

import (
	"net/netip"
	"time"
)

// Limits of a page of GET /v1/associations (?limit=).
const (
	DefaultAssocLimit = 100   // without ?limit=
	MaxAssocLimit     = 10000 // the largest ?limit= accepted
)

// OpTimeout bounds how long the daemon works on POST /v1/reload, drain and
// enable before it answers 503: such a request waits for the daemon's one
// control goroutine. A client waiting a little longer always gets the
// daemon's answer.
const OpTimeout = 30 * time.Second

// Status is the body of GET /v1/status. It is served with 503 until the
// daemon is ready.
type Status struct {
	Ready      bool        `json:"ready"`
	Generation uint64      `json:"generation"` // of the tables the workers use
	Interfaces []Interface `json:"interfaces"`
	Workers    []Worker    `json:"workers"`
}

// Interface describes one data-plane interface.
type Interface struct {
	Name    string `json:"name"`
	Index   int    `json:"ifindex"`
	XDPMode string `json:"xdp_mode"` // how the steering program is attached
	Queues  []int  `json:"queues"`   // the queues a worker serves
}

// Worker describes one worker: the queue it polls, its association shard
// and its traffic.
type Worker struct {
	Name         string  `json:"name"` // "interface/queue"
	Interface    string  `json:"interface"`
	Queue        int     `json:"queue"`
	CPU          int     `json:"cpu"`          // -1: not pinned
	Associations int     `json:"associations"` // live in its shard
	Capacity     int     `json:"capacity"`     // most its shard holds
	RxPackets    uint64  `json:"rx_packets"`
	TxPackets    uint64  `json:"tx_packets"`
	RxPPS        float64 `json:"rx_pps"` // over the last sampling interval
	TxPPS        float64 `json:"tx_pps"`
	// Unproven is the associations of its shard that have not proven a
	// connection yet (a TCP handshake's ACK, a second datagram); they may
	// hold at most UnprovenLimit.
	Unproven      int `json:"unproven"`
	UnprovenLimit int `json:"unproven_limit"`
	// TableFull is true while the worker's table_full alarm is raised.
	TableFull bool `json:"table_full"`
}

// Counters is the body of GET /v1/counters: totals over all workers, then
// each server's traffic and each worker's own counters.
type Counters struct {
	RxPackets       uint64            `json:"rx_packets"`
	RxBytes         uint64            `json:"rx_bytes"`
	TxPackets       uint64            `json:"tx_packets"`
	TxBytes         uint64            `json:"tx_bytes"`
	Dropped         uint64            `json:"dropped"` // the sum of Drops
	Drops           map[string]uint64 `json:"drops"`   // by reason, every reason, zero included
	Associations    int               `json:"associations"`
	NewAssociations uint64            `json:"new_associations"`
	Reselected      uint64            `json:"reselected"` // stale associations that chose again
	Expired         uint64            `json:"expired"`    // forgotten after their delete age
	Stateless       uint64            `json:"stateless"`  // forwarded by hash: no room for an association
	ICMPForwarded   uint64            `json:"icmp_forwarded"`
	Defences
	Signalling
	SteeredToXSK   uint64 `json:"steered_to_xsk"`   // by the steering program, to the workers
	PassedToKernel uint64 `json:"passed_to_kernel"` // by the steering program: not for a VIP
	// ShedOpenings counts openings (TCP SYN, SCTP INIT) to a VIP that the
	// steering program dropped while their worker was overloaded.
	ShedOpenings uint64           `json:"shed_openings"`
	Servers      []ServerCounters `json:"servers"`
	Workers      []WorkerCounters `json:"workers"`
}

// ServerCounters is one server's traffic.
type ServerCounters struct {
	Set     string `json:"set"`
	Name    string `json:"name"`
	Address string `json:"address"`
	Weight  uint32 `json:"weight"` // effective
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// WorkerCounters is one worker's share of the totals of [Counters].
type WorkerCounters struct {
	Name            string            `json:"name"` // "interface/queue"
	Interface       string            `json:"interface"`
	Queue           int               `json:"queue"`
	CPU             int               `json:"cpu"` // -1: not pinned
	RxPackets       uint64            `json:"rx_packets"`
	RxBytes         uint64            `json:"rx_bytes"`
	TxPackets       uint64            `json:"tx_packets"`
	TxBytes         uint64            `json:"tx_bytes"`
	Dropped         uint64            `json:"dropped"`
	Drops           map[string]uint64 `json:"drops"`
	Associations    int               `json:"associations"`
	Capacity        int               `json:"capacity"`
	NewAssociations uint64            `json:"new_associations"`
	Reselected      uint64            `json:"reselected"`
	Expired         uint64            `json:"expired"`
	Stateless       uint64            `json:"stateless"`
	ICMPForwarded   uint64            `json:"icmp_forwarded"`
	Defences
	Signalling
}

// Defences are the fast path's counters of its flood and forged-teardown
// defences, part of [Counters] and [WorkerCounters] (their fields appear at
// the top level of those objects). In [Counters] they are totals over all
// workers, the gauges included.
type Defences struct {
	// Unproven is a gauge: associations that have not proven a connection
	// (no TCP ACK after the opening, no second UDP datagram, no SCTP packet
	// with the server's tag yet). They age by the set's syn_age and may
	// hold at most UnprovenLimit (half a shard).
	Unproven      uint64 `json:"unproven"`
	UnprovenLimit uint64 `json:"unproven_limit"`
	// FloodStateless counts openings forwarded by the hash without an
	// association because unproven ones held their limit; they are also
	// counted in Stateless.
	FloodStateless uint64 `json:"flood_stateless"`
	// TeardownIgnored counts TCP FIN or RST segments whose sequence number
	// was far from the client's: forwarded, not taken as a teardown.
	TeardownIgnored uint64 `json:"teardown_ignored"`
	// SCTPTagMismatch counts SCTP teardown chunks without the learned
	// verification tag (or with the T bit): forwarded, not taken as a
	// teardown.
	SCTPTagMismatch uint64 `json:"sctp_tag_mismatch"`
	// PartialChecksum counts new flows whose first packet carried only the
	// pseudo-header checksum (a local sender's checksum offload): the
	// server drops such packets; turn TX checksum offload off on the
	// sender.
	PartialChecksum uint64 `json:"partial_checksum"`
}

// Signalling are the fast path's counters of its telecom signalling
// features, part of [Counters] and [WorkerCounters] (their fields appear at
// the top level of those objects).
type Signalling struct {
	// TagIndexHits counts SCTP packets of a path no association knew that
	// the verification-tag index sent to their association's server (a
	// multihomed peer's other addresses, or either VIP of the set).
	TagIndexHits uint64 `json:"sctp_tag_index_hits"`
	// TagCollisions counts SCTP associations whose verification tag
	// another association of the set had already indexed for another
	// server: their other paths keep their own address keys.
	TagCollisions uint64 `json:"sctp_tag_collisions"`
	// DiameterStale counts connections of diameter = true sets forgotten
	// because they carried nothing but capabilities exchange and
	// disconnect within delete_age.
	DiameterStale uint64 `json:"diameter_stale"`
}

// Sets is the body of GET /v1/sets: the target sets in configuration order.
type Sets struct {
	Sets []Set `json:"sets"`
}

// Set is one target set: its configuration and live association count.
type Set struct {
	Name         string     `json:"name"`
	VIP          netip.Addr `json:"vip"`
	Protocols    []string   `json:"protocols"` // "tcp", "udp", "sctp"
	Ports        []string   `json:"ports"`     // "80" or "33001-33099"
	Method       string     `json:"method"`
	Forwarding   string     `json:"forwarding"`
	DeleteAge    string     `json:"delete_age"` // a Go duration, as in the file
	TableSize    int        `json:"table_size"`
	Servers      int        `json:"servers"`
	Associations int        `json:"associations"`
}

// Servers is the body of GET /v1/servers (?set= keeps one target set's).
type Servers struct {
	// Interval is the length in seconds of the interval PPS and BPS cover;
	// 0 until the sampler has two readings.
	Interval float64       `json:"interval_seconds"`
	Servers  []ServerStats `json:"servers"`
}

// Server is one server as the daemon sees it: configuration, operator state
// and health, and the weight new associations currently see. It is also
// the body of POST /v1/servers/{set}/{server}/drain and /enable: the
// server's state afterwards.
type Server struct {
	Set             string     `json:"set"`
	Name            string     `json:"name"`
	Address         netip.Addr `json:"address"`
	Weight          int        `json:"weight"`           // configured
	EffectiveWeight uint32     `json:"effective_weight"` // after drain, health and balance
	Drained         bool       `json:"drained"`
	Healthy         bool       `json:"healthy"`
	Resolved        bool       `json:"resolved"` // MAC known on every interface
	// OwnedPorts are the set's destination ports that go to this server
	// for every client ("33001-33010"); absent when none.
	OwnedPorts []string `json:"owned_ports,omitempty"`
}

// ServerStats is a server's state with its traffic. The fields of Server
// appear at the top level of its JSON object.
type ServerStats struct {
	Server
	Associations int     `json:"associations"` // live associations made for this server
	Packets      uint64  `json:"packets"`      // forwarded since start
	Bytes        uint64  `json:"bytes"`
	PPS          float64 `json:"pps"`   // packets per second over the last interval
	BPS          float64 `json:"bps"`   // bits per second over the last interval
	Share        float64 `json:"share"` // fraction of its set's packets since start, 0..1
}

// Associations is the body of GET /v1/associations (?set=, ?client=,
// ?server=, ?limit=, ?cursor=). NextCursor, when not empty, fetches the
// next page; pass it back unchanged as ?cursor=. Entries present for the
// whole walk are listed exactly once over the pages.
type Associations struct {
	Associations []Association `json:"associations"`
	NextCursor   string        `json:"next_cursor,omitempty"`
}

// Association is one client flow and the server it is bound to.
type Association struct {
	Worker   string     `json:"worker"` // "interface/queue" of the shard holding it
	Client   netip.Addr `json:"client"`
	Port     uint16     `json:"port"`     // the client's
	Protocol string     `json:"protocol"` // "tcp", "udp", "sctp"
	Set      string     `json:"set"`
	// Server and Address name the server the association was made for;
	// both are empty when that server has left its slot (the flow picks a
	// new server on its next packet).
	Server  string   `json:"server"`
	Address string   `json:"address"`
	Idle    uint32   `json:"idle_seconds"`    // since the flow's last packet
	Flags   []string `json:"flags,omitempty"` // "fin", "rst", "shutdown", "tag"
	// NAT is the translation of a flow of a NAT set, "VIP->server
	// address" (ports are kept); empty for DSR.
	NAT string `json:"nat,omitempty"`
	// SeqOffset is, for a NAT TCP flow whose payload a helper rewrote, the
	// bytes the rewrites added to the server's stream so far.
	SeqOffset int32 `json:"seq_offset,omitempty"`
	// SCTPTag is, for an SCTP association that learned it (flag "tag"),
	// the verification tag its peer sends towards the server.
	SCTPTag uint32 `json:"sctp_tag,omitempty"`
	// TagIndexed tells whether the set's verification-tag index holds
	// SCTPTag, so that the peer's other paths find the server.
	TagIndexed bool `json:"tag_indexed,omitempty"`
	// Paths are the association's paths: every flow record of the set, on
	// any worker, that learned the same tag (this one included), in
	// client address and port order.
	Paths []Path `json:"paths,omitempty"`
}

// Path is one peer address and port of a multihomed SCTP association.
type Path struct {
	Client netip.Addr `json:"client"`
	Port   uint16     `json:"port"`
	Worker string     `json:"worker"`
	// Server is the server this path's record names; a path whose server
	// differs from its association's shows a tag collision or a path made
	// before the tag was indexed.
	Server string `json:"server"`
}

// Alarms is the body of GET /v1/alarms: active alarms first, then cleared
// ones.
type Alarms struct {
	Alarms []Alarm `json:"alarms"`
}

// Alarm kinds ([Alarm].Kind).
const (
	// AlarmBalance is a target set's connection-balance alarm.
	AlarmBalance = "balance"
	// AlarmTableFull is a worker's association-table alarm.
	AlarmTableFull = "table_full"
)

// Alarm is an alarm the daemon raised, of one of two kinds.
//
// A "balance" alarm is a connection-balance alarm of a target set (the
// IPFE's "out of balance"): raised when servers' shares of traffic deviate
// from their weight shares for a sustained period, cleared with hysteresis.
// Set, Deviation and Servers describe it.
//
// A "table_full" alarm is a worker's association shard under pressure:
// raised when, at a sampling interval, unproven associations hold their
// limit, the shard holds its capacity, or flows were forwarded without an
// association; cleared once none of these held for a hold-down period
// (ten seconds). Worker and Table describe it; Set is empty, Servers empty.
type Alarm struct {
	ID        string        `json:"id"`
	Kind      string        `json:"kind"` // AlarmBalance or AlarmTableFull
	Set       string        `json:"set"`
	Active    bool          `json:"active"`
	Raised    time.Time     `json:"raised"`
	Cleared   time.Time     `json:"cleared,omitzero"` // absent while active
	Deviation float64       `json:"deviation"`        // largest |share - weight share| when last evaluated
	Servers   []AlarmServer `json:"servers"`
	Worker    string        `json:"worker,omitempty"` // "interface/queue" of a table_full alarm
	Table     *AlarmTable   `json:"table,omitempty"`  // a table_full alarm's reading
}

// AlarmTable is a worker's association shard as a table_full alarm last
// read it (every sampling interval while the alarm is active).
type AlarmTable struct {
	// Causes names every condition seen since the alarm was raised:
	// "unproven_full" (unproven associations at their limit), "shard_full"
	// (live associations at capacity), "stateless" (flows forwarded
	// without an association during a sampling interval).
	Causes        []string `json:"causes"`
	Associations  int      `json:"associations"`
	Capacity      int      `json:"capacity"`
	Unproven      uint64   `json:"unproven"`
	UnprovenLimit uint64   `json:"unproven_limit"`
	// Stateless and FloodStateless are the flows forwarded without an
	// association during the last sampling interval (FloodStateless: those
	// because unproven associations held their limit).
	Stateless      uint64 `json:"stateless"`
	FloodStateless uint64 `json:"flood_stateless"`
}

// AlarmServer is one server's shares when an alarm was evaluated, each a
// fraction 0..1 of its set's.
type AlarmServer struct {
	Name        string  `json:"name"`
	Address     string  `json:"address"`
	WeightShare float64 `json:"weight_share"`
	PacketShare float64 `json:"packet_share"`
	AssocShare  float64 `json:"association_share"`
}

// ReloadResult is the body of a successful POST /v1/reload. A refused
// configuration is answered 422 with an [Error] listing every problem, a
// change only a restart can apply 409; either way nothing changed.
type ReloadResult struct {
	Generation uint64 `json:"generation"` // of the tables now in force
	// NotApplied names the keys that changed but need a restart to take
	// effect, such as "log.level"; the rest of the file was applied.
	NotApplied []string `json:"not_applied,omitempty"`
}

// Error is the body of every error response. Errors lists every problem of
// a configuration a reload refused, one per line as
// "file:line:column: message".
type Error struct {
	Error  string   `json:"error"`
	Errors []string `json:"errors,omitempty"`
}
