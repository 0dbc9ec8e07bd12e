// Package fastpath owns the per-packet data plane: the AF_XDP workers (one
// pinned OS thread per NIC queue), the Engine that parses a frame, finds its
// target set and association and rewrites it for L2 direct server return,
// the immutable Tables the slow path publishes to the workers by atomic
// pointer swap, and the per-worker counters. Subpackages hold the parts a
// worker is made of: packet (header views), assoc (association shards),
// maglev (consistent hashing), xsk (the AF_XDP socket adapter) and steer (the
// XDP program that sends VIP traffic to the sockets).
//
// Nothing here logs, locks or allocates per packet, and nothing imports the
// slow path: the fast path is reprogrammed, it never asks.
package fastpath
