// Package ext stands in for Traefik's dynamic configuration extension
// point. Traefik's own build replaces this module with a directory of its
// repository that the module proxy does not serve; its open-source build
// adds no fields, so two empty structs are the whole extension.
package ext

// HTTP is embedded in Traefik's HTTP configuration.
type HTTP struct{}

// Router is embedded in every Traefik HTTP router.
type Router struct{}
