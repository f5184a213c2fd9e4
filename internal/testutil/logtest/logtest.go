// Package logtest lets a test read what the code under test logs through
// slog's default logger.
//
// Only tests may import it: Capture replaces slog's process-wide default
// logger, which production code must never do behind the user's back.
package logtest

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Buffer collects log text. The code under test may write to it from
// several goroutines while the test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p; it never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor reports whether substr was logged within timeout: lines from
// background goroutines arrive after the call that caused them returns.
func (b *Buffer) WaitFor(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(b.String(), substr) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Show says when Capture copies the captured log into the test's output.
type Show int

const (
	// Never keeps the captured log out of the test's output.
	Never Show = iota
	// OnFailure copies it when the test failed.
	OnFailure
	// OnFailureOrVerbose copies it when the test failed or go test ran
	// with -v.
	OnFailureOrVerbose
)

// Capture sends slog's default logger, as a text handler at level, into a
// new Buffer for the rest of the test. The test's cleanup puts the previous
// default logger back and then, as show says, logs what was captured.
func Capture(t testing.TB, level slog.Level, show Show) *Buffer {
	t.Helper()
	buf := &Buffer{}
	old := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level})))
	t.Cleanup(func() {
		slog.SetDefault(old)
		if show == OnFailure && t.Failed() || show == OnFailureOrVerbose && (t.Failed() || testing.Verbose()) {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return buf
}
