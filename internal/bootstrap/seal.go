package bootstrap

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// ErrWrongToken means the sealed data could not be decrypted: the token
// secret differs from the one it was sealed with (or the blob was altered;
// AES-GCM cannot tell the two apart).
var ErrWrongToken = errors.New("bootstrap data cannot be decrypted with this token: it differs from the cluster's token (or the stored data is corrupt)")

// Envelope version 1 fixes the whole scheme: argon2id with the parameters
// below, AES-256-GCM. Changing any of them needs a new version so old blobs
// still open.
const (
	envelopeVersion = 1
	kdfArgon2id     = "argon2id"

	argonTime      = 1
	argonMemoryKiB = 64 * 1024
	argonThreads   = 4
	keyLen         = 32 // AES-256
	saltLen        = 16
)

// envelope is the stored form; []byte fields are base64 in JSON.
type envelope struct {
	Version    int    `json:"version"`
	KDF        string `json:"kdf"`
	Salt       []byte `json:"salt"`
	Nonce      []byte `json:"nonce"`
	Ciphertext []byte `json:"ciphertext"`
}

// Seal encrypts d with a key derived from the token secret. Each call uses
// a fresh salt and nonce, so sealing the same data twice gives different
// blobs. Argon2id with 64 MiB takes tens of milliseconds: start-up only.
func Seal(d Data, secret string) ([]byte, error) {
	if secret == "" {
		return nil, errors.New("seal bootstrap data: token secret is empty")
	}
	plaintext, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("seal bootstrap data: encode: %w", err)
	}
	// The plaintext holds CA keys; do not leave it lying in the heap.
	defer clear(plaintext)

	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("seal bootstrap data: salt: %w", err)
	}
	aead, err := newAEAD(secret, salt)
	if err != nil {
		return nil, fmt.Errorf("seal bootstrap data: %w", err)
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal bootstrap data: nonce: %w", err)
	}
	env := envelope{
		Version:    envelopeVersion,
		KDF:        kdfArgon2id,
		Salt:       salt,
		Nonce:      nonce,
		Ciphertext: aead.Seal(nil, nonce, plaintext, additionalData(envelopeVersion, kdfArgon2id)),
	}
	blob, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("seal bootstrap data: encode envelope: %w", err)
	}
	return blob, nil
}

// Open decrypts a blob made by Seal. It returns an error wrapping
// ErrWrongToken when authentication fails, and other errors for a blob
// that is not a version 1 envelope.
func Open(blob []byte, secret string) (Data, error) {
	var env envelope
	if err := json.Unmarshal(blob, &env); err != nil {
		return Data{}, fmt.Errorf("open bootstrap data: malformed envelope: %w", err)
	}
	if env.Version != envelopeVersion {
		return Data{}, fmt.Errorf("open bootstrap data: unsupported envelope version %d (this k3ha reads version %d)", env.Version, envelopeVersion)
	}
	if env.KDF != kdfArgon2id {
		return Data{}, fmt.Errorf("open bootstrap data: unsupported key derivation %q in a version %d envelope", env.KDF, envelopeVersion)
	}
	if len(env.Salt) != saltLen {
		return Data{}, fmt.Errorf("open bootstrap data: malformed envelope: salt is %d bytes, want %d", len(env.Salt), saltLen)
	}
	if secret == "" {
		return Data{}, errors.New("open bootstrap data: token secret is empty")
	}
	aead, err := newAEAD(secret, env.Salt)
	if err != nil {
		return Data{}, fmt.Errorf("open bootstrap data: %w", err)
	}
	if len(env.Nonce) != aead.NonceSize() {
		return Data{}, fmt.Errorf("open bootstrap data: malformed envelope: nonce is %d bytes, want %d", len(env.Nonce), aead.NonceSize())
	}
	if len(env.Ciphertext) < aead.Overhead() {
		return Data{}, fmt.Errorf("open bootstrap data: malformed envelope: ciphertext is %d bytes, shorter than the %d-byte tag", len(env.Ciphertext), aead.Overhead())
	}
	plaintext, err := aead.Open(nil, env.Nonce, env.Ciphertext, additionalData(env.Version, env.KDF))
	if err != nil {
		// GCM reports only "message authentication failed"; say what it
		// means for the user instead.
		return Data{}, fmt.Errorf("open bootstrap data: %w", ErrWrongToken)
	}
	defer clear(plaintext)
	var d Data
	if err := json.Unmarshal(plaintext, &d); err != nil {
		return Data{}, fmt.Errorf("open bootstrap data: decode contents: %w", err)
	}
	if d.Files == nil {
		d.Files = map[string][]byte{}
	}
	return d, nil
}

func newAEAD(secret string, salt []byte) (cipher.AEAD, error) {
	key := argon2.IDKey([]byte(secret), salt, argonTime, argonMemoryKiB, argonThreads, keyLen)
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}

// additionalData binds the ciphertext to the envelope's header, so the
// version and KDF cannot be swapped without failing authentication.
func additionalData(version int, kdf string) []byte {
	return fmt.Appendf(nil, "k3ha-bootstrap/v%d/%s", version, kdf)
}
