package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestNotify(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	Capture()
	defer func() { socket = "" }()
	if v := os.Getenv("NOTIFY_SOCKET"); v != "" {
		t.Fatalf("NOTIFY_SOCKET still set: %q", v)
	}
	Ready()
	Stopping()
	for _, want := range []string{"READY=1", "STOPPING=1"} {
		buf := make([]byte, 64)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil || string(buf[:n]) != want {
			t.Fatalf("got %q %v, want %s", buf[:n], err, want)
		}
	}
	if v := os.Getenv("NOTIFY_SOCKET"); v != "" {
		t.Fatalf("NOTIFY_SOCKET left in the environment: %q", v)
	}
}

func TestWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	Capture()
	Ready() // nothing to do, nothing to fail
}
