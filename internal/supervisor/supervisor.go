// Package supervisor serves k3ha's own paths on the API port (6443): what a
// joining node needs before it can talk Kubernetes, and health checks.
// Every other path goes on to the kube-apiserver.
package supervisor

import (
	"net/http"
	"sync/atomic"
)

// Supervisor holds what its handlers serve.
type Supervisor struct {
	// CACerts is the cluster's server CA bundle, served to anyone.
	CACerts []byte
	ready   atomic.Bool
}

// SetReady marks this server as able to serve.
func (s *Supervisor) SetReady(ready bool) { s.ready.Store(ready) }

// Wrap returns a handler serving the supervisor paths in front of apiserver.
func (s *Supervisor) Wrap(apiserver http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cacerts", s.cacerts)
	mux.HandleFunc("GET /ping", ping)
	mux.HandleFunc("GET /v1-k3ha/readyz", s.readyz)
	mux.Handle("/", apiserver)
	return mux
}

func (s *Supervisor) cacerts(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(s.CACerts)
}

func ping(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte("pong"))
}

func (s *Supervisor) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	if !s.ready.Load() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok"))
}
