package netnstest

import (
	"testing"
	"time"
)

// WaitFor waits until cond returns nil: the kernel has done what the test is
// waiting for (a counter reached a value, a neighbour entry settled, frames
// completed). It checks at once, then again with a back-off from 100 µs to
// 10 ms, so it returns as soon as the event is visible; a condition that
// does not hold within the deadline fails tb with what and cond's last
// error, which should say what was seen ("3 of 50 frames counted").
//
// within bounds only a failure: it is never part of what a test asserts.
func WaitFor(tb testing.TB, within time.Duration, what string, cond func() error) {
	tb.Helper()
	if err := Poll(within, cond); err != nil {
		tb.Fatalf("%s: not within %v: %v", what, within, err)
	}
}

// Poll is WaitFor without the test: it returns nil once cond does, or
// cond's last error when within has passed.
func Poll(within time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	delay := 100 * time.Microsecond
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(delay)
		delay = min(2*delay, 10*time.Millisecond)
	}
}
