// Package lockfile makes sure only one k3ha process uses a data dir.
package lockfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// Lock is a held lock; the kernel releases it when the process dies, so a
// crash never leaves a stale lock behind.
type Lock struct {
	f       *os.File
	created bool
}

// ErrHeld says another process holds the lock.
var ErrHeld = errors.New("held by another process")

// Acquire takes an exclusive lock on the directory dir itself, creating it
// if missing. Locking the directory rather than a file in it means a start
// that fails early leaves nothing behind in the data dir.
func Acquire(dir string) (*Lock, error) {
	created := false
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir %s: %w", dir, err)
		}
		created = true
	}
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("data dir %s is in use by another k3ha process: stop it first, or give this one another --data-dir (%w)", dir, ErrHeld)
		}
		return nil, fmt.Errorf("lock data dir %s: %w", dir, err)
	}
	return &Lock{f: f, created: created}, nil
}

// Created reports whether Acquire made the directory.
func (l *Lock) Created() bool { return l.created }

// Release drops the lock.
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
		l.f.Close()
		l.f = nil
	}
}
