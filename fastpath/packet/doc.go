// Package packet owns the fast path's view of the wire: typed, allocation-free
// views over frame bytes (Ethernet, IPv4, IPv6, TCP, UDP, SCTP, ICMPv4,
// ICMPv6), the single-pass Parse that turns a received frame into the Flow the
// forwarder keys its tables on, the Internet and SCTP checksums including the
// incremental updates NAT needs, and Encode, which builds well-formed frames for
// tests, benchmarks and the packet generator.
//
// The views follow one rule: validate once, then read freely. Parse checks
// every length it relies on, so once it returns OK the views at Flow.L3Off and
// Flow.L4Off may be used without further checks. The view methods themselves
// do not check lengths; on a slice shorter than the fixed header they panic
// like any out-of-range slice index. Parse never panics and never allocates,
// whatever the input.
//
// Nothing in the package holds state: each worker calls it concurrently on
// its own frames with its own Flow.
package packet
