// This file is added to abbot/go-http-auth in k3ha's Traefik build.
// Traefik is built against a fork the module proxy does not serve; these
// are the two functions of that fork Traefik calls, on the published
// library's own password checks.
package auth

import (
	"net/http"
	"strings"
)

// CheckSecret reports whether password matches secret, an htpasswd entry
// (bcrypt, {SHA} or $apr1$ MD5), as BasicAuth.CheckAuth decides it.
func CheckSecret(password, secret string) bool {
	compare := compareFuncs[0].compare
	for _, cmp := range compareFuncs[1:] {
		if strings.HasPrefix(secret, cmp.prefix) {
			compare = cmp.compare
			break
		}
	}
	return compare([]byte(secret), []byte(password)) == nil
}

// RequireAuthStale asks for credentials like RequireAuth, marking the
// client's nonce stale (RFC 7616) so it retries without asking its user.
func (a *DigestAuth) RequireAuthStale(w http.ResponseWriter, r *http.Request) {
	a.RequireAuth(staleChallenge{ResponseWriter: w, header: a.Headers.V().Authenticate}, r)
}

type staleChallenge struct {
	http.ResponseWriter
	header string
}

func (s staleChallenge) WriteHeader(code int) {
	if v := s.Header().Get(s.header); v != "" {
		s.Header().Set(s.header, v+", stale=true")
	}
	s.ResponseWriter.WriteHeader(code)
}
