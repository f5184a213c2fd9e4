// Package pki creates and maintains the control plane's certificates:
// self-signed CAs made on first start and leaf certificates that are kept
// as long as they still fit what is asked for.
package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

const (
	caValidity = 10 * 365 * 24 * time.Hour
	// clockSkew backdates NotBefore so hosts whose clocks lag a little
	// accept a certificate issued just now.
	clockSkew = time.Hour
)

// CA is a certificate authority that can sign leaf certificates.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte // the bundle as on disk
}

func caFiles(dir, name string) (certFile, keyFile string) {
	base := filepath.Join(dir, name)
	return base + ".crt", base + ".key"
}

// LoadOrCreateCA loads <dir>/<name>.crt and <dir>/<name>.key, creating a
// self-signed CA (10 years, CN=commonName) when either is missing. created
// is true when a new CA was made. A cert/key pair that does not match is an
// error naming the files.
func LoadOrCreateCA(dir, name, commonName string) (ca *CA, created bool, err error) {
	certFile, keyFile := caFiles(dir, name)
	certExists, err := fileExists(certFile)
	if err != nil {
		return nil, false, err
	}
	keyExists, err := fileExists(keyFile)
	if err != nil {
		return nil, false, err
	}
	if certExists && keyExists {
		ca, err := LoadCA(dir, name)
		if err != nil {
			return nil, false, err
		}
		return ca, false, nil
	}
	if certExists != keyExists {
		// Replacing half a CA would silently invalidate every certificate it signed.
		return nil, false, fmt.Errorf("CA %s is incomplete: only one of %s and %s exists; restore the missing file (or remove both to start a new cluster)", name, certFile, keyFile)
	}

	ca, keyPEM, err := newCA(commonName)
	if err != nil {
		return nil, false, fmt.Errorf("create CA %s: %w", commonName, err)
	}
	if err := writePair(certFile, keyFile, ca.CertPEM, keyPEM); err != nil {
		return nil, false, fmt.Errorf("create CA %s: %w", commonName, err)
	}
	return ca, true, nil
}

// LoadCA loads <dir>/<name>.crt and <dir>/<name>.key. The first
// certificate in the file is the signing one; the rest of the bundle is
// kept in CertPEM.
func LoadCA(dir, name string) (*CA, error) {
	certFile, keyFile := caFiles(dir, name)
	certs, certPEM, err := readCerts(certFile)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	key, err := readKey(keyFile)
	if err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	ca := &CA{Cert: certs[0], Key: key, CertPEM: certPEM}
	if err := ca.check(certFile, keyFile); err != nil {
		return nil, fmt.Errorf("load CA: %w", err)
	}
	return ca, nil
}

// WriteCA writes the given cert/key PEM as <dir>/<name>.crt/.key, e.g.
// when a joining server receives the cluster's CAs. The pair is validated
// first so that bad material never replaces a working CA on disk.
func WriteCA(dir, name string, certPEM, keyPEM []byte) error {
	certFile, keyFile := caFiles(dir, name)
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return fmt.Errorf("write CA %s: certificate: %w", certFile, err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return fmt.Errorf("write CA %s: private key: %w", keyFile, err)
	}
	ca := &CA{Cert: certs[0], Key: key, CertPEM: certPEM}
	if err := ca.check(certFile, keyFile); err != nil {
		return fmt.Errorf("write CA: %w", err)
	}
	if err := writePair(certFile, keyFile, certPEM, keyPEM); err != nil {
		return fmt.Errorf("write CA: %w", err)
	}
	return nil
}

// check makes sure the pair can actually sign: a mismatched key would
// produce certificates nobody can verify.
func (ca *CA) check(certFile, keyFile string) error {
	if !samePublicKey(ca.Key.Public(), ca.Cert.PublicKey) {
		return fmt.Errorf("private key %s does not match certificate %s", keyFile, certFile)
	}
	if !ca.Cert.IsCA || !ca.Cert.BasicConstraintsValid {
		return fmt.Errorf("certificate %s is not a CA certificate", certFile)
	}
	return nil
}

func newCA(commonName string) (*CA, []byte, error) {
	key, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	skid, err := keyID(key.Public())
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		IsCA:                  true,
		BasicConstraintsValid: true,
		SubjectKeyId:          skid,
		// Self-signed: the issuer's key is our own key.
		AuthorityKeyId: skid,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse new CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return &CA{Cert: cert, Key: key, CertPEM: encodeCert(der)}, keyPEM, nil
}

// writePair writes the key before the certificate: if we stop in between,
// the certificate is missing or no longer matches the key, which the next
// load detects (a missing CA cert means a new CA, a stale leaf is reissued).
func writePair(certFile, keyFile string, certPEM, keyPEM []byte) error {
	if err := WriteFileAtomic(keyFile, keyPEM, keyMode); err != nil {
		return err
	}
	return WriteFileAtomic(certFile, certPEM, certMode)
}

func fileExists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("check %s: %w", path, err)
	}
}

// LoadCertPool builds a pool from the certificates in files. Unlike
// CertPool.AppendCertsFromPEM it fails on a file without certificates or
// with a broken one, so a misconfigured path does not go unnoticed.
func LoadCertPool(files ...string) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	for _, f := range files {
		certs, _, err := readCerts(f)
		if err != nil {
			return nil, fmt.Errorf("load cert pool: %w", err)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	return pool, nil
}
