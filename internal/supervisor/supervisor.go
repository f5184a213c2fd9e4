// Package supervisor serves k3ha's own paths on the API port (6443): what a
// joining node needs before it can talk Kubernetes, and health checks.
// Every other path goes on to the kube-apiserver.
package supervisor

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/token"
)

// Supervisor holds what its handlers serve. Fields left nil make their path
// answer 404 (e.g. /db/info without embedded etcd).
type Supervisor struct {
	// CACerts is the cluster's server CA bundle, served to anyone.
	CACerts []byte
	// Secrets are the current server and agent secrets: the server's
	// unlocks everything, the agents' only what agents need. A function,
	// since a token rotation changes them while the server runs.
	Secrets func() (server, agent string)
	// Critical are this server's cluster-wide settings, for the join-time check.
	Critical config.Critical
	// Bootstrap returns the cluster's shared secret files.
	Bootstrap func() (BootstrapFiles, error)
	// Members lists the etcd members.
	Members func(ctx context.Context) ([]Member, error)
	// APIServers lists the address of every server's API port.
	APIServers func(ctx context.Context) ([]string, error)
	// NodeCerts issues a node's certificates; an error wrapping ErrDenied is
	// answered 403 with its message.
	NodeCerts func(ctx context.Context, req NodeCertsRequest) (NodeCerts, error)
	// Operation finds a server operation (POST /v1-k3ha/op/<name>, server
	// token only): what `k3ha etcd-snapshot`, `k3ha token` and `k3ha
	// secrets-encrypt` ask of a running server.
	Operation func(name string) (Operation, bool)
	// StaticDir holds the files served under /static/ to nodes and
	// servers (chart archives in charts/, K3s's convention).
	StaticDir string

	ready atomic.Bool
}

// Operation carries out a request whose JSON body is in; its answer is
// sent as JSON. An error is answered 422 with its message.
type Operation func(ctx context.Context, in []byte) (any, error)

// SetReady marks this server as able to serve.
func (s *Supervisor) SetReady(ready bool) { s.ready.Store(ready) }

// Wrap returns a handler serving the supervisor paths in front of apiserver.
func (s *Supervisor) Wrap(apiserver http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathCACerts, s.cacerts)
	mux.HandleFunc("GET "+PathPing, ping)
	mux.HandleFunc("GET "+PathReadyz, s.readyz)
	mux.Handle("GET "+PathConfig, s.require(roleNode, s.config))
	mux.Handle("GET "+PathServerBootstrap, s.require(roleServer, s.bootstrap))
	mux.Handle("GET "+PathAPIServers, s.require(roleNode, s.apiservers))
	mux.HandleFunc("GET "+PathDBInfo, s.dbinfo)
	mux.Handle("POST "+PathNodeCerts, s.require(roleNode, s.nodeCerts))
	mux.Handle("POST "+PathOperation+"{name}", s.require(roleServer, s.operation))
	mux.Handle("GET "+PathStatic, s.require(roleNode, s.static))
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

// static serves a file under StaticDir: never a directory, and nothing
// outside it (os.Root refuses .. and links that leave it).
func (s *Supervisor) static(w http.ResponseWriter, r *http.Request) {
	if s.StaticDir == "" {
		http.NotFound(w, r)
		return
	}
	root, err := os.OpenRoot(s.StaticDir)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer root.Close()
	name := strings.TrimPrefix(r.URL.Path, PathStatic)
	f, err := root.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		http.NotFound(w, r)
		return
	}
	http.ServeContent(w, r, name, st.ModTime(), f)
}

func (s *Supervisor) config(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.Critical)
}

func (s *Supervisor) bootstrap(w http.ResponseWriter, _ *http.Request) {
	if s.Bootstrap == nil {
		http.NotFound(w, nil)
		return
	}
	files, err := s.Bootstrap()
	if err != nil {
		slog.Error("serving bootstrap data failed", "err", err)
		http.Error(w, "bootstrap data unavailable", http.StatusInternalServerError)
		return
	}
	writeJSON(w, files)
}

func (s *Supervisor) apiservers(w http.ResponseWriter, r *http.Request) {
	if s.APIServers == nil {
		http.NotFound(w, r)
		return
	}
	list, err := s.APIServers(r.Context())
	if err != nil {
		http.Error(w, "listing apiservers: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, list)
}

// ErrDenied marks a request the server refuses for a reason it explains.
var ErrDenied = errors.New("refused")

func (s *Supervisor) nodeCerts(w http.ResponseWriter, r *http.Request) {
	if s.NodeCerts == nil {
		http.NotFound(w, r)
		return
	}
	var req NodeCertsRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	certs, err := s.NodeCerts(r.Context(), req)
	switch {
	case errors.Is(err, ErrDenied):
		slog.Warn("node certificates refused", "node", req.NodeName, "from", r.RemoteAddr, "err", err)
		http.Error(w, err.Error(), http.StatusForbidden)
	case err != nil:
		slog.Error("issuing node certificates failed", "node", req.NodeName, "err", err)
		http.Error(w, "issuing node certificates failed: "+err.Error(), http.StatusServiceUnavailable)
	default:
		writeJSON(w, certs)
	}
}

func (s *Supervisor) operation(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var op Operation
	ok := false
	if s.Operation != nil {
		op, ok = s.Operation(name)
	}
	if !ok {
		http.Error(w, "no such operation on this server: "+name, http.StatusNotFound)
		return
	}
	in, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	out, err := op(r.Context(), in)
	if err != nil {
		slog.Warn("operation failed", "operation", name, "err", err)
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	writeJSON(w, out)
}

// dbinfo answers servers, and anything on this host's loopback.
func (s *Supervisor) dbinfo(w http.ResponseWriter, r *http.Request) {
	if !fromLoopback(r) {
		if code := s.authorize(r, roleServer); code != http.StatusOK {
			deny(w, code)
			return
		}
	}
	if s.Members == nil {
		http.Error(w, "this server does not run embedded etcd", http.StatusNotFound)
		return
	}
	members, err := s.Members(r.Context())
	if err != nil {
		http.Error(w, "listing etcd members: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, DBInfo{Members: members})
}

type role int

const (
	roleNode role = iota + 1
	roleServer
)

// require lets the handler run only for a token of at least role need.
func (s *Supervisor) require(need role, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if code := s.authorize(r, need); code != http.StatusOK {
			deny(w, code)
			return
		}
		h(w, r)
	})
}

// authorize checks basic auth: 401 for missing or wrong credentials, 403 for
// a valid token of a lesser role.
func (s *Supervisor) authorize(r *http.Request, need role) int {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return http.StatusUnauthorized
	}
	var have role
	serverSecret, agentSecret := s.Secrets()
	switch {
	case user == token.RoleServer && equal(pass, serverSecret):
		have = roleServer
	case user == token.RoleNode && (equal(pass, agentSecret) || equal(pass, serverSecret)):
		have = roleNode
	default:
		return http.StatusUnauthorized
	}
	if have < need {
		return http.StatusForbidden
	}
	return http.StatusOK
}

// equal compares in constant time; an unset secret matches nothing.
func equal(given, secret string) bool {
	return secret != "" && subtle.ConstantTimeCompare([]byte(given), []byte(secret)) == 1
}

func deny(w http.ResponseWriter, code int) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="k3ha"`)
		http.Error(w, "token rejected", code)
		return
	}
	http.Error(w, "this token's role may not read this path", code)
}

func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("writing response failed", "err", err)
	}
}
