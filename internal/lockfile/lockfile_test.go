package lockfile

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecondAcquireFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l, err := Acquire(path, "data dir /d")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(path, "data dir /d")
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "data dir /d is in use") {
		t.Fatalf("second acquire: %v", err)
	}
	l.Release()
	l2, err := Acquire(path, "data dir /d")
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}
