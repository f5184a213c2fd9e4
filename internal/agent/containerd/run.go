package containerd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/containerd/containerd/v2/client"
)

// maxSocketPath is the longest path a unix socket address holds (sun_path
// is 108 bytes with its terminating NUL).
const maxSocketPath = 107

// ShimName is the runc shim containerd starts per pod. It must be a binary
// of its own (containerd's plugin registry clashes if the daemon's multicall
// binary is also the shim), carried in k3ha's payload.
const ShimName = "containerd-shim-runc-v2"

// Containerd is the running child process.
type Containerd struct {
	settings Settings
	logFile  string
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
}

// New prepares containerd; logFile receives its output.
func New(s Settings, logFile string) *Containerd {
	return &Containerd{settings: s, logFile: logFile}
}

func (c *Containerd) Name() string { return "containerd" }

// Start writes the config, starts `k3ha containerd` and waits until it answers.
func (c *Containerd) Start(ctx context.Context) error {
	// A unix socket's path has room for 107 bytes; the longest of
	// containerd's is the ttrpc one beside its gRPC socket.
	if sock := c.settings.Socket() + ".ttrpc"; len(sock) > maxSocketPath {
		return fmt.Errorf("the data dir's path is too long for containerd's sockets (%s is %d bytes, at most %d fit in a unix socket address): use a shorter --data-dir",
			sock, len(sock), maxSocketPath)
	}
	for _, d := range []string{c.settings.Root, c.settings.State, c.settings.CNIConfDir, c.settings.RuncRoot, filepath.Dir(c.logFile)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("containerd dir: %w", err)
		}
	}
	if err := WriteConfig(c.settings); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	shimDir := c.settings.BinDir
	if shimDir == "" {
		if shimDir, err = findShim(filepath.Dir(self)); err != nil {
			return err
		}
	}
	log, err := os.OpenFile(c.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("containerd log: %w", err)
	}
	defer log.Close()
	cmd := exec.Command(self, "containerd", "--config", c.settings.ConfigFile())
	cmd.Stdout, cmd.Stderr = log, log
	// containerd finds the shim (and runc) on its PATH.
	cmd.Env = append(os.Environ(), "PATH="+shimDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	// If k3ha dies, containerd goes too; the shims keep the pods running
	// and the next containerd picks them up again.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c.cmd, c.done = cmd, make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// The death signal fires when the thread that started the child
		// exits, not the process: keep this thread for as long as the child.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(c.done)
			return
		}
		started <- nil
		c.err = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		c.cmd = nil
		return fmt.Errorf("start containerd: %w", err)
	}
	if err := c.waitReady(ctx); err != nil {
		_ = c.Stop()
		return err
	}
	slog.Info("containerd ready", "socket", c.settings.Socket(), "log", c.logFile)
	return nil
}

func (c *Containerd) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-c.done:
			return fmt.Errorf("containerd exited while starting (%v); the end of %s:\n%s", c.err, c.logFile, logTail(c.logFile, 8))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if cl, err := client.New(c.settings.Socket(), client.WithTimeout(time.Second)); err == nil {
			_, verr := cl.Version(ctx)
			cl.Close()
			if verr == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd did not answer on %s within a minute; see %s", c.settings.Socket(), c.logFile)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Client connects to this containerd.
func (c *Containerd) Client() (*client.Client, error) {
	return client.New(c.settings.Socket())
}

// Endpoint is the CRI endpoint for the kubelet.
func (c *Containerd) Endpoint() string { return "unix://" + c.settings.Socket() }

func (c *Containerd) Done() <-chan struct{} { return c.done }

func (c *Containerd) Err() error {
	if c.err == nil {
		return errors.New("containerd exited")
	}
	return fmt.Errorf("containerd: %w (see %s)", c.err, c.logFile)
}

// Stop asks containerd to stop and kills it after a few seconds.
func (c *Containerd) Stop() error {
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	return nil
}

// findShim looks for the shim next to k3ha, then on PATH: for a k3ha built
// without its payload (`go build`).
func findShim(dir string) (string, error) {
	if st, err := os.Stat(filepath.Join(dir, ShimName)); err == nil && !st.IsDir() {
		return dir, nil
	}
	if p, err := exec.LookPath(ShimName); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("%s not found next to %s or on PATH: build it with `make build` (it is part of every k3ha install)", ShimName, strings.TrimSuffix(dir, "/"))
}

// logTail is the last n lines of a log file, for an error message.
func logTail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
