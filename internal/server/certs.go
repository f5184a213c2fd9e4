package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/lockfile"
)

// RotateCertificates makes a stopped server issue new leaf certificates
// from the same CAs at its next start: the tls dir is copied to
// tls-<unix time>, then every leaf certificate and key is removed. CAs and
// the service-account key stay, so agents and other servers keep trusting
// this one. It returns the backup dir.
func RotateCertificates(dataDir string) (string, error) {
	lock, err := lockfile.Acquire(dataDir)
	if err != nil {
		if errors.Is(err, lockfile.ErrHeld) {
			return "", fmt.Errorf("stop k3ha first: %w", err)
		}
		return "", err
	}
	defer lock.Release()
	l := layout.NewServer(dataDir)
	if _, err := os.Stat(l.TLSDir()); err != nil {
		return "", fmt.Errorf("no certificates in %s: %w", l.TLSDir(), err)
	}
	backup := fmt.Sprintf("%s-%d", l.TLSDir(), time.Now().Unix())
	if err := copyTree(l.TLSDir(), backup); err != nil {
		return "", fmt.Errorf("back up %s: %w", l.TLSDir(), err)
	}
	keep := map[string]bool{}
	for _, name := range []string{layout.ServerCA, layout.ClientCA, layout.RequestHeaderCA, layout.EtcdServerCA, layout.EtcdPeerCA, layout.ServiceAccount} {
		keep[l.Cert(name)], keep[l.Key(name)] = true, true
	}
	keep[l.ServiceAccountPublicKey()] = true
	err = filepath.WalkDir(l.TLSDir(), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || keep[path] {
			return err
		}
		if strings.HasSuffix(path, ".crt") || strings.HasSuffix(path, ".key") {
			return os.Remove(path)
		}
		return nil
	})
	return backup, err
}

func copyTree(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, info.Mode().Perm())
	})
}
