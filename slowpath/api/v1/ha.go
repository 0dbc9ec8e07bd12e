package v1

import "time"

// HA is GET /v1/ha: association replication to the mates ([ha]).
type HA struct {
	Enabled bool   `json:"enabled"`
	Listen  string `json:"listen,omitempty"`
	// Joined: the instance pulled a mate's associations (or none answered
	// within the join timeout); it is not ready before.
	Joined        bool     `json:"joined"`
	ExportSkipped uint64   `json:"export_skipped"`
	UnknownPeer   uint64   `json:"unknown_peer"`
	Mates         []HAMate `json:"mates"`
}

// HAMate is one mate's replication state and counters.
type HAMate struct {
	Mate             string    `json:"mate"`
	State            string    `json:"state"` // synced, resyncing or silent
	Pulled           bool      `json:"pulled"`
	LastReceived     time.Time `json:"last_received,omitzero"`
	LagSeconds       float64   `json:"lag_seconds"`
	SentMessages     uint64    `json:"sent_messages"`
	SentRecords      uint64    `json:"sent_records"`
	ReceivedMessages uint64    `json:"received_messages"`
	ReceivedRecords  uint64    `json:"received_records"`
	Imported         uint64    `json:"imported"`
	Unresolved       uint64    `json:"unresolved"`
	ImportDropped    uint64    `json:"import_dropped"`
	// Rejected messages by reason: forged, replayed, stale, malformed.
	Rejected         map[string]uint64 `json:"rejected"`
	ResyncsRequested uint64            `json:"resyncs_requested"`
	ResyncsServed    uint64            `json:"resyncs_served"`
	ResyncsCompleted uint64            `json:"resyncs_completed"`
	Lost             uint64            `json:"lost"`
	Retransmits      uint64            `json:"retransmits"`
	NacksSent        uint64            `json:"nacks_sent"`
}
