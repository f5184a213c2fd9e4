package pki

import (
	"crypto/x509"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// CertInfo describes one certificate file.
type CertInfo struct {
	File     string
	Subject  string
	IsCA     bool
	Usages   []string
	NotAfter time.Time
}

// Status is OK, WARNING (renewed at the next start, or soon while
// running: under 90 days left), EXPIRED or NOT YET VALID.
func (c CertInfo) Status(now time.Time) string {
	switch {
	case now.After(c.NotAfter):
		return "EXPIRED"
	case now.Add(renewBefore).After(c.NotAfter):
		return "WARNING"
	}
	return "OK"
}

// Inspect reads every certificate (*.crt) under dir, sorted by file.
func Inspect(dir string) ([]CertInfo, error) {
	var out []CertInfo
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".crt") {
			return nil
		}
		certs, _, err := readCerts(path)
		if err != nil {
			return nil // not ours to judge; check reports what it can read
		}
		c := certs[0]
		var usages []string
		for _, u := range c.ExtKeyUsage {
			switch u {
			case x509.ExtKeyUsageServerAuth:
				usages = append(usages, "ServerAuth")
			case x509.ExtKeyUsageClientAuth:
				usages = append(usages, "ClientAuth")
			}
		}
		if c.IsCA {
			usages = append(usages, "CertSign")
		}
		out = append(out, CertInfo{File: path, Subject: c.Subject.String(), IsCA: c.IsCA, Usages: usages, NotAfter: c.NotAfter})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].File < out[j].File })
	return out, err
}
