// Package version is k3ha's release, stamped at build time with -ldflags.
package version

import (
	"fmt"
	"runtime"
)

// Set by the Makefile; the Kubernetes libraries' own version variables are
// stamped with the same values so that /version and kubectl agree.
var (
	Version   = "v0.0.0-dev"
	GitCommit = "unknown"
)

// String is the one-line version report of `k3ha --version`.
func String() string {
	return fmt.Sprintf("k3ha version %s (%s) %s", Version, GitCommit, runtime.Version())
}
