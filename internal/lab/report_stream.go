package lab

import "time"

// Reports of the long-running clients, "iplab hold" and "iplab load". With
// -o json each prints JSON values on stdout, one a line: one with Phase
// PhaseReady once its connections are made (or failed), one with Phase
// PhaseFinal after it was stopped (SIGTERM, SIGINT or --duration) and closed
// them, and from hold one with PhaseSnapshot at every SIGUSR1 in between. A
// test reads the first to learn where its connections went, changes
// something, then stops the client and reads the last.

// Phases of a hold or load report.
const (
	PhaseReady = "ready" // every connection made or failed; traffic flowing
	PhaseFinal = "final" // stopped; every connection closed
	// PhaseSnapshot is a report "iplab hold" prints when it receives
	// SIGUSR1, while its connections run.
	PhaseSnapshot = "snapshot"
)

// Kinds of failure of a long-lived connection (HoldConn.Kind, LoadReport.Kind).
const (
	FailReset    = "reset"    // the peer reset the connection (RST: ECONNRESET, EPIPE)
	FailEOF      = "eof"      // the peer closed the connection (FIN) before the client did
	FailTimeout  = "timeout"  // no (complete) echo within the timeout, or the dial timed out
	FailMismatch = "mismatch" // the echo differed from what was sent
	FailRefused  = "refused"  // the dial was refused (RST to the SYN)
	FailOther    = "other"    // anything else; Error says what
)

// HoldReport is the result of "iplab hold": long-lived TCP connections,
// each echoing a message every interval until the client is stopped.
type HoldReport struct {
	Phase      string         `json:"phase"`
	VIP        string         `json:"vip"`
	Port       int            `json:"port"`
	Conns      int            `json:"conns"`       // connections attempted
	IntervalMS float64        `json:"interval_ms"` // between one connection's messages
	Bytes      int            `json:"bytes"`       // per message
	Connected  int            `json:"connected"`   // connections that were greeted by a server
	Failed     int            `json:"failed"`      // connections that failed, at any stage, so far
	Servers    map[string]int `json:"servers"`     // greeted connections by server
	Started    time.Time      `json:"started"`
	Stopped    time.Time      `json:"stopped,omitzero"` // final report only: when stopping began
	// Connections has one entry per connection, in order (Conn is the
	// index).
	Connections []HoldConn `json:"connections"`
}

// HoldConn is one connection of "iplab hold".
type HoldConn struct {
	Conn          int       `json:"conn"`
	SourcePort    int       `json:"source_port,omitempty"`
	Server        string    `json:"server,omitempty"` // from the greeting
	Messages      int64     `json:"messages"`         // echoes verified
	BytesVerified int64     `json:"bytes_verified"`
	Connected     time.Time `json:"connected,omitzero"` // greeting received
	LastEcho      time.Time `json:"last_echo,omitzero"` // last echo verified
	FailedAt      time.Time `json:"failed_at,omitzero"` // zero unless failed
	Stage         string    `json:"stage,omitempty"`    // of the failure: dial, greeting, write, echo, close
	Kind          string    `json:"kind,omitempty"`     // of the failure: Fail*
	Error         string    `json:"error,omitempty"`    // of the failure, as the system said it
}

// LoadReport is the result of "iplab load": one TCP connection sending as
// fast as it may (or at --rate) while checking every echoed byte.
type LoadReport struct {
	Phase         string    `json:"phase"`
	VIP           string    `json:"vip"`
	Port          int       `json:"port"`
	SourcePort    int       `json:"source_port,omitempty"`
	Server        string    `json:"server,omitempty"` // from the greeting
	RateLimit     int64     `json:"rate_limit"`       // bytes per second; 0: none
	BytesSent     int64     `json:"bytes_sent"`
	BytesVerified int64     `json:"bytes_verified"`
	Started       time.Time `json:"started"`
	DurationMS    float64   `json:"duration_ms"` // from the greeting to the report
	FailedAt      time.Time `json:"failed_at,omitzero"`
	Stage         string    `json:"stage,omitempty"` // of the failure: dial, greeting, write, echo, close
	Kind          string    `json:"kind,omitempty"`
	Error         string    `json:"error,omitempty"`
}
