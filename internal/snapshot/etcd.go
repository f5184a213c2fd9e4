package snapshot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Saver is the part of an etcd client a snapshot needs.
type Saver interface {
	SnapshotWithVersion(ctx context.Context) (*clientv3.SnapshotResponse, error)
}

// SaveEtcd streams a snapshot of the member c talks to into dir as
// <name>-<node>-<unix time> (zstd-compressed with compress), written to a
// .part file, synced and renamed only when complete. etcd ends the stream
// with a SHA-256 of what it sent; a stream without it is an error.
func SaveEtcd(ctx context.Context, c Saver, dir, name, node string, compress bool) (Info, error) {
	now := time.Now()
	file := FileName(name, node, now)
	if compress {
		file += ZstdSuffix
	}
	info := Info{Name: file, Node: node, Created: now, Kind: "etcd", Location: "file://" + filepath.Join(dir, file)}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return info, fmt.Errorf("snapshot dir: %w", err)
	}
	resp, err := c.SnapshotWithVersion(ctx)
	if err != nil {
		return info, fmt.Errorf("etcd snapshot: %w", err)
	}
	defer resp.Snapshot.Close()
	part := filepath.Join(dir, file+".part")
	f, err := os.OpenFile(part, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return info, err
	}
	defer os.Remove(part)
	var w io.Writer = f
	var zw *zstd.Encoder
	if compress {
		if zw, err = zstd.NewWriter(f); err != nil {
			f.Close()
			return info, err
		}
		w = zw
	}
	// The trailer is the last 32 bytes of the stream; a rolling window of
	// them is checked against the hash of everything before.
	tv := &trailerVerifier{h: sha256.New()}
	n, err := io.Copy(io.MultiWriter(w, tv), resp.Snapshot)
	if err == nil && zw != nil {
		err = zw.Close()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return info, fmt.Errorf("etcd snapshot: write %s: %w", part, err)
	}
	if err := tv.check(n); err != nil {
		return info, fmt.Errorf("etcd snapshot: %w", err)
	}
	if err := os.Rename(part, filepath.Join(dir, file)); err != nil {
		return info, err
	}
	st, err := os.Stat(filepath.Join(dir, file))
	if err != nil {
		return info, err
	}
	info.Size = st.Size()
	return info, saveMeta(dir, info)
}

// trailerVerifier hashes all but the last 32 bytes written and keeps those.
type trailerVerifier struct {
	h    hash.Hash
	tail []byte
}

func (t *trailerVerifier) Write(p []byte) (int, error) {
	buf := append(t.tail, p...)
	if len(buf) > sha256.Size {
		t.h.Write(buf[:len(buf)-sha256.Size])
		buf = buf[len(buf)-sha256.Size:]
	}
	t.tail = append([]byte(nil), buf...)
	return len(p), nil
}

// check tells whether the stream of n bytes ended with the SHA-256 of the
// rest, the way etcd's snapshots do (their size is then 32 more than a
// multiple of 512).
func (t *trailerVerifier) check(n int64) error {
	if n%512 != sha256.Size || len(t.tail) != sha256.Size {
		return errors.New("no integrity hash at the end: the snapshot is truncated or not an etcd snapshot")
	}
	if !bytes.Equal(t.h.Sum(nil), t.tail) {
		return errors.New("integrity hash differs: the snapshot is damaged")
	}
	return nil
}

// CheckIntegrity verifies a snapshot file's SHA-256 trailer, decompressing
// it first if it is compressed.
func CheckIntegrity(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ZstdSuffix) {
		zr, err := zstd.NewReader(f)
		if err != nil {
			return err
		}
		defer zr.Close()
		r = zr
	}
	tv := &trailerVerifier{h: sha256.New()}
	n, err := io.Copy(tv, r)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := tv.check(n); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return nil
}

// plain returns a path to the uncompressed snapshot: path itself, or a
// decompressed copy in scratch.
func plain(path, scratch string) (string, error) {
	if !strings.HasSuffix(path, ZstdSuffix) {
		return path, nil
	}
	in, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer in.Close()
	zr, err := zstd.NewReader(in)
	if err != nil {
		return "", err
	}
	defer zr.Close()
	out := filepath.Join(scratch, strings.TrimSuffix(filepath.Base(path), ZstdSuffix))
	f, err := os.OpenFile(out, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	if _, err := io.Copy(f, zr); err != nil {
		f.Close()
		return "", fmt.Errorf("decompress %s: %w", path, err)
	}
	return out, f.Close()
}
