//go:build tools

// Package conformance pins the upstream Kubernetes conformance suite
// (e2e.test) and its runner (ginkgo) to the Kubernetes k3ha embeds. It is
// a module of its own so that the suite's dependencies never enter k3ha's;
// `make conformance-tools` builds both into bin/conformance/; the test
// images' programs (agnhost and the like) come from here too.
package conformance

import (
	_ "github.com/onsi/ginkgo/v2/ginkgo"
	_ "k8s.io/kubernetes/test/e2e"
	_ "k8s.io/kubernetes/test/images/agnhost"
	_ "k8s.io/kubernetes/test/images/nonewprivs"
	_ "k8s.io/kubernetes/test/images/regression-issue-74839"
	_ "k8s.io/sample-apiserver"
)
