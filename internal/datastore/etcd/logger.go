package etcd

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/k3ha/k3ha/internal/logging"
)

// serverLogger is the embedded server's logger. A few of etcd's error
// records are routine and would make a healthy start or stop look broken;
// they are demoted to debug so that every error line means something.
func serverLogger() *zap.Logger {
	return logging.Zap("etcd").WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return routineErrors{c}
	}))
}

type routineErrors struct{ zapcore.Core }

func (c routineErrors) With(fields []zapcore.Field) zapcore.Core {
	return routineErrors{c.Core.With(fields)}
}

func (c routineErrors) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	// Added as ourselves, not the wrapped core: Write must see the entry.
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c routineErrors) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if e.Level > zapcore.DebugLevel && routine(e.Message, fields) {
		if !c.Core.Enabled(zapcore.DebugLevel) {
			return nil
		}
		e.Level = zapcore.DebugLevel
	}
	return c.Core.Write(e, fields)
}

func routine(msg string, fields []zapcore.Field) bool {
	// A joining server asks for promotion every second until its learner
	// has caught up; each refusal is logged by the leader.
	if msg == "rejecting promote learner: learner is not ready" {
		return true
	}
	for _, f := range fields {
		err, ok := f.Interface.(error)
		if !ok || f.Type != zapcore.ErrorType {
			continue
		}
		switch {
		// Every listener closed at shutdown is reported as a failed serve.
		case errors.Is(err, net.ErrClosed), errors.Is(err, http.ErrServerClosed):
			return true
		// Stopping a member that never became ready (no quorum).
		case msg == "setting up serving from embedded etcd failed." && err.Error() == "server is stopping":
			return true
		// A member that just joined has no raft term in its backend yet;
		// etcd retries the storage version update later by itself.
		case msg == "failed to update storage version" && strings.Contains(err.Error(), "missing term information"):
			return true
		}
	}
	return false
}
