// Package bootstrap handles the cluster-wide secret material every server
// needs: CA certificates and keys, the service-account key pair, the
// secrets-encryption config and the agent token. A joining server gets it
// from an existing server; a copy sealed with the cluster token also lives
// in the datastore, so any server can bootstrap the next one and a server
// started with a wrong token finds out before it serves anything.
package bootstrap

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/pki"
)

// Data maps paths relative to <data-dir>/server (layout.Server.Root), with
// forward slashes, to file contents.
type Data struct {
	Files map[string][]byte `json:"files"`
}

// File modes: private material must stay private on the joining server too.
const (
	secretMode os.FileMode = 0o600
	publicMode os.FileMode = 0o644
)

type fileSpec struct {
	rel      string
	required bool
}

// specs derives the bootstrap files from layout so paths have a single
// source of truth: with an empty Root every helper yields a relative path.
func specs() []fileSpec {
	rel := layout.Server{Root: ""}
	var out []fileSpec
	for _, ca := range []string{
		layout.ServerCA, layout.ClientCA, layout.RequestHeaderCA,
		layout.EtcdServerCA, layout.EtcdPeerCA,
	} {
		out = append(out,
			fileSpec{rel.Cert(ca), true},
			fileSpec{rel.Key(ca), true},
		)
	}
	return append(out,
		fileSpec{rel.Key(layout.ServiceAccount), true},
		fileSpec{rel.ServiceAccountPublicKey(), true},
		// Only present when secrets encryption is on or a separate agent
		// token was given.
		fileSpec{rel.EncryptionConfig(), false},
		fileSpec{rel.AgentTokenFile(), false},
	)
}

// Files lists the bootstrap files, relative to <data-dir>/server with
// forward slashes, required ones first.
func Files() []string {
	var out []string
	for _, s := range specs() {
		out = append(out, filepath.ToSlash(s.rel))
	}
	return out
}

// Collect reads the bootstrap files of l. A missing CA certificate or key
// or service-account key is an error naming the file; the optional files
// are skipped when absent.
func Collect(l layout.Server) (Data, error) {
	d := Data{Files: map[string][]byte{}}
	for _, s := range specs() {
		path := filepath.Join(l.Root, s.rel)
		content, err := os.ReadFile(path)
		switch {
		case err == nil:
			d.Files[filepath.ToSlash(s.rel)] = content
		case errors.Is(err, fs.ErrNotExist) && !s.required:
		case errors.Is(err, fs.ErrNotExist):
			return Data{}, fmt.Errorf("collect bootstrap data: required file %s is missing", path)
		default:
			return Data{}, fmt.Errorf("collect bootstrap data: %w", err)
		}
	}
	return d, nil
}

// Equal reports whether d and o hold the same files, byte for byte.
func (d Data) Equal(o Data) bool { return maps.EqualFunc(d.Files, o.Files, bytes.Equal) }

// Write writes every file of d under l.Root atomically: certificates and
// public keys 0644, everything else 0600. All paths are checked before
// anything is written, so bad data changes nothing on disk.
func (d Data) Write(l layout.Server) error {
	if l.Root == "" {
		// A relative write would land in the working directory.
		return errors.New("write bootstrap data: server directory is not set")
	}
	paths := d.paths()
	for _, rel := range paths {
		if err := checkPath(rel); err != nil {
			return fmt.Errorf("write bootstrap data: %w", err)
		}
	}
	// Private keys go first, like pki does for a pair: a crash in between
	// leaves a certificate that does not match its key, which loading
	// detects, instead of a silently half-replaced CA.
	slices.SortStableFunc(paths, func(a, b string) int {
		return boolCmp(isPublic(a), isPublic(b))
	})
	for _, rel := range paths {
		mode := secretMode
		if isPublic(rel) {
			mode = publicMode
		}
		if err := pki.WriteFileAtomic(local(l, rel), d.Files[rel], mode); err != nil {
			return fmt.Errorf("write bootstrap data: %w", err)
		}
	}
	return nil
}

// Missing lists, sorted, the files of d that do not exist under l.Root.
// Paths Write would reject are left out of this and of Differing.
func (d Data) Missing(l layout.Server) []string {
	var out []string
	for _, rel := range d.paths() {
		if checkPath(rel) != nil {
			continue
		}
		if _, err := os.Stat(local(l, rel)); errors.Is(err, fs.ErrNotExist) {
			out = append(out, rel)
		}
	}
	return out
}

// Differing lists, sorted, the identity files of d (CAs and the
// service-account key) that exist under l.Root with other content: a data
// dir of another cluster. A file that exists but cannot be read counts as
// differing: it cannot be shown to be the same. The cluster's settings
// (encryption config, agent token) may change and are not compared.
func (d Data) Differing(l layout.Server) []string {
	var out []string
	for _, rel := range d.paths() {
		if checkPath(rel) != nil || IsSetting(rel) {
			continue
		}
		content, err := os.ReadFile(local(l, rel))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil || !bytes.Equal(content, d.Files[rel]):
			out = append(out, rel)
		}
	}
	return out
}

// IsSetting tells the bootstrap files a running cluster may change (a key
// rotation, a token rotation) from its identity (CAs, keys).
func IsSetting(rel string) bool {
	for _, s := range specs() {
		if filepath.ToSlash(s.rel) == rel {
			return !s.required
		}
	}
	return false
}

// Stale lists, sorted, the settings files of d that differ from (or are
// missing in) the data dir: what a server must take from the cluster.
func (d Data) Stale(l layout.Server) []string {
	var out []string
	for _, rel := range d.paths() {
		if checkPath(rel) != nil || !IsSetting(rel) {
			continue
		}
		content, err := os.ReadFile(local(l, rel))
		if err != nil || !bytes.Equal(content, d.Files[rel]) {
			out = append(out, rel)
		}
	}
	return out
}

// WriteFiles writes only the named files of d.
func (d Data) WriteFiles(l layout.Server, rels []string) error {
	sub := Data{Files: map[string][]byte{}}
	for _, rel := range rels {
		if content, ok := d.Files[rel]; ok {
			sub.Files[rel] = content
		}
	}
	return sub.Write(l)
}

func (d Data) paths() []string {
	out := make([]string, 0, len(d.Files))
	for rel := range d.Files {
		out = append(out, rel)
	}
	slices.Sort(out)
	return out
}

// checkPath rejects paths that would leave the server directory: the data
// comes over the network or out of the datastore.
func checkPath(rel string) error {
	p := filepath.FromSlash(rel)
	// "." is local but names the directory itself, not a file in it.
	if rel == "" || filepath.IsAbs(p) || !filepath.IsLocal(p) || filepath.Clean(p) == "." {
		return fmt.Errorf("path %q is not inside the server directory", rel)
	}
	return nil
}

func local(l layout.Server, rel string) string {
	return filepath.Join(l.Root, filepath.FromSlash(rel))
}

func isPublic(rel string) bool {
	switch filepath.Ext(rel) {
	case ".crt", ".pub":
		return true
	}
	return false
}

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	default:
		return -1
	}
}
