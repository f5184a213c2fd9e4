package logtest

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCaptureFiltersByLevelAndRestores(t *testing.T) {
	before := slog.Default()
	t.Run("capture", func(t *testing.T) {
		logs := Capture(t, slog.LevelInfo, Never)
		slog.Debug("below the level")
		slog.Info("captured", "k", 1)
		out := logs.String()
		if !strings.Contains(out, "level=INFO msg=captured k=1\n") || strings.Contains(out, "below the level") {
			t.Errorf("captured:\n%s", out)
		}
	})
	if slog.Default() != before {
		t.Error("the default logger was not put back")
	}
}

func TestBufferTakesConcurrentWrites(t *testing.T) {
	logs := Capture(t, slog.LevelDebug, OnFailure)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				slog.Debug("line", "writer", i, "n", j)
				_ = logs.String()
			}
		})
	}
	wg.Wait()
	out := logs.String()
	if n := strings.Count(out, "msg=line"); n != 8*50 {
		t.Errorf("%d lines, want %d", n, 8*50)
	}
	for i := range 8 {
		if !strings.Contains(out, fmt.Sprintf("writer=%d n=49\n", i)) {
			t.Errorf("writer %d's last line missing", i)
		}
	}
}

func TestWaitForSeesLateLines(t *testing.T) {
	var b Buffer
	go func() {
		time.Sleep(100 * time.Millisecond)
		b.Write([]byte("late line\n"))
	}()
	if !b.WaitFor("late line", 5*time.Second) {
		t.Error("WaitFor missed a line written after the call")
	}
	if b.WaitFor("never written", 100*time.Millisecond) {
		t.Error("WaitFor found a line nobody wrote")
	}
}
