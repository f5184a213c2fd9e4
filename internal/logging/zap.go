package logging

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// zapSink is where Zap loggers send their records; Setup fills it in.
type zapSink struct {
	base slog.Handler
	min  slog.Level
}

var zapTarget atomic.Pointer[zapSink]

// Zap returns a zap logger (for etcd and its client) whose records go to
// the handler Setup built, tagged logger=<name> and filtered like the
// other libraries. Before Setup it falls back to the default slog handler
// and shows only errors.
func Zap(name string) *zap.Logger {
	sink := zapTarget.Load()
	if sink == nil {
		sink = &zapSink{base: slog.Default().Handler(), min: slog.LevelError}
	}
	return newZap(sink.base, name, sink.min)
}

func newZap(base slog.Handler, name string, min slog.Level) *zap.Logger {
	return zap.New(slogCore{h: Library(base, name, min)})
}

// slogCore is a zapcore.Core that hands each entry to a slog handler, so
// zap's own encoders and sinks are never involved.
type slogCore struct{ h slog.Handler }

func (c slogCore) Enabled(l zapcore.Level) bool {
	return c.h.Enabled(context.Background(), slogLevel(l))
}

func (c slogCore) With(fields []zapcore.Field) zapcore.Core {
	if len(fields) == 0 {
		return c
	}
	return slogCore{h: c.h.WithAttrs(attrs(fields))}
}

func (c slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	r := slog.NewRecord(e.Time, slogLevel(e.Level), e.Message, 0)
	if e.LoggerName != "" {
		r.AddAttrs(slog.String("name", e.LoggerName))
	}
	r.AddAttrs(attrs(fields)...)
	return c.h.Handle(context.Background(), r)
}

// Sync has nothing to flush: the slog handler writes synchronously.
func (slogCore) Sync() error { return nil }

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default: // error, dpanic, panic, fatal
		return slog.LevelError
	}
}

// attrs converts zap fields through zap's in-memory encoder, which knows
// every field type; encoding one field at a time keeps their order.
func attrs(fields []zapcore.Field) []slog.Attr {
	out := make([]slog.Attr, 0, len(fields))
	for _, f := range fields {
		enc := zapcore.NewMapObjectEncoder()
		f.AddTo(enc)
		if v, ok := enc.Fields[f.Key]; ok {
			out = append(out, slog.Any(f.Key, v))
			delete(enc.Fields, f.Key)
		}
		// zap.Error may add a key of its own (errorVerbose); keep it, in a
		// stable order.
		for _, k := range slices.Sorted(maps.Keys(enc.Fields)) {
			out = append(out, slog.Any(k, enc.Fields[k]))
		}
	}
	return out
}
