package payload

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
)

// Dir is an unpacked payload.
type Dir struct {
	Path     string // <data-dir>/data/<hash>
	Manifest Manifest
}

// Bin is the directory of programs to put first on PATH.
func (d Dir) Bin() string { return filepath.Join(d.Path, "bin") }

// File is the path of a payload file, by its path in the payload.
func (d Dir) File(rel string) string { return filepath.Join(d.Path, filepath.FromSlash(rel)) }

// Unpack makes sure <dataDir>/data/<hash> holds exactly the payload's
// files, checking every one against the manifest; a directory whose
// content differs is never used: it is unpacked again.
func (p *Payload) Unpack(dataDir string) (Dir, error) {
	root := filepath.Join(dataDir, "data")
	d := Dir{Path: filepath.Join(root, p.Hash()), Manifest: p.Manifest}
	bad, err := p.verify(d.Path)
	if err == nil {
		return d, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		slog.Warn("unpacked payload differs from this binary's; unpacking it again", "dir", d.Path, "file", bad, "err", err)
	}
	begin := time.Now()
	if err := os.MkdirAll(root, 0o755); err != nil {
		return d, fmt.Errorf("payload dir: %w", err)
	}
	tmp, err := os.MkdirTemp(root, ".unpack-")
	if err != nil {
		return d, fmt.Errorf("payload dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := p.extract(tmp); err != nil {
		return d, err
	}
	if bad, err := p.verify(tmp); err != nil {
		return d, fmt.Errorf("unpacked payload file %s: %w", bad, err)
	}
	if err := os.RemoveAll(d.Path); err != nil {
		return d, fmt.Errorf("remove damaged payload dir: %w", err)
	}
	if err := os.Rename(tmp, d.Path); err != nil {
		return d, fmt.Errorf("payload dir: %w", err)
	}
	slog.Info("payload unpacked", "dir", d.Path, "files", len(p.Manifest.Files), "took", time.Since(begin).Round(time.Millisecond))
	return d, nil
}

// Program returns the path of one unpacked payload file, checking only
// that file when the payload is unpacked already (a tool run by hand,
// such as crictl, should not hash the whole payload).
func (p *Payload) Program(dataDir, rel string) (string, error) {
	d := Dir{Path: filepath.Join(dataDir, "data", p.Hash()), Manifest: p.Manifest}
	for _, f := range p.Manifest.Files {
		if f.Path != rel {
			continue
		}
		if err := checkFile(d.File(rel), f); err == nil {
			return d.File(rel), nil
		}
		d, err := p.Unpack(dataDir)
		if err != nil {
			return "", err
		}
		return d.File(rel), nil
	}
	return "", fmt.Errorf("this k3ha binary carries no %s", rel)
}

// verify checks every file of the manifest in dir, returning the first
// that is missing or differs.
func (p *Payload) verify(dir string) (string, error) {
	if _, err := os.Stat(dir); err != nil {
		return "", err
	}
	for _, f := range p.Manifest.Files {
		if err := checkFile(filepath.Join(dir, filepath.FromSlash(f.Path)), f); err != nil {
			return f.Path, err
		}
	}
	return "", nil
}

// checkFile tells whether path is the manifest's file f.
func checkFile(path string, f File) error {
	st, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() || st.Size() != f.Size || uint32(st.Mode().Perm()) != f.Mode {
		return errors.New("size, type or mode differs")
	}
	sum, err := fileSHA256(path)
	if err != nil {
		return err
	}
	if sum != f.SHA256 {
		return errors.New("content differs")
	}
	return nil
}

func (p *Payload) extract(dir string) error {
	r, check, err := p.archive()
	if err != nil {
		return err
	}
	defer r.Close()
	zr, err := zstd.NewReader(r)
	if err != nil {
		return fmt.Errorf("payload: %w", err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("payload: %w", err)
		}
		name := path.Clean(hdr.Name)
		if hdr.Typeflag != tar.TypeReg || !fs.ValidPath(name) {
			return fmt.Errorf("payload: unexpected entry %q", hdr.Name)
		}
		if err := writeFile(filepath.Join(dir, filepath.FromSlash(name)), tr, fs.FileMode(hdr.Mode).Perm()); err != nil {
			return err
		}
	}
	// Read to the end so the hash covers the whole archive.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	return check()
}

func writeFile(path string, r io.Reader, mode fs.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil { // not narrowed by the umask
		f.Close()
		return err
	}
	return f.Close()
}

// RemoveOthers deletes the unpacked payloads of other k3ha versions under
// <dataDir>/data, once this one has started: running programs of an older
// one (a pod's shim) keep their open files.
func (d Dir) RemoveOthers() {
	root := filepath.Dir(d.Path)
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if full := filepath.Join(root, e.Name()); full != d.Path && e.IsDir() {
			if err := os.RemoveAll(full); err != nil {
				slog.Warn("could not remove an older unpacked payload", "dir", full, "err", err)
			} else {
				slog.Info("older unpacked payload removed", "dir", full)
			}
		}
	}
}
