package etcd

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestRoutineErrorsDemoted(t *testing.T) {
	for _, level := range []zapcore.Level{zapcore.InfoLevel, zapcore.DebugLevel} {
		core, seen := observer.New(level)
		lg := zap.New(routineErrors{core}).With(zap.String("member", "a"))
		closed := &net.OpError{Op: "accept", Net: "tcp", Err: net.ErrClosed}
		lg.Error("setting up serving from embedded etcd failed.", zap.Error(closed))
		lg.Error("setting up serving from embedded etcd failed.", zap.Error(fmt.Errorf("serve: %w", http.ErrServerClosed)))
		lg.Error("rejecting promote learner: learner is not ready", zap.Float64("learner-ready-percent", 0))
		lg.Error("failed to update storage version", zap.Error(errors.New("cannot detect storage schema version: missing term information")))
		lg.Error("failed to update storage version", zap.Error(errors.New("disk full")))

		entries := seen.All()
		errs := 0
		for _, e := range entries {
			if e.Level == zapcore.ErrorLevel {
				errs++
			}
		}
		if errs != 1 {
			t.Errorf("level %v: %d error records, want only the real one: %+v", level, errs, entries)
		}
		want := 1
		if level == zapcore.DebugLevel {
			want = 5 // the routine ones are kept, at debug
		}
		if len(entries) != want {
			t.Errorf("level %v: %d records, want %d", level, len(entries), want)
		}
	}
}

func TestFaultTolerance(t *testing.T) {
	for voting, want := range map[int]int{0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 2, 7: 3} {
		if got := faultTolerance(voting); got != want {
			t.Errorf("faultTolerance(%d) = %d, want %d", voting, got, want)
		}
	}
}
