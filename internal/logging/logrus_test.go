package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

func TestLogrusLevel(t *testing.T) {
	for _, c := range []struct {
		min  slog.Level
		want logrus.Level
	}{
		{slog.LevelError, logrus.ErrorLevel},
		{slog.LevelWarn, logrus.WarnLevel},
		{slog.LevelInfo, logrus.InfoLevel},
		{slog.LevelDebug, logrus.TraceLevel},
		{slog.Level(-8), logrus.TraceLevel},
	} {
		if got := logrusLevel(c.min); got != c.want {
			t.Errorf("logrusLevel(%v) = %v, want %v", c.min, got, c.want)
		}
	}
}

// Without debug, kine's trace and debug records must not even be formatted:
// a Stringer argument that is never called proves it.
func TestLogrusSkipsHiddenRecords(t *testing.T) {
	var buf bytes.Buffer
	Setup(&buf, Options{})
	var formatted int
	q := stringer(func() string { formatted++; return "SELECT 1" })
	logrus.Tracef("QUERY %s", q)
	logrus.Debugf("QUERY %s", q)
	logrus.Infof("QUERY %s", q)
	if formatted != 0 {
		t.Errorf("hidden records were formatted %d times", formatted)
	}
	logrus.Errorf("compact failed: %s", q)
	if formatted != 1 || !strings.Contains(buf.String(), `msg="compact failed: SELECT 1"`) || !strings.Contains(buf.String(), "logger=kine") {
		t.Errorf("error record not forwarded once (formatted %d):\n%s", formatted, buf.String())
	}

	buf.Reset()
	Setup(&buf, Options{Debug: true, Verbosity: 4})
	logrus.Tracef("QUERY %s", q)
	if !strings.Contains(buf.String(), `msg="QUERY SELECT 1"`) {
		t.Errorf("debug mode with verbosity lost kine's trace record:\n%s", buf.String())
	}
}

type stringer func() string

func (s stringer) String() string { return s() }
