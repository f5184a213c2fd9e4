package supervisor

import (
	"bytes"
	"net/http"
)

// leaderChanged is the message of etcd's error for a write a leader change
// caught in flight (the datastore's fail-fast answer): the write was not
// applied and may be sent again.
var leaderChanged = []byte("etcdserver: leader changed")

// retryWhenLeaderChanged turns the apiserver's 500 for a write a leader change caught
// into 503 with Retry-After, which clients (client-go, kubectl) retry by
// themselves. Other answers pass through untouched; only a 500's body is
// held back, to read it.
func retryWhenLeaderChanged(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &retryWriter{ResponseWriter: w}
		next.ServeHTTP(rw, r)
		rw.finish()
	})
}

type retryWriter struct {
	http.ResponseWriter
	held bool // a 500 whose body is being read
	body bytes.Buffer
}

func (w *retryWriter) WriteHeader(code int) {
	if code == http.StatusInternalServerError {
		w.held = true
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *retryWriter) Write(p []byte) (int, error) {
	if w.held {
		return w.body.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the real writer (flushes for
// watches, hijacks for exec and port-forward).
func (w *retryWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *retryWriter) finish() {
	if !w.held {
		return
	}
	code := http.StatusInternalServerError
	if bytes.Contains(w.body.Bytes(), leaderChanged) {
		code = http.StatusServiceUnavailable
		w.ResponseWriter.Header().Set("Retry-After", "1")
	}
	w.ResponseWriter.WriteHeader(code)
	_, _ = w.ResponseWriter.Write(w.body.Bytes())
}
