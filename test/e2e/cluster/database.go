package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/harness"
)

// What MariaDB and Postgres share: a server of the test's own, in a
// directory of its own, run as an unprivileged account.

// account is the unprivileged account a database server and its tools
// run as: they refuse root.
type account struct{ uid, gid int }

// unprivileged is the first of the named accounts that exists.
func unprivileged(names ...string) (account, error) {
	for _, name := range names {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return account{uid: uid, gid: gid}, nil
	}
	return account{}, fmt.Errorf("none of the accounts %v exists", names)
}

// dbDir makes a database server's directory, removed after the test. Not
// t.TempDir: its parents are private to root, and the server runs as
// another user.
func dbDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// dbPassword is a new random password for the database's account k3ha.
func dbPassword() string {
	pw := make([]byte, 12)
	rand.Read(pw)
	return hex.EncodeToString(pw)
}

// own gives the paths to a.
func (a account) own(t testing.TB, paths ...string) {
	t.Helper()
	for _, f := range paths {
		if err := os.Chown(f, a.uid, a.gid); err != nil {
			t.Fatal(err)
		}
	}
}

// run runs a database's set-up program as a in dir and waits for it.
func (a account) run(t testing.TB, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(a.uid), Gid: uint32(a.gid)}}
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", filepath.Base(name), err, out)
	}
}

// startServer starts a database server in host as a (setpriv drops root
// first), its output going to logPath. The harness kills it with the test.
func (a account) startServer(t testing.TB, host *harness.Host, logPath string, argv ...string) *harness.Process {
	t.Helper()
	return host.Start(t, logPath, nil, "setpriv", append([]string{
		"--reuid=" + strconv.Itoa(a.uid), "--regid=" + strconv.Itoa(a.gid), "--clear-groups",
	}, argv...)...)
}

// waitAccepting waits up to a minute until ready reports that the database
// server proc accepts connections; the test fails at once if the server
// exits.
func waitAccepting(t testing.TB, proc *harness.Process, server string, ready func() (bool, error)) {
	t.Helper()
	harness.WaitFor(t, time.Minute, server+" accepts connections", func() (bool, error) {
		if proc.Exited() {
			t.Fatalf("%s exited:\n%s", server, Tail(proc.Log(), 20))
		}
		return ready()
	})
}
