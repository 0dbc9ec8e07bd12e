package netnstest

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	calls := 0
	err := Poll(time.Minute, func() error {
		if calls++; calls < 5 {
			return fmt.Errorf("%d calls", calls)
		}
		return nil
	})
	if err != nil || calls != 5 {
		t.Errorf("Poll(true on the 5th call) = %v after %d calls, want nil after 5", err, calls)
	}

	// A condition that never holds: the last error comes back, once the
	// deadline has passed (and not before, or the poll gave up early).
	calls = 0
	start := time.Now()
	err = Poll(20*time.Millisecond, func() error { calls++; return fmt.Errorf("seen %d", calls) })
	if want := fmt.Sprintf("seen %d", calls); err == nil || err.Error() != want {
		t.Errorf("Poll(never) = %v, want the last error %q", err, want)
	}
	if waited := time.Since(start); waited < 20*time.Millisecond {
		t.Errorf("Poll(never) gave up after %v, before its 20ms deadline", waited)
	}
	if calls < 2 {
		t.Errorf("Poll(never) checked %d times, want several", calls)
	}
}

func TestWaitForFailsWithTheCondition(t *testing.T) {
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { recover() }()
		WaitFor(ft, time.Millisecond, "frames counted", func() error { return errors.New("3 of 50") })
	}()
	if want := "frames counted: not within 1ms: 3 of 50"; ft.msg != want {
		t.Errorf("WaitFor failure = %q, want %q", ft.msg, want)
	}
}

// fatalRecorder records Fatalf instead of failing the test, and stops the
// caller like Fatalf does (by panicking, recovered by the test).
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f.msg)
}

func (f *fatalRecorder) Helper() {}
