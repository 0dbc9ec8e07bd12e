package v1

// Persistence is the body of GET /v1/persistence (?set=, ?client=): the
// clients that persistence keeps on one server, and the workers' counters
// of persistence and port ownership.
type Persistence struct {
	Counters PersistenceCounters `json:"counters"`
	Records  []PersistenceRecord `json:"records"`
}

// PersistenceRecord is one client (an address, or the prefix persistence
// groups clients by) pinned to one server across the target sets of a
// persistence group. Each worker whose queue carried the client's traffic
// keeps a copy of the record; they are listed once, with the freshest
// copy's age.
type PersistenceRecord struct {
	// Group is the [[persistence_group]]'s name, or the target set's own
	// name for a set with persistence = "client" outside any group; Sets
	// lists the group's target sets.
	Group string   `json:"group"`
	Sets  []string `json:"sets"`
	// Client is the client's address masked to the group's prefix length,
	// in CIDR form: "203.0.113.7/32", "203.0.113.0/24", "2001:db8:7::/64".
	Client string `json:"client"`
	// Server and Address name the server the client is pinned to (the
	// name is the one the first member set listing the address gives it);
	// both are empty when no member holds that address any more (the
	// client's next flow chooses anew).
	Server  string `json:"server"`
	Address string `json:"address"`
	// Age is the time in seconds since the client's last packet in any
	// flow of the group (the freshest copy); ExpiresIn how long the record
	// lives without another.
	Age       uint32 `json:"age_seconds"`
	ExpiresIn uint32 `json:"expires_in_seconds"`
	// Workers is how many workers hold a copy; Flows how many flow
	// associations of the client (its addresses within Client) live in the
	// group's sets.
	Workers int `json:"workers"`
	Flows   int `json:"flows"`
}

// PersistenceCounters are the workers' counters of persistence and port
// ownership since start.
type PersistenceCounters struct {
	// Made counts persistence records written with a new choice: a
	// client's first flow, or one whose server had left or whose record
	// had expired.
	Made uint64 `json:"records_made"`
	// Found counts new associations a live record decided (a client's
	// later flows, on any worker).
	Found uint64 `json:"records_found"`
	// Full counts choices not recorded because the worker's share of
	// max_persistence_records was used up: those clients' flows were
	// balanced one by one.
	Full uint64 `json:"records_full"`
	// Expired counts records forgotten after their timeout (each worker's
	// copy counts).
	Expired uint64 `json:"records_expired"`
	// OwnedPort counts new associations an owned destination port
	// decided.
	OwnedPort uint64 `json:"owned_port"`
}
