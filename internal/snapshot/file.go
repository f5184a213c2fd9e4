// Package snapshot takes, checks, keeps and restores backups of a server's
// datastore: etcd snapshots (with a trial restore that proves each one
// restorable), SQLite online backups, retention on disk and on S3, and
// their records in the cluster.
package snapshot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Suffixes of snapshot files.
const (
	ZstdSuffix   = ".zst"
	SQLiteSuffix = ".db"
	metadataDir  = ".metadata"
)

// Info is one snapshot file and what is known about it.
type Info struct {
	Name      string    `json:"name"` // file name
	Node      string    `json:"node"`
	Size      int64     `json:"size"`
	Created   time.Time `json:"created"`
	Kind      string    `json:"kind"` // "etcd" or "sqlite"
	Location  string    `json:"location"`
	Verified  bool      `json:"verified"`
	Revision  int64     `json:"revision,omitempty"`
	Keys      int64     `json:"keys,omitempty"`
	Hash      uint32    `json:"hash,omitempty"`
	Error     string    `json:"error,omitempty"`
	VerifyLog string    `json:"verifyLog,omitempty"` // what the check compared
	// S3 is where a copy was uploaded, if it was.
	S3 *S3Object `json:"s3,omitempty"`
}

// S3Object is an uploaded copy.
type S3Object struct {
	Endpoint string `json:"endpoint"`
	Bucket   string `json:"bucket"`
	Key      string `json:"key"`
	Error    string `json:"error,omitempty"`
}

// FileName is a snapshot's file name as K3s names them:
// <name>-<node>-<unix time>.
func FileName(name, node string, at time.Time) string {
	return fmt.Sprintf("%s-%s-%d", name, node, at.Round(time.Second).Unix())
}

var unixSuffix = regexp.MustCompile(`-(\d+)(\.db)?(\.zst)?$`)

// createdAt is the time in a snapshot's file name.
func createdAt(file string) (time.Time, bool) {
	m := unixSuffix.FindStringSubmatch(file)
	if m == nil {
		return time.Time{}, false
	}
	sec, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

// ValidName refuses a name that is not a plain file name.
func ValidName(name string) error {
	if name == "" || name != filepath.Base(name) || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%q is not a snapshot file name (no paths)", name)
	}
	return nil
}

func metaPath(dir, file string) string { return filepath.Join(dir, metadataDir, file+".json") }

// saveMeta keeps what is known about a snapshot beside it.
func saveMeta(dir string, info Info) error {
	if err := os.MkdirAll(filepath.Join(dir, metadataDir), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(info)
	if err != nil {
		return err
	}
	tmp := metaPath(dir, info.Name) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, metaPath(dir, info.Name))
}

// List reads the snapshots in dir with what is known about each, newest
// first. A file without metadata (copied in by hand) is listed unverified.
func List(dir, node string) ([]Info, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range entries {
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), ".") || strings.HasSuffix(e.Name(), ".part") {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		info := Info{Name: e.Name(), Node: node, Size: fi.Size(), Created: fi.ModTime(), Kind: "etcd",
			Location: "file://" + filepath.Join(dir, e.Name())}
		if data, err := os.ReadFile(metaPath(dir, e.Name())); err == nil {
			_ = json.Unmarshal(data, &info)
			info.Size = fi.Size()
		} else if t, ok := createdAt(e.Name()); ok {
			info.Created = t
		}
		if strings.Contains(e.Name(), SQLiteSuffix) {
			info.Kind = "sqlite"
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b Info) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(b.Name, a.Name)
	})
	return out, nil
}

// Delete removes a snapshot and its metadata.
func Delete(dir, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		return err
	}
	_ = os.Remove(metaPath(dir, name))
	return nil
}

// Prune keeps the keep newest verified snapshots whose name starts with
// prefix and deletes older ones; a snapshot that failed its check is
// deleted once it is older than the oldest one kept. keep < 1 keeps all.
func Prune(dir, node, prefix string, keep int) ([]string, error) {
	if keep < 1 {
		return nil, nil
	}
	all, err := List(dir, node)
	if err != nil {
		return nil, err
	}
	var verified int
	var oldestKept time.Time
	var doomed []Info
	for _, s := range all { // newest first
		if !strings.HasPrefix(s.Name, prefix+"-") {
			continue
		}
		switch {
		case s.Verified && verified < keep:
			verified++
			oldestKept = s.Created
		case s.Verified:
			doomed = append(doomed, s)
		case verified >= keep && s.Created.Before(oldestKept):
			doomed = append(doomed, s)
		}
	}
	var deleted []string
	for _, s := range doomed {
		if err := Delete(dir, s.Name); err != nil {
			return deleted, err
		}
		deleted = append(deleted, s.Name)
	}
	return deleted, nil
}
