// Package payload is what bin/k3ha carries besides its own code: the
// programs a node runs beside it (the containerd shim, the packaged
// components' binaries). They are appended to the executable at build
// time as a zstd-compressed tar, with a manifest of every file's SHA-256,
// and unpacked at start into <data-dir>/data/<content hash>/.
//
// Layout of the end of the executable:
//
//	[tar.zst][manifest JSON][trailer]
//
// The trailer is fixed-size: a magic string, the offsets and lengths of
// the archive and the manifest, and the archive's SHA-256.
package payload

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// magic marks an executable that carries a payload.
var magic = [16]byte{'k', '3', 'h', 'a', '-', 'p', 'a', 'y', 'l', 'o', 'a', 'd', '-', 'v', '1', 0}

// trailer is the last bytes of the executable.
type trailer struct {
	Magic          [16]byte
	ArchiveOffset  uint64
	ArchiveLength  uint64
	ManifestOffset uint64
	ManifestLength uint64
	ArchiveSHA256  [32]byte
}

var trailerSize = int64(binary.Size(trailer{}))

// Manifest lists the payload's files.
type Manifest struct {
	Files []File `json:"files"`
}

// File is one file of the payload, by its path relative to the unpacked
// directory.
type File struct {
	Path   string `json:"path"`
	Mode   uint32 `json:"mode"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// ErrNone says the executable carries no payload (a plain `go build`).
var ErrNone = errors.New("this k3ha binary carries no payload (build it with `make build`)")

// Payload is an executable's payload, not yet unpacked.
type Payload struct {
	exe      string
	trailer  trailer
	Manifest Manifest
}

// CodeSize is the size of the executable without its payload.
func (p *Payload) CodeSize() int64 { return int64(p.trailer.ArchiveOffset) }

// Hash names the payload: the hex SHA-256 of its archive.
func (p *Payload) Hash() string { return hex.EncodeToString(p.trailer.ArchiveSHA256[:]) }

// Open reads the trailer and manifest of exe; the archive is read only
// when unpacking.
func Open(exe string) (*Payload, error) {
	f, err := os.Open(exe)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() < trailerSize {
		return nil, ErrNone
	}
	var t trailer
	if err := binary.Read(io.NewSectionReader(f, st.Size()-trailerSize, trailerSize), binary.LittleEndian, &t); err != nil {
		return nil, fmt.Errorf("read payload trailer of %s: %w", exe, err)
	}
	if t.Magic != magic {
		return nil, ErrNone
	}
	end := uint64(st.Size() - trailerSize)
	if t.ArchiveOffset+t.ArchiveLength > t.ManifestOffset || t.ManifestOffset+t.ManifestLength != end {
		return nil, fmt.Errorf("payload of %s is damaged (bad offsets): reinstall k3ha", exe)
	}
	buf := make([]byte, t.ManifestLength)
	if _, err := f.ReadAt(buf, int64(t.ManifestOffset)); err != nil {
		return nil, fmt.Errorf("read payload manifest of %s: %w", exe, err)
	}
	p := &Payload{exe: exe, trailer: t}
	if err := json.Unmarshal(buf, &p.Manifest); err != nil {
		return nil, fmt.Errorf("payload manifest of %s is damaged: %w; reinstall k3ha", exe, err)
	}
	return p, nil
}

// archive returns a reader of the archive that checks its hash at the end.
func (p *Payload) archive() (io.ReadCloser, func() error, error) {
	f, err := os.Open(p.exe)
	if err != nil {
		return nil, nil, err
	}
	h := sha256.New()
	r := io.TeeReader(io.NewSectionReader(f, int64(p.trailer.ArchiveOffset), int64(p.trailer.ArchiveLength)), h)
	check := func() error {
		if !bytes.Equal(h.Sum(nil), p.trailer.ArchiveSHA256[:]) {
			return fmt.Errorf("payload of %s is damaged (its hash differs): reinstall k3ha", p.exe)
		}
		return nil
	}
	return readCloser{r, f}, check, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}
