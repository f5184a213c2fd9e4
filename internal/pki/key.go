package pki

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// EnsureKey creates keyFile (ECDSA P-256, PKCS#8 PEM) if it is missing and,
// when pubFile != "", keeps pubFile holding its public key. Used for the
// service-account signing key. An existing key that cannot be read or
// parsed is an error rather than replaced: a new key would invalidate
// every service-account token already handed out.
func EnsureKey(keyFile, pubFile string) (created bool, err error) {
	var key crypto.Signer
	data, err := os.ReadFile(keyFile)
	switch {
	case err == nil:
		key, err = parseKeyPEM(data)
		if err != nil {
			return false, fmt.Errorf("ensure key: %s: %w", keyFile, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		ecKey, err := newKey()
		if err != nil {
			return false, fmt.Errorf("ensure key %s: %w", keyFile, err)
		}
		keyPEM, err := encodeKey(ecKey)
		if err != nil {
			return false, fmt.Errorf("ensure key %s: %w", keyFile, err)
		}
		if err := WriteFileAtomic(keyFile, keyPEM, keyMode); err != nil {
			return false, fmt.Errorf("ensure key: %w", err)
		}
		key, created = ecKey, true
	default:
		return false, fmt.Errorf("ensure key: read %s: %w", keyFile, err)
	}

	if pubFile == "" {
		return created, nil
	}
	pubPEM, err := encodePublicKey(key.Public())
	if err != nil {
		return created, fmt.Errorf("ensure key %s: %w", keyFile, err)
	}
	// Rewrite the public key only when it is missing or stale, so an
	// unchanged file keeps its mtime and nothing reloads needlessly.
	if old, err := os.ReadFile(pubFile); err == nil && bytes.Equal(old, pubPEM) {
		return created, nil
	}
	if err := WriteFileAtomic(pubFile, pubPEM, certMode); err != nil {
		return created, fmt.Errorf("ensure public key for %s: %w", keyFile, err)
	}
	return created, nil
}
