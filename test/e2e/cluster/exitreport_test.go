package cluster

import (
	"fmt"
	"strings"
	"testing"
)

func TestExitReport(t *testing.T) {
	short := "level=INFO msg=start\nlevel=ERROR msg=boom\n"
	if got := ExitReport(short); got != strings.TrimRight(short, "\n") {
		t.Errorf("a short log is shown whole, got:\n%s", got)
	}

	// An error early, then more retry lines than the tail holds: the
	// report still names the error.
	var b strings.Builder
	b.WriteString("level=INFO msg=start\n")
	b.WriteString(`level=ERROR msg="start-up failed" err="kine: database locked"` + "\n")
	for i := range 40 {
		fmt.Fprintf(&b, "level=WARN msg=retrying attempt=%d\n", i)
	}
	got := ExitReport(b.String())
	if !strings.Contains(got, "kine: database locked") {
		t.Errorf("the error before the tail is missing:\n%s", got)
	}
	if !strings.HasSuffix(got, "attempt=39") {
		t.Errorf("the report does not end with the log's last line:\n%s", got)
	}
	if strings.Contains(got, "attempt=9\n") || strings.Contains(got, "msg=start\n") {
		t.Errorf("lines before the tail that are not errors are shown:\n%s", got)
	}
}
