package config

import (
	"net/netip"
	"strconv"
	"time"
)

// MaxServers is the most servers one target set may hold.
const MaxServers = 16

// Spec is a parsed and validated ipfront configuration. Build one with Load
// or Parse; a Spec built in code should be checked with Validate.
type Spec struct {
	Dataplane Dataplane
	Log       Log
	API       API
	// BGP is the [bgp] table (bgp.go): how the VIPs are announced.
	BGP BGP
	// HA is the [ha] table (ha.go): association replication to mates.
	HA         HA
	TargetSets []TargetSet // in file order
	// PersistenceGroups are the [[persistence_group]] tables (persist.go),
	// in file order.
	PersistenceGroups []PersistenceGroup
	// Warnings are problems that do not stop the configuration from
	// working as written but probably defeat its purpose; Parse and
	// Validate fill it, ipfront check prints it, the daemon logs it.
	Warnings Errors
	// Path is the file name the Spec was read from, as given to Load or
	// Parse; it prefixes error messages.
	Path string
}

// Dataplane is the [dataplane] table: which NIC queues to serve and how the
// AF_XDP sockets are sized.
type Dataplane struct {
	Interfaces      []string // NICs that receive VIP traffic; non-empty, unique
	Queues          []int    // queue ids, or nil for every queue of each interface
	CPUs            []int    // optional pinning, one per worker; nil: no pinning
	XDPMode         XDPMode  // XDPAuto, XDPNative or XDPGeneric
	BusyPoll        bool     // false: idle workers poll(2) or sleep
	BatchSize       int      // packets per batch, 1..1024 and <= RingSize
	MaxAssociations int      // flow table capacity for the whole daemon, >= 1024
	// MaxPersistenceRecords bounds the persistence records (persist.go)
	// of the whole daemon; max_associations / 4 by default.
	MaxPersistenceRecords int
	RingSize              int  // entries in each RX/TX/fill/completion ring; power of two 64..16384
	FrameSize             int  // UMEM frame size: 2048 or 4096
	Frames                int  // UMEM frames per socket; resolved, never 0; power of two >= 2*RingSize
	NeedWakeup            bool // use XDP_USE_NEED_WAKEUP on the sockets
	// ShedOpenings lets the steering program drop openings (TCP SYN,
	// SCTP INIT) to a VIP while a worker's RX ring is nearly full, so the
	// ring keeps room for established connections.
	ShedOpenings bool
	ZeroCopy     string // ZeroCopyAuto, ZeroCopyOn or ZeroCopyOff
	// IdleSpin is how long a worker with BusyPoll false keeps polling
	// after its last packet before it sleeps: 0..1s.
	IdleSpin time.Duration
	// PreferBusyPoll asks the kernel for preferred busy polling on the
	// sockets of workers with BusyPoll false.
	PreferBusyPoll bool
	HugePages      string // HugePagesAuto ("" too), HugePagesOn or HugePagesOff: the UMEM's pages
	// PartialQueues allows Queues to list only some of an interface's RX
	// queues: the operator has made the NIC (RSS indirection table, flow
	// rules) send VIP traffic to those only. Without it CheckHost refuses a
	// subset, whose other queues would hand VIP traffic to the kernel.
	PartialQueues bool
	// HashSeed seeds the fast path's hashes (Maglev selection and the
	// association shards) when HashSeedSet; without it the data plane draws
	// a random seed at each start, so an attacker who knows the source
	// addresses cannot predict where flows land. Mated instances that must
	// choose alike set the same hash_seed (hash.go).
	HashSeed    uint64
	HashSeedSet bool
	// VLANs are the 802.1Q VLAN IDs (1..4094, unique) on which VIP traffic
	// is accepted; nil: none, tagged frames to a VIP are dropped.
	VLANs []uint16
}

// XDPMode selects how the XDP program is attached to an interface.
type XDPMode string

// XDP attach modes.
const (
	XDPAuto    XDPMode = "auto"    // native if the driver supports it, else generic
	XDPNative  XDPMode = "native"  // in the driver; fails if unsupported
	XDPGeneric XDPMode = "generic" // in the kernel stack (skb mode); works everywhere, slower
)

// Values of Dataplane.ZeroCopy.
const (
	ZeroCopyAuto = "auto" // zero-copy if the driver supports it, else copy mode
	ZeroCopyOn   = "on"   // zero-copy or fail
	ZeroCopyOff  = "off"  // always copy mode
)

// Values of Dataplane.HugePages.
const (
	HugePagesAuto = "auto" // hugetlb pages, else transparent huge pages, else normal pages
	HugePagesOn   = "on"   // hugetlb pages (vm.nr_hugepages) or fail
	HugePagesOff  = "off"  // normal pages
)

// Log is the [log] table.
type Log struct {
	Level  string // debug, info, warn or error
	Format string // console or json
}

// API is the [api] table: the control API's listener.
type API struct {
	Listen string // "host:port" with an IP literal or localhost, or "unix:/absolute/path"
	Token  string // bearer token; non-empty unless Listen is loopback or a unix socket
	PProf  bool   // serve net/http/pprof on the API listener

	// TLSCert and TLSKey are PEM files (absolute paths) of the certificate
	// chain and private key the API serves TLS with: both or neither, TCP
	// listeners only, required on a listener reachable from other hosts so
	// the token never travels in clear.
	TLSCert string
	TLSKey  string
}

// Proto is an IP protocol number (IANA), so the fast path can compare it
// with the packet's protocol field directly.
type Proto uint8

// Protocols a target set can balance.
const (
	ProtoTCP  Proto = 6
	ProtoUDP  Proto = 17
	ProtoSCTP Proto = 132
)

// String returns the protocol's configuration name ("tcp"), or its number.
func (p Proto) String() string {
	switch p {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	case ProtoSCTP:
		return "sctp"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

// PortRange is an inclusive range of ports; "*" in the file is {1, 65535}.
type PortRange struct {
	First, Last uint16
}

// allPorts is what "*" stands for.
var allPorts = PortRange{First: 1, Last: 65535}

// Contains reports whether port is in r.
func (r PortRange) Contains(port uint16) bool {
	return r.First <= port && port <= r.Last
}

// String formats r as it is written in the file: "80", "8000-8099" or "*".
func (r PortRange) String() string {
	switch {
	case r == allPorts:
		return "*"
	case r.First == r.Last:
		return strconv.Itoa(int(r.First))
	}
	return strconv.Itoa(int(r.First)) + "-" + strconv.Itoa(int(r.Last))
}

// overlap returns the ports r and o have in common, if any.
func (r PortRange) overlap(o PortRange) (PortRange, bool) {
	c := PortRange{First: max(r.First, o.First), Last: min(r.Last, o.Last)}
	return c, c.First <= c.Last
}

// TargetSet is one [[target_set]]: a VIP, the traffic it accepts, and the
// servers that traffic is spread over.
type TargetSet struct {
	Name       string      // unique, [a-z0-9_-]{1,32}
	Address    netip.Addr  // the VIP
	Protocols  []Proto     // non-empty, unique
	Ports      []PortRange // non-empty, non-overlapping, in file order
	Method     string      // MethodHash, MethodLeastLoad or MethodPeerAware
	Forwarding string      // ForwardDSR, ForwardNAT, ForwardIPIP or ForwardGUE
	// EncapSources are an encapsulating set's outer source prefixes, one
	// IPv4 and one IPv6 at most, one for each family of its servers
	// (encap.go); GUEPort is forwarding = "gue"'s UDP destination port;
	// EncapMTU the largest outer packet towards the servers. Zero values
	// on other sets.
	EncapSources []netip.Prefix
	GUEPort      int
	EncapMTU     int
	// Helper is the application helper of a NAT set: HelperFTP, or ""
	// for none.
	Helper string
	// ExpectTimeout is how long a data connection the helper announced
	// waits to be opened (helper.go); 0 without a helper.
	ExpectTimeout time.Duration
	// PassivePorts are the servers' passive data ports (vsftpd's
	// pasv_min_port..pasv_max_port), whose traffic back to clients ipfront
	// must see; nil without a helper.
	PassivePorts []PortRange
	DeleteAge    time.Duration // idle time before an association is forgotten, >= 1s
	// SynAge is how long an association that has not proven a handshake
	// yet (TCP: before the client's ACK that follows its SYN) is kept
	// idle: >= 1s and < DeleteAge (1s when DeleteAge is under 2s). It
	// defaults to DefaultSynAge, or half of DeleteAge when that is
	// shorter (syn_age.go).
	SynAge    time.Duration
	TableSize int      // Maglev lookup table size: a prime in 251..1000003
	Servers   []Server // 1..MaxServers, unique addresses, same IP version as the VIP
	// OnServerFailure is what happens to the associations of a server that
	// fails: FailureReselect or FailureKeep.
	OnServerFailure string
	Health          Health
	// PeerGroups is non-empty exactly when Method is MethodPeerAware.
	PeerGroups []PeerGroup
	Balance    Balance
	// Persistence keeps each client on one server across all its flows
	// (persist.go); nil without persistence = "client" and outside every
	// [[persistence_group]].
	Persistence *Persistence
	// SecondaryAddress is the set's second VIP (secondary_address), of the
	// VIP's IP version; invalid when not set (signalling.go).
	SecondaryAddress netip.Addr
	// Diameter makes connections that carried only Diameter capabilities
	// exchange and disconnect stale after delete_age (signalling.go).
	Diameter bool
	// Mode is ModeResponder, ModeInitiator or ModeInitiatorResponder; ""
	// (the key left out) is ModeResponder.
	Mode string
}

// Values of TargetSet.Method: how a new association picks its server.
const (
	MethodHash      = "hash"                  // Maglev consistent hashing of the client
	MethodLeastLoad = "least_load"            // the server with the fewest associations for its weight
	MethodPeerAware = "peer_aware_least_load" // least_load within each peer group
)

// Values of TargetSet.Forwarding: how frames reach the chosen server.
const (
	ForwardDSR = "dsr" // L2 direct server return: servers hold the VIP and answer clients directly
	ForwardNAT = "nat" // address translation both ways: servers route their replies through ipfront
	// ForwardIPIP encapsulates in IP (4in4, 6in4, 4in6, 6in6) to servers
	// on any routed subnet, which decapsulate and answer directly.
	ForwardIPIP = "ipip"
	// ForwardGUE encapsulates in GUE (UDP) to servers on any routed
	// subnet, which decapsulate and answer directly.
	ForwardGUE = "gue"
)

// Values of TargetSet.Helper.
const (
	HelperFTP = "ftp" // FTP control connections: PORT/EPRT/227/229 and their data connections
)

// Values of TargetSet.OnServerFailure.
const (
	FailureReselect = "reselect" // the associations move to another server on their next packet
	FailureKeep     = "keep"     // the associations stay on the server until they age out
)

// Values of Health.Type.
const (
	HealthTCP  = "tcp"  // a TCP connection to the port must succeed
	HealthHTTP = "http" // an HTTP GET of the path must answer the expected status
	HealthNone = "none" // no checks: servers are always up
)

// Health is [target_set.health]: how the servers of a set are checked.
// Without the table the defaults apply, except that a set whose first port
// range is "*" has no port to default to, and a set without TCP may have
// servers that accept no TCP at all: neither is checked (HealthNone).
type Health struct {
	Type string // HealthTCP, HealthHTTP or HealthNone
	// Port is the port checked on each server: 1..65535, or 0 with
	// HealthNone. It defaults to the first port of the set's first range.
	Port         uint16
	Path         string        // request path, starting with '/'; "" unless Type is HealthHTTP
	ExpectStatus int           // status a healthy server answers, 100..599; 0 unless Type is HealthHTTP
	Interval     time.Duration // time from one check to the next, >= 100ms
	Timeout      time.Duration // how long a check may take: > 0 and < Interval
	Rise         int           // checks passed in a row that mark a server up, 1..100
	Fall         int           // checks failed in a row that mark a server down, 1..100
}

// PeerGroup is one [[target_set.peer_group]]: the clients (peers) whose
// source address is in Prefixes. MethodPeerAware balances each group's
// associations over the servers separately.
type PeerGroup struct {
	Name string // unique within the set, [a-z0-9_-]{1,32}
	// Prefixes is non-empty; each prefix is masked ("198.51.100.0/28", not
	// "198.51.100.1/28"), of the VIP's IP version and in one group of the
	// set only.
	Prefixes []netip.Prefix
}

// Balance is [target_set.balance]: when the associations of a set count as
// out of balance (IPFE "Connection Balancing"), for the alarm raised then.
type Balance struct {
	Enabled bool // raise and clear the alarm
	// Threshold is the deviation of a server's share of the associations
	// from its share of the weight that counts as out of balance:
	// 0 < Threshold < 1.
	Threshold float64
	// Clear is the deviation below which a raised alarm clears:
	// 0 <= Clear < Threshold.
	Clear   float64
	Window  time.Duration // measurement window, >= 1s
	Sustain time.Duration // how long the deviation must last before the alarm is raised, >= 0
}

// Matches reports whether a packet of IP protocol proto to destination port
// port belongs to ts. The VIP address is not compared.
func (ts *TargetSet) Matches(proto uint8, port uint16) bool {
	for _, p := range ts.Protocols {
		if uint8(p) != proto {
			continue
		}
		for _, r := range ts.Ports {
			if r.Contains(port) {
				return true
			}
		}
		return false
	}
	return false
}

// Server is one [[target_set.server]].
type Server struct {
	Name    string     // label; the address when not set
	Address netip.Addr // same IP version as the VIP
	Weight  int        // 0..1000; 0 drains the server (no new associations)
	// OwnedPorts are destination port ranges of the set that go to this
	// server for every client (persist.go); nil when none.
	OwnedPorts []PortRange
}
