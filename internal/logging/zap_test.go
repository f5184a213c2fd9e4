package logging

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestZapBridge(t *testing.T) {
	var buf bytes.Buffer
	Setup(&buf, Options{})
	lg := Zap("etcd").With(zap.String("local-member-id", "8e9e05c52164694d"))

	lg.Info("hidden without debug")
	lg.Warn("hidden too")
	lg.Error("slow fdatasync", zap.Duration("took", 1500*time.Millisecond), zap.Int("n", 3),
		zap.Error(errors.New("disk on fire")), zap.Strings("peers", []string{"a", "b"}))

	out := buf.String()
	if strings.Contains(out, "hidden") {
		t.Errorf("non-error records passed the filter without Debug:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Fatalf("want exactly one line, got %d:\n%s", len(lines), out)
	}
	for _, want := range []string{"level=ERROR", `msg="slow fdatasync"`, "logger=etcd",
		"local-member-id=8e9e05c52164694d", "took=1.5s", "n=3", `error="disk on fire"`, "peers="} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("line lacks %q: %s", want, lines[0])
		}
	}
	// The field order of the call is kept.
	if strings.Index(lines[0], "took=") > strings.Index(lines[0], "n=3") {
		t.Errorf("fields out of order: %s", lines[0])
	}
}

func TestZapBridgeDebug(t *testing.T) {
	var buf bytes.Buffer
	// Setup with Debug shows info and up, never zap's debug records.
	base := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	lg := newZap(base, "etcd-client", slog.LevelInfo)
	lg.Debug("raft chatter")
	lg.Info("member added")
	lg.Named("grpc").Warn("retrying")

	out := buf.String()
	if strings.Contains(out, "raft chatter") {
		t.Errorf("debug record shown:\n%s", out)
	}
	if !strings.Contains(out, `level=INFO msg="member added" logger=etcd-client`) {
		t.Errorf("info record missing or untagged:\n%s", out)
	}
	if !strings.Contains(out, "level=WARN msg=retrying logger=etcd-client name=grpc") {
		t.Errorf("warn record missing or without its zap name:\n%s", out)
	}
	if !lg.Core().Enabled(zap.InfoLevel) || lg.Core().Enabled(zap.DebugLevel) {
		t.Error("Enabled does not follow the filter")
	}
}

func TestZapSetupDebugLevel(t *testing.T) {
	var buf bytes.Buffer
	Setup(&buf, Options{Debug: true})
	Zap("etcd").Info("ready to serve client requests")
	if !strings.Contains(buf.String(), "ready to serve client requests") {
		t.Errorf("info record hidden with Debug:\n%s", buf.String())
	}
}
