// Package ring owns the bounded, lock-free hand-off queues between a fast-path
// worker and the slow path: the punt ring (worker -> slow path, copies of
// frames), the inject ring (slow path -> worker, frames to transmit) and the
// control ring (slow path -> worker, records for the worker's association
// shard). It holds the queues only; what travels on them is defined by the
// packages that use them.
//
// # Shape
//
// Every ring is an array of power-of-two size indexed by two free-running
// uint32 counters, slot = index & mask (the model is gVisor's pkg/xdp and
// the AF_XDP rings of fastpath/xsk). Each side keeps a private cached copy of
// the other side's index and touches the shared words only with sync/atomic:
// an atomic load when its cached view runs dry (refresh) and an atomic store
// when it hands entries over (commit). Producer and consumer words live on
// different cache lines so the two sides do not bounce one line between
// cores.
//
//   - SPSC is a ring of fixed-size values with one producer and one consumer.
//   - MPSC is an SPSC whose producers, any number of slow-path goroutines,
//     are serialised by a mutex only they take; the consumer stays lock-free.
//     This is the control ring. Per-ring order is the order producers got
//     the mutex.
//   - Frames is a ring of preallocated fixed-size buffers: a push copies a
//     frame and a small Meta into the next buffer, so it never allocates and
//     the producer's own buffer (a UMEM frame) can be reused at once; the
//     consumer peeks at the oldest buffer in place and releases it. This is
//     the punt ring. MPFrames is its mutex-serialised many-producer form,
//     the inject ring.
//
// # Bounded, never blocking
//
// No push ever waits: a full ring refuses (TryPush and Put return false) and
// counts the refusal (Overflows), and the caller decides what a refusal means
// (the worker counts a named drop; a slow-path sender learns it from the
// false). Pops on an empty ring return at once too.
//
// # Waking a slow-path consumer
//
// A worker busy-polls its inbound rings once per loop iteration, so those
// need no notification. A slow-path consumer must not spin a core, so every
// ring also carries an eventcount: Wait blocks the consumer on a channel of
// capacity one after announcing that it sleeps (an atomic flag) and checking
// the ring once more; a producer's commit (Flush, or TryPush, which commits
// at once) does a non-blocking send on that channel only when the flag is
// set. The flag and the producer index are both sequentially consistent
// atomics, so either the consumer's re-check sees the new entry or the
// producer sees the flag: no wake-up is lost. This was chosen over a polling
// interval because a punted frame (an FTP command, say) should reach the
// slow path in microseconds, not after a tick, and over signalling on every
// commit because a channel send takes the channel's lock and may wake a
// thread: here a worker pays it at most once per batch and only while the
// consumer sleeps, and a send to a channel that already holds a token is a
// lock-free check.
//
// # Concurrency contract
//
// SPSC and Frames: exactly one producer goroutine calls TryPush, Put and
// Flush; exactly one consumer goroutine calls TryPop, PopBatch, Peek, Release
// and Wait. MPSC and MPFrames: any goroutine may call TryPush; one consumer
// goroutine calls the consumer methods. Len, Cap and the counters are safe
// from any goroutine.
package ring
