package controlplane

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/k3ha/k3ha/internal/pki"
)

// anonymousHealthOnly lets unauthenticated clients reach the health
// endpoints and nothing else of the API (the supervisor serves /cacerts and
// /ping itself).
const anonymousHealthOnly = `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous:
  enabled: true
  conditions:
  - path: /livez
  - path: /readyz
  - path: /healthz
`

// WriteAuthenticationConfig writes the apiserver's authentication config.
func WriteAuthenticationConfig(path string) error {
	if err := pki.WriteFileAtomic(path, []byte(anonymousHealthOnly), 0o600); err != nil {
		return fmt.Errorf("authentication config: %w", err)
	}
	return nil
}

// EnsureEncryptionConfig creates the secrets-encryption config with a new
// AES-CBC key unless it exists; the key must never change under existing data.
func EnsureEncryptionConfig(path string) (created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("encryption config: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return false, fmt.Errorf("encryption key: %w", err)
	}
	cfg := fmt.Sprintf(`{
  "kind": "EncryptionConfiguration",
  "apiVersion": "apiserver.config.k8s.io/v1",
  "resources": [
    {
      "resources": ["secrets"],
      "providers": [
        {"aescbc": {"keys": [{"name": "k3ha-key-1", "secret": %q}]}},
        {"identity": {}}
      ]
    }
  ]
}
`, base64.StdEncoding.EncodeToString(key))
	if err := pki.WriteFileAtomic(path, []byte(cfg), 0o600); err != nil {
		return false, fmt.Errorf("encryption config: %w", err)
	}
	return true, nil
}
