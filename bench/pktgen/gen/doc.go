// Package gen is the engine of bench/pktgen, ipfront's AF_XDP packet
// generator, usable in-process by the benchmark harness: Config says what to
// send, BuildFrame builds one flow's frame (the reference, for tests), Filler
// turns pre-built frames into successive flows' frames, and Generator (New,
// Run) transmits them through a fastpath/xsk socket.
//
// # Flows
//
// A flow is a (client address, client port) pair. With K = SrcCount client
// addresses and P = SportCount client ports there are K*P flows, and flow i
// is
//
//	address = Src + i / P   (integer addition: 198.51.100.255 + 1 = 198.51.101.0)
//	port    = SportFirst + i % P
//
// Seq order sends flow 0, 1, ..., K*P-1, 0, ...; Random order sends a
// permutation of the flows fixed by Seed (Permutation), the same one every
// cycle, so in both orders every flow is sent exactly once per K*P packets.
//
// # Why frames are patched in place
//
// Nothing is encoded per packet. New writes the template (flow 0's frame,
// from BuildFrame) once into every UMEM frame the socket can hand out for TX;
// the kernel never writes TX frames, so a frame that comes back through the
// completion ring still holds a complete frame of some flow. Per packet, Fill
// rewrites only what differs between flows: the source address (4 or 16
// bytes), the source port and the checksums: 10 to 22 bytes within the
// frame's first 72. The checksums are not updated incrementally from the
// frame's previous flow (which would make a frame's content depend on its
// history) but computed from sums precomputed per address and per port: the
// IPv4 header checksum is a table lookup, the TCP/UDP checksum the fold of
// (template sum without address and port) + address words + port, and the
// SCTP CRC32c, which covers the ports but no pseudo-header, a table lookup
// per port. Memory is O(addresses + ports), not O(flows).
//
// The alternative, a pool of pre-encoded frames with one copied into each TX
// frame, is cheaper per packet only in its best case and costs O(flows *
// Size) memory. BenchmarkFill, frames rotating through 8 MB of UMEM-like
// buffers as TX frames do (2-vCPU lab VM, noisy):
//
//	                                   patch      copy-pool
//	64 B, 1K or 64K flows, seq        ~9.5 ns       ~6.6 ns
//	1500 B, 1K / 64K flows, seq       ~9.7 ns     40 / 90-160 ns
//	64 B, 1M flows, random             ~11 ns      36-68 ns (64 MB pool)
//
// So patching is chosen: about 3 ns slower than the copy where the copy is
// at its best (small frames, a pool that fits the cache), 4 to 15 times
// faster everywhere else, and the same cost for every size, flow count and
// order. Both are small against the kernel's work per frame (about 1.3 µs
// in veth copy mode, 760 kpps on one core); the choice matters for
// zero-copy NICs and for the CPU left to the system under test when both
// share a machine.
//
// # Concurrency
//
// One Generator drives one socket on one queue, from one goroutine at a time.
// To load several queues, run one Generator per queue, each in its own
// goroutine (each New called on a thread in the interface's namespace).
package gen
