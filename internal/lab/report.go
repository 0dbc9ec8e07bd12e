package lab

// The lab's programs (cmd/iplab) print these as JSON with -o json; the demo,
// the end-to-end tests and the benchmarks read them back.

// Greeting is what an iplab server writes first on every TCP connection,
// followed by its name and a newline; UDP replies start with the name and a
// space instead.
const Greeting = "ipfront-lab "

// TCPReport is the result of "iplab tcp".
type TCPReport struct {
	VIP    string `json:"vip"`
	Port   int    `json:"port"`
	Conns  int    `json:"conns"`  // connections attempted
	OK     int    `json:"ok"`     // connections whose every echoed byte was verified
	Failed int    `json:"failed"` // Conns - OK
	// Servers counts connections by the server that greeted them (failed
	// ones included, if they got as far as the greeting).
	Servers             map[string]int `json:"servers"`
	BytesSent           int64          `json:"bytes_sent"`
	BytesVerified       int64          `json:"bytes_verified"`
	DistinctSourcePorts int            `json:"distinct_source_ports"` // among connections that were made
	// DuplicateSourcePorts counts connections made from a source port an
	// earlier connection of the run had used; iplab tcp fails if any.
	DuplicateSourcePorts int `json:"duplicate_source_ports"`
	// Reasons counts failures by stage and kind ("dial: timeout",
	// "echo: mismatch"); Failures details the first few.
	Reasons    map[string]int `json:"failure_reasons,omitempty"`
	Failures   []ConnFailure  `json:"failures,omitempty"`
	DurationMS float64        `json:"duration_ms"`
}

// ConnFailure is one failed TCP connection.
type ConnFailure struct {
	Conn       int    `json:"conn"`
	SourcePort int    `json:"source_port,omitempty"`
	Server     string `json:"server,omitempty"`
	Stage      string `json:"stage"` // dial, greeting, write, echo
	Error      string `json:"error"`
}

// UDPReport is the result of "iplab udp".
type UDPReport struct {
	VIP     string `json:"vip"`
	Port    int    `json:"port"`
	Flows   int    `json:"flows"`
	Packets int    `json:"packets_per_flow"`
	Sent    int    `json:"sent"`
	Replies int    `json:"replies"` // verified replies (name + the datagram)
	Lost    int    `json:"lost"`    // datagrams with no reply in time
	// Mismatched counts replies that did not echo the datagram.
	Mismatched int `json:"mismatched"`
	// Servers counts flows by the server that answered their first reply.
	Servers map[string]int `json:"servers"`
	// MultiServerFlows counts flows answered by more than one server: an
	// association broken. SilentFlows got no reply at all.
	MultiServerFlows    int      `json:"multi_server_flows"`
	SilentFlows         int      `json:"silent_flows"`
	DistinctSourcePorts int      `json:"distinct_source_ports"`
	Errors              []string `json:"errors,omitempty"` // socket errors, first few
	DurationMS          float64  `json:"duration_ms"`
}

// Failed reports whether the UDP run saw any loss, mismatch, broken flow or
// error.
func (r *UDPReport) Failed() bool {
	return r.Lost > 0 || r.Mismatched > 0 || r.MultiServerFlows > 0 || r.SilentFlows > 0 || len(r.Errors) > 0
}
