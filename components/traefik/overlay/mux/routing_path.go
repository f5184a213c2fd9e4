// This file is added to gorilla/mux in k3ha's Traefik build. Traefik is
// built against a fork of mux that the module proxy does not serve; the
// fork's one API Traefik's default (v3) rule syntax needs is the context
// key under which Traefik stores the path it routes on, and Traefik's own
// muxer reads that key itself. UseRoutingPath is kept for the v2 rule
// syntax's Path matchers, which therefore match the decoded path.
package mux

// RoutingPathContextKey is the type of RoutingPathKey.
type RoutingPathContextKey int

// RoutingPathKey is the request context key of the routing path.
const RoutingPathKey RoutingPathContextKey = iota

// UseRoutingPath returns r unchanged: routes match req.URL.Path.
func (r *Router) UseRoutingPath() *Router { return r }
