package payload

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fakeExe is an "executable" with a payload of two files.
func fakeExe(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(filepath.Join(src, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "bin", "tool"), []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "images.txt"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "k3ha")
	if err := os.WriteFile(exe, []byte("ELF-ish code"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Append(exe, src); err != nil {
		t.Fatal(err)
	}
	return exe
}

func TestNoPayload(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(exe, make([]byte, 200), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(exe); !errors.Is(err, ErrNone) {
		t.Fatalf("got %v, want ErrNone", err)
	}
}

func TestAppendTwiceRefused(t *testing.T) {
	exe := fakeExe(t)
	if err := Append(exe, t.TempDir()); err == nil {
		t.Fatal("a second payload was appended")
	}
}

func TestUnpackVerifiesAndRepairs(t *testing.T) {
	exe := fakeExe(t)
	code, _ := os.ReadFile(exe)
	if string(code[:12]) != "ELF-ish code" {
		t.Fatal("the executable's own bytes changed")
	}
	p, err := Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Manifest.Files) != 2 {
		t.Fatalf("manifest %+v", p.Manifest)
	}
	dataDir := t.TempDir()
	d, err := p.Unpack(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	if d.Path != filepath.Join(dataDir, "data", p.Hash()) {
		t.Fatalf("unpacked into %s", d.Path)
	}
	tool := filepath.Join(d.Bin(), "tool")
	st, err := os.Stat(tool)
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("tool: %v %v", st, err)
	}

	// A tampered file is noticed and replaced; a stray older dir goes once started.
	if err := os.WriteFile(tool, []byte("#!/bin/evil\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	older := filepath.Join(dataDir, "data", "0000older")
	if err := os.MkdirAll(older, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Unpack(dataDir); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(tool); string(got) != "#!/bin/true\n" {
		t.Fatalf("tampered file not replaced: %q", got)
	}
	d.RemoveOthers()
	if _, err := os.Stat(older); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("older payload dir still there: %v", err)
	}
	if _, err := os.Stat(tool); err != nil {
		t.Fatal(err)
	}
}

func TestDamagedArchiveRefused(t *testing.T) {
	exe := fakeExe(t)
	p, err := Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(exe, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a byte inside the archive.
	off := int64(p.trailer.ArchiveOffset + p.trailer.ArchiveLength/2)
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	f.Close()
	dataDir := t.TempDir()
	if _, err := p.Unpack(dataDir); err == nil {
		t.Fatal("a damaged payload was unpacked")
	}
	if _, err := os.Stat(filepath.Join(dataDir, "data", p.Hash())); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a damaged payload left its dir: %v", err)
	}
}
