package lockfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecondAcquireFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !l.Created() {
		t.Fatal("Created() = false for a new dir")
	}
	_, err = Acquire(dir)
	if !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), "is in use by another k3ha process") {
		t.Fatalf("second acquire: %v", err)
	}
	l.Release()
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	defer l2.Release()
	if l2.Created() {
		t.Fatal("Created() = true for an existing dir")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("locking wrote into the dir: %v", entries)
	}
}
