// Package sdnotify tells systemd (a Type=notify unit) when k3ha is ready
// and when it begins to stop. The socket is taken from the environment at
// the very start and removed from it, so that none of the embedded parts
// that would notify on their own (the apiserver, the kubelet, containerd)
// says READY=1 before k3ha as a whole is ready.
package sdnotify

import (
	"log/slog"
	"os"
	"sync"

	"github.com/coreos/go-systemd/v22/daemon"
)

var (
	mu     sync.Mutex
	socket string
)

// Capture takes NOTIFY_SOCKET out of the environment; call it first thing.
func Capture() {
	mu.Lock()
	defer mu.Unlock()
	if s := os.Getenv("NOTIFY_SOCKET"); s != "" {
		socket = s
		os.Unsetenv("NOTIFY_SOCKET")
	}
}

// Ready says READY=1.
func Ready() { send(daemon.SdNotifyReady) }

// Stopping says STOPPING=1.
func Stopping() { send(daemon.SdNotifyStopping) }

func send(state string) {
	mu.Lock()
	defer mu.Unlock()
	if socket == "" {
		return
	}
	// SdNotify reads the socket from the environment and removes it again.
	os.Setenv("NOTIFY_SOCKET", socket)
	if _, err := daemon.SdNotify(true, state); err != nil {
		slog.Warn("could not notify systemd", "state", state, "err", err)
	}
}
