// Package token parses, formats and checks the cluster join token.
//
// The secure form is
//
//	K10<sha256 of the cluster server CA bundle, hex>::<username>:<password>
//
// where username is "server" (token for joining servers) or "node" (token
// for agents). The hash lets a joining host pin the cluster CA before it
// sends any secret. A bare secret (any string not starting with "K10") is
// accepted too, but then the CA cannot be verified.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// Usernames allowed in a secure token.
const (
	RoleServer = "server"
	RoleNode   = "node"
)

const (
	securePrefix = "K10"
	hashHexLen   = sha256.Size * 2
	// validForm is appended to every parse error so the user knows what to
	// paste instead. It never includes any part of the input.
	validForm = `a valid token looks like "K10<64 hex chars: sha256 of the server CA>::server:<password>" ` +
		`(or "::node:<password>"), or a bare secret that does not start with "K10"`
)

// Token is a parsed join token.
type Token struct {
	CAHash   string // lowercase hex sha256 of the CA bundle; empty for a bare secret
	Username string // RoleServer or RoleNode; for a bare secret Parse leaves it empty
	Password string // the secret
}

// Parse reads a token as given on the command line or in a token file.
// Error messages never contain the password (nor any part of the input
// after the hash), because they end up in logs.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}, invalid("token is empty")
	}
	if !strings.HasPrefix(s, securePrefix) {
		// Bare secret: kept verbatim, colons included.
		return Token{Password: s}, nil
	}

	hash, creds, ok := strings.Cut(s[len(securePrefix):], "::")
	if !ok {
		return Token{}, invalid(`token starts with "K10" but has no "::" after the CA hash`)
	}
	if len(hash) != hashHexLen {
		return Token{}, invalid(fmt.Sprintf("CA hash is %d characters long, expected %d hex characters", len(hash), hashHexLen))
	}
	if _, err := hex.DecodeString(hash); err != nil {
		// The hex error would quote the offending byte; leave it out so
		// no input is echoed.
		return Token{}, invalid("CA hash contains non-hex characters")
	}

	user, pass, ok := strings.Cut(creds, ":")
	if !ok {
		return Token{}, invalid(`no ":" between username and password after "::"`)
	}
	if pass == "" {
		return Token{}, invalid("password is empty")
	}
	if user != RoleServer && user != RoleNode {
		// The username is not echoed: with a mangled token it may well be
		// the first half of the password.
		return Token{}, invalid(fmt.Sprintf("unknown username, only %q and %q are allowed", RoleServer, RoleNode))
	}

	return Token{
		CAHash:   strings.ToLower(hash),
		Username: user,
		Password: pass,
	}, nil
}

func invalid(what string) error {
	return fmt.Errorf("invalid join token: %s; %s", what, validForm)
}

// New builds a secure token pinning the CA bundle caPEM.
func New(caPEM []byte, username, password string) Token {
	return Token{
		CAHash:   HashCA(caPEM),
		Username: username,
		Password: password,
	}
}

// HashCA returns the lowercase hex sha256 of the CA bundle exactly as
// served, so both sides hash the same bytes.
func HashCA(caPEM []byte) string {
	sum := sha256.Sum256(caPEM)
	return hex.EncodeToString(sum[:])
}

// String returns the token in the form Parse accepts. It contains the
// password, so never log it.
func (t Token) String() string {
	if t.CAHash == "" {
		return t.Password
	}
	return securePrefix + t.CAHash + "::" + t.Username + ":" + t.Password
}

// Secure reports whether the token pins the CA.
func (t Token) Secure() bool {
	return t.CAHash != ""
}

// VerifyCA checks the CA bundle presented by a server against the hash in
// the token. A bare token cannot be checked and yields nil; the caller is
// expected to warn about it.
func (t Token) VerifyCA(caPEM []byte) error {
	if t.CAHash == "" {
		return nil
	}
	got := HashCA(caPEM)
	want := strings.ToLower(t.CAHash)
	// Constant time so a prober learns nothing from response timing.
	if subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return fmt.Errorf("CA certificate hash mismatch: token expects sha256 %s, server presented sha256 %s", want, got)
	}
	return nil
}

// GenerateSecret returns 32 random bytes, hex encoded, for use as a
// password.
func GenerateSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate token secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}
