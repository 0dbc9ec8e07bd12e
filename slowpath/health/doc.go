// Package health probes the servers of target sets and reports when one goes
// down or comes back up.
//
// A Monitor runs one checker goroutine per server, keyed by (set, address).
// A checker probes at its Check's Interval, each probe bounded by Timeout:
//
//   - "tcp": a TCP connection to addr:port is established (then closed);
//   - "http": GET http://addr:port/path answers ExpectStatus; redirects are
//     not followed, keep-alives are off, the body is drained up to 64 KiB;
//   - "none": the server is always up and nothing is sent to it.
//
// When Target.Device is set, probes leave through that interface
// (SO_BINDTODEVICE, Linux only), as the data plane's traffic does.
//
// # Verdicts
//
// A new server starts unknown, which State and the caller treat as up: a
// restart or a reload must not black-hole traffic while the first probes
// run. From then on a server goes down after Fall consecutive failed probes
// and comes up after Rise consecutive successful ones; shorter runs of either
// change nothing, so a flapping server produces no events. The first verdict
// of a new server is always reported, even when it is up.
//
// # Timing
//
// The first probe runs as soon as the checker starts, later ones on a ticker
// (phase fixed at the start, so drift does not accumulate). Probes of one
// server never overlap: a tick that fires while a probe is running is
// skipped, so the next probe starts on the first tick after the slow one
// ends.
//
// Detection bound: with Timeout < Interval, a server that stops answering is
// reported down at most
//
//	Interval*Fall + Timeout
//
// after it failed (plus scheduling latency, usually well under a
// millisecond): the probe that started just before the failure may still
// succeed, the next Fall probes start one Interval apart and the last one
// gives up after at most Timeout. A server that is dead when its checker
// starts is reported down after at most Interval*(Fall-1) + Timeout. With
// Timeout >= Interval, a slow probe makes its successors skip ticks and the
// bound grows to Interval*(⌊Timeout/Interval⌋+1)*Fall + Timeout; configure
// Timeout comfortably below Interval. Recovery is symmetric: at most
// Interval*Rise + Timeout after the server answers again.
//
// # Concurrency
//
// Monitor's methods may be called from any goroutine. onChange is called
// from the checker goroutines, one event at a time per server (events of
// different servers may be concurrent), and must return quickly and never
// wait for the goroutine that calls Update or Close: those wait for checkers
// to stop. Hand events off, for instance through a buffered channel.
package health
