package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logTailLines is how much of a process log a failed test prints.
const logTailLines = 40

// Process is a program started by Host.Start. It leads its own process group
// (PGID == PID), so signalling -PID reaches everything it spawned that stayed
// in the group.
type Process struct {
	Cmd     *exec.Cmd
	PID     int
	LogPath string

	desc string // for messages: "<program> in host <name>"

	// done is closed by the only goroutine calling Cmd.Wait, after it has
	// stored waitErr; that lets any number of callers wait or poll safely.
	done    chan struct{}
	waitErr error
}

func newProcess(cmd *exec.Cmd, logPath, desc string) *Process {
	p := &Process{
		Cmd:     cmd,
		PID:     cmd.Process.Pid,
		LogPath: logPath,
		desc:    desc,
		done:    make(chan struct{}),
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p
}

func (p *Process) String() string {
	return fmt.Sprintf("process %d (%s)", p.PID, p.desc)
}

// Exited reports without blocking whether the process has exited and been reaped.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitStatus says how the process ended ("exit status 1", "signal:
// killed"), or that it still runs.
func (p *Process) ExitStatus() string {
	if !p.Exited() {
		return "running"
	}
	return p.Cmd.ProcessState.String()
}

// Signal sends sig to the process itself (not its group). It goes through
// os.Process, which refuses to signal a reaped process whose PID might
// already belong to someone else.
func (p *Process) Signal(sig syscall.Signal) error {
	if err := p.Cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal %v to %s: %w", sig, p, err)
	}
	return nil
}

// Wait waits up to timeout for the process to exit. It returns the exit code
// and nil if the process exited by itself (whatever the code); otherwise an
// error and -1: still running after timeout, or killed by a signal.
func (p *Process) Wait(timeout time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("%s still running after %v", p, timeout)
	}
	st := p.Cmd.ProcessState
	if st == nil || !st.Exited() {
		return -1, fmt.Errorf("%s: %w", p, p.waitErr)
	}
	return st.ExitCode(), nil
}

// Kill sends SIGKILL to the process group and waits for the process to be
// reaped. Killing an exited process is not an error: its group may still
// have members, so the group is signalled regardless.
func (p *Process) Kill() error {
	// While any member lives, the kernel does not hand out the group's ID as
	// a new PID, so -PID cannot hit an unrelated process; ESRCH means the
	// group is empty.
	if err := syscall.Kill(-p.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group of %s: %w", p, err)
	}
	// Covers a leader that moved itself out of its group.
	if err := p.Cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill %s: %w", p, err)
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("%s did not exit within %v of SIGKILL", p, killWait)
	}
}

// Stop asks the process to shut down with SIGTERM (to the process only, as an
// init system would, so it can stop its children in order), waits up to
// timeout and then kills the whole group. It returns an error if SIGKILL was
// needed or the process did not exit with status 0; the caller decides
// whether that matters.
func (p *Process) Stop(timeout time.Duration) error {
	if !p.Exited() {
		if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			return fmt.Errorf("stop %s: %w", p, err)
		}
		select {
		case <-p.done:
		case <-time.After(timeout):
			if err := p.Kill(); err != nil {
				return fmt.Errorf("%s ignored SIGTERM for %v: %w", p, timeout, err)
			}
			return fmt.Errorf("%s did not exit within %v of SIGTERM; killed it", p, timeout)
		}
	}
	if p.waitErr != nil {
		return fmt.Errorf("%s: %w", p, p.waitErr)
	}
	return nil
}

// Log returns the current contents of the log file; a read error is returned
// as text so it shows up wherever the log would have.
func (p *Process) Log() string {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("<cannot read log of %s: %v>", p, err)
	}
	return string(b)
}

// cleanup kills the group (members may outlive the leader) and, if the test
// failed, prints the end of the log, which is usually where the cause is.
func (p *Process) cleanup(t testing.TB) {
	if err := p.Kill(); err != nil {
		t.Logf("harness: cleanup: %v", err)
	}
	if t.Failed() {
		t.Logf("harness: last lines of %s log %s:\n%s", p, p.LogPath, tail(p.Log(), logTailLines))
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
