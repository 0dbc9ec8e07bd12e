package assoc

import "time"

// The association clock counts whole seconds in 22 bits (48 days) from
// process start. Delete ages are whole seconds too, and a seconds clock lets an
// entry record its last packet in its meta word next to its state.

// ClockMask is the range of clock readings: Now and LastSeen values are
// below it.
const ClockMask = seenMask

// MaxAge is the longest delete age the clock can represent unambiguously.
const MaxAge = seenMask / 2

// epoch is shared by every shard so that readings from different workers
// compare directly.
var epoch = time.Now()

// Now returns the current clock reading. It reads the monotonic clock through
// the vDSO, no syscall; workers call it once per batch.
func Now() uint32 { return Seconds(time.Since(epoch)) }

// Elapsed returns the time since the clock's epoch: Seconds(Elapsed()) is
// Now(). A worker reads it once per loop iteration and derives both the
// association clock and its busy/idle accounting from the one reading.
func Elapsed() time.Duration { return time.Since(epoch) }

// Seconds converts a duration since the epoch to a clock reading.
func Seconds(d time.Duration) uint32 { return uint32(d/time.Second) & seenMask }

// Age is how many seconds lie between clock readings then and now, allowing
// for wrap-around.
func Age(now, then uint32) uint32 { return (now - then) & seenMask }
