package harness

import (
	"testing"
	"time"
)

// pollInterval is how often WaitFor re-evaluates its condition.
const pollInterval = 200 * time.Millisecond

// WaitFor polls cond until it returns true or timeout passes, then fails the
// test with msg and the last error cond returned. Errors from cond do not end
// the wait: they are the usual "not yet" answer of a probe. Use this instead
// of sleeping for a fixed time.
func WaitFor(t testing.TB, timeout time.Duration, msg string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		if err != nil {
			lastErr = err
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			t.Fatalf("timed out after %v waiting for %s; last error: %v", timeout, msg, lastErr)
		}
		time.Sleep(min(pollInterval, remaining))
	}
}
