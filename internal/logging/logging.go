// Package logging sets up the one log stream of a k3ha process: k3ha's own
// records and those of the embedded libraries (klog, logrus, zap) all go
// through one slog handler, one line per event.
package logging

import (
	"context"
	"io"
	"log/slog"

	"github.com/go-logr/logr"
	"github.com/sirupsen/logrus"
	"k8s.io/klog/v2"
)

// Options decide how much of the embedded components' chatter is shown.
type Options struct {
	// Debug shows the libraries' info records too; without it only their
	// errors reach the log, so k3ha's own phase lines stay readable.
	Debug bool
	// Verbosity raises the klog V-level shown in debug mode.
	Verbosity int
}

// Setup installs the process-wide logger and returns it.
func Setup(w io.Writer, opts Options) *slog.Logger {
	base := slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.Level(-opts.Verbosity) - 1})
	root := slog.New(levelFilter{Handler: base, min: slog.LevelInfo})
	slog.SetDefault(root)

	libMin := slog.LevelError
	if opts.Debug {
		libMin = slog.Level(-opts.Verbosity)
	}
	zapMin := slog.LevelError
	if opts.Debug {
		// etcd's debug level is a firehose (every raft message); info is enough.
		zapMin = slog.LevelInfo
	}
	zapTarget.Store(&zapSink{base: base, min: zapMin})
	klog.SetLoggerWithOptions(logr.FromSlogHandler(Library(base, "kube", libMin)), klog.ContextualLogger(true))

	logrus.SetOutput(io.Discard)
	logrus.SetLevel(logrusLevel(libMin))
	logrus.AddHook(logrusHook{logger: slog.New(Library(base, "kine", libMin))})
	return root
}

// Library returns a handler for a library's records: tagged with its name and
// filtered at min.
func Library(base slog.Handler, name string, min slog.Level) slog.Handler {
	return levelFilter{Handler: base.WithAttrs([]slog.Attr{slog.String("logger", name)}), min: min}
}

type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (f levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= f.min && f.Handler.Enabled(ctx, l)
}

func (f levelFilter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFilter{Handler: f.Handler.WithAttrs(attrs), min: f.min}
}

func (f levelFilter) WithGroup(name string) slog.Handler {
	return levelFilter{Handler: f.Handler.WithGroup(name), min: f.min}
}

// logrusLevel is logrus's own level for a slog minimum. Logrus formats a
// record's message before any hook sees it, and kine traces every SQL query
// with its arguments filled in; a level that lets those through only for the
// hook to drop them costs an allocation-heavy format per query.
func logrusLevel(min slog.Level) logrus.Level {
	switch {
	case min <= slog.LevelDebug:
		return logrus.TraceLevel
	case min <= slog.LevelInfo:
		return logrus.InfoLevel
	case min <= slog.LevelWarn:
		return logrus.WarnLevel
	default:
		return logrus.ErrorLevel
	}
}

// logrusHook forwards kine's logrus records.
type logrusHook struct{ logger *slog.Logger }

func (logrusHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h logrusHook) Fire(e *logrus.Entry) error {
	level := slog.LevelInfo
	switch {
	case e.Level <= logrus.ErrorLevel:
		level = slog.LevelError
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	case e.Level >= logrus.DebugLevel:
		level = slog.LevelDebug
	}
	if !h.logger.Enabled(context.Background(), level) {
		return nil
	}
	attrs := make([]any, 0, 2*len(e.Data))
	for k, v := range e.Data {
		attrs = append(attrs, k, v)
	}
	h.logger.Log(context.Background(), level, e.Message, attrs...)
	return nil
}
