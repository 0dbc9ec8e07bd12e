package v1

import "net/netip"

// Expectations is the body of GET /v1/expectations (?set=): the data
// connections the FTP helper announced that are still waiting to be opened,
// and the helper's counters.
type Expectations struct {
	Helper       HelperCounters `json:"helper"`
	Expectations []Expectation  `json:"expectations"`
}

// Expectation is one data connection a control connection announced and
// ipfront lets through until it expires: "passive", the client connects
// from any port to VIP:Port and reaches the server at Port; "active", the
// server connects from port 20 to the client's Port and leaves ipfront from
// VIP:20.
type Expectation struct {
	Worker    string     `json:"worker"` // "interface/queue" of the shard holding it
	Set       string     `json:"set"`
	Mode      string     `json:"mode"` // "passive" or "active"
	Client    netip.Addr `json:"client"`
	Port      uint16     `json:"port"`    // passive: the VIP's (and server's) port; active: the client's
	Server    string     `json:"server"`  // empty when the server has left its slot
	Address   string     `json:"address"` // the server's address, idem
	Age       uint32     `json:"age_seconds"`
	ExpiresIn uint32     `json:"expires_in_seconds"`
}

// HelperCounters are the FTP helper's counters since start.
type HelperCounters struct {
	// Commands counts the lines accepted, by verb: "PORT", "EPRT" (client),
	// "227", "229" (server).
	Commands map[string]uint64 `json:"commands"`
	// Rewrites counts 227 replies whose server address became the VIP's.
	Rewrites uint64 `json:"rewrites"`
	// ExpectationsInstalled counts expectations sent to the workers;
	// ExpectationsUsed the data connections they admitted (counted by the
	// workers per SYN, so a retransmitted SYN counts again);
	// ExpectationsExpired those whose expect_timeout passed
	// (used or not: one expectation may admit several connections until
	// then). Expectations is how many wait now.
	ExpectationsInstalled uint64 `json:"expectations_installed"`
	ExpectationsUsed      uint64 `json:"expectations_used"`
	ExpectationsExpired   uint64 `json:"expectations_expired"`
	Expectations          uint64 `json:"expectations"`
	// Refused counts refused lines by reason: "bounce" (PORT or EPRT
	// naming another address than the client's), "low_port",
	// "malformed", "family", "overlong", "stalled" (a held line whose rest
	// never came).
	Refused map[string]uint64 `json:"refused"`
	// Dropped counts control segments the helper did not pass on, by
	// reason: "bad_checksum", "gap" (beyond a hole: the sender
	// retransmits), "too_old" (a retransmission older than the kept
	// history).
	Dropped map[string]uint64 `json:"dropped"`
	// Resyncs counts control connections whose sequence numbers jumped (a
	// new connection on the same ports) and whose state started over.
	Resyncs uint64 `json:"resyncs"`
	// Unparsed counts segments passed on without parsing: no flow record
	// names their server, or too many connections are followed.
	Unparsed uint64 `json:"unparsed"`
	// Connections is the number of control connections followed now.
	Connections uint64 `json:"connections"`
	// Punted counts segments the workers handed to the helper, Injected
	// those it handed back. PuntRingFull counts segments the workers
	// dropped because the helper's ring was full; InjectOverflow and
	// ControlOverflow what the inject and control rings refused to the
	// helper (a segment or an expectation lost).
	Punted          uint64 `json:"punted"`
	Injected        uint64 `json:"injected"`
	PuntRingFull    uint64 `json:"punt_ring_full"`
	InjectOverflow  uint64 `json:"inject_overflow"`
	ControlOverflow uint64 `json:"control_overflow"`
}
