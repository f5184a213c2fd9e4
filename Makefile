# k3ha build and test entry points.
K8S_VERSION := v1.37.2
COMMIT      := $(shell git rev-parse --short=8 HEAD 2>/dev/null || echo dev)
DIRTY       := $(shell test -n "$$(git status --porcelain 2>/dev/null)" && echo dirty || echo clean)
VERSION     := $(K8S_VERSION)+k3ha.$(COMMIT)
BUILD_DATE  := $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
MAJOR       := $(word 1,$(subst ., ,$(K8S_VERSION:v%=%)))
MINOR       := $(word 2,$(subst ., ,$(K8S_VERSION:v%=%)))

# The Kubernetes libraries report their own version from these variables;
# stamping them makes /version and `kubectl version` show k3ha's.
VERSION_PKGS := k8s.io/component-base/version k8s.io/client-go/pkg/version
LDFLAGS := -s -w \
	-X github.com/k3ha/k3ha/internal/version.Version=$(VERSION) \
	-X github.com/k3ha/k3ha/internal/version.GitCommit=$(COMMIT) \
	$(foreach p,$(VERSION_PKGS),-X $(p).gitVersion=$(VERSION) -X $(p).gitCommit=$(COMMIT) \
		-X $(p).gitTreeState=$(DIRTY) -X $(p).buildDate=$(BUILD_DATE) -X $(p).gitMajor=$(MAJOR) -X $(p).gitMinor=$(MINOR))

# containerd is built without the storage drivers small nodes do not use.
TAGS := no_btrfs no_devmapper no_zfs
SHIM := github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2

.PHONY: build test unit e2e robustness-short robustness vet bench clean conformance-tools conformance

# bin/k3ha is the one file a machine needs: k3ha's own code, with the
# programs a node runs beside it appended as its payload (internal/payload):
# runc, the containerd runc shim (a program of its own: containerd's plugin
# registry clashes otherwise), the CNI plugins, crictl, and the packaged
# components' images. Each is built from its Go module in components/ (own
# go.mod each, so their dependencies never mix with k3ha's).
STAGE    := bin/.stage
PROGRAMS := $(STAGE)/programs
PAYLOAD  := $(STAGE)/payload
IMAGES   := coredns metrics-server local-path-provisioner local-path-helper svclb traefik
CNI      := bridge host-local loopback portmap
BINS     := containerd-shim-runc-v2 runc crictl $(CNI)
COMPONENT_BUILD := CGO_ENABLED=0 go build -trimpath -ldflags '-s -w'

build: $(foreach b,$(BINS),$(PAYLOAD)/bin/$(b)) $(foreach i,$(IMAGES),$(PAYLOAD)/images/$(i).tar)
	go build -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o bin/k3ha.new ./cmd/k3ha
	go run ./build/pack append bin/k3ha.new $(PAYLOAD)
	mv bin/k3ha.new bin/k3ha

$(PAYLOAD)/bin/containerd-shim-runc-v2: go.mod go.sum
	CGO_ENABLED=0 go build -tags '$(TAGS)' -ldflags '-s -w' -o $@ $(SHIM)
# runc needs cgo (its nsenter is C) and libseccomp; linked statically so
# that it runs on any distribution.
$(PAYLOAD)/bin/runc: $(wildcard components/runc/go.*)
	@pkg-config --exists libseccomp || { echo "runc needs libseccomp's static library and pkg-config: apt-get install pkg-config libseccomp-dev"; exit 1; }
	cd components/runc && CGO_ENABLED=1 go build -trimpath -tags 'seccomp netgo osusergo' \
		-ldflags "-s -w -extldflags -static" -o $(CURDIR)/$@ github.com/opencontainers/runc
$(PAYLOAD)/bin/crictl: $(wildcard components/crictl/go.*)
	cd components/crictl && $(COMPONENT_BUILD) -o $(CURDIR)/$@ sigs.k8s.io/cri-tools/cmd/crictl
$(PAYLOAD)/bin/bridge $(PAYLOAD)/bin/loopback: $(PAYLOAD)/bin/%: $(wildcard components/cni/go.*)
	cd components/cni && $(COMPONENT_BUILD) -o $(CURDIR)/$@ github.com/containernetworking/plugins/plugins/main/$*
$(PAYLOAD)/bin/host-local: $(wildcard components/cni/go.*)
	cd components/cni && $(COMPONENT_BUILD) -o $(CURDIR)/$@ github.com/containernetworking/plugins/plugins/ipam/host-local
$(PAYLOAD)/bin/portmap: $(wildcard components/cni/go.*)
	cd components/cni && $(COMPONENT_BUILD) -o $(CURDIR)/$@ github.com/containernetworking/plugins/plugins/meta/portmap

$(PAYLOAD)/images/%.tar: $(PROGRAMS)/% internal/packaged/images.go
	go run ./build/pack image $* $< $@

$(PROGRAMS)/coredns: $(wildcard components/coredns/*)
	cd components/coredns && $(COMPONENT_BUILD) -o $(CURDIR)/$@ .
$(PROGRAMS)/metrics-server: $(wildcard components/metrics-server/*)
	cd components/metrics-server && $(COMPONENT_BUILD) -o $(CURDIR)/$@ sigs.k8s.io/metrics-server/cmd/metrics-server
$(PROGRAMS)/local-path-provisioner: $(wildcard components/local-path-provisioner/*)
	cd components/local-path-provisioner && $(COMPONENT_BUILD) -o $(CURDIR)/$@ github.com/rancher/local-path-provisioner
$(PROGRAMS)/local-path-helper: $(wildcard components/helpers/go.* components/helpers/sh/*)
	cd components/helpers && $(COMPONENT_BUILD) -o $(CURDIR)/$@ ./sh
$(PROGRAMS)/svclb: $(wildcard components/helpers/go.* components/helpers/svclb/*)
	cd components/helpers && $(COMPONENT_BUILD) -o $(CURDIR)/$@ ./svclb
# Traefik builds on copies of three modules with k3ha's files laid over
# them (components/traefik/stage.sh says why), staged first.
TRAEFIK := components/traefik
$(PROGRAMS)/traefik: $(wildcard $(TRAEFIK)/go.* $(TRAEFIK)/*.sh $(TRAEFIK)/*.txt $(TRAEFIK)/ext/*) $(shell find $(TRAEFIK)/overlay -type f)
	$(TRAEFIK)/stage.sh $(CURDIR)/$(STAGE)/mod
	cd $(TRAEFIK) && CGO_ENABLED=0 go build -trimpath \
		-ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$$(go list -m -f '{{.Version}}' github.com/traefik/traefik/v3)" \
		-o $(CURDIR)/$@ github.com/traefik/traefik/v3/cmd/traefik

# The README's test command: fast unit tests, then the end-to-end suite on
# real processes, then the short robustness profile (each fault once).
test: unit e2e robustness-short

unit:
	go test -short -count=1 ./internal/... ./test/e2e/harness/ ./test/robustness/
	cd components/helpers && go test -short -count=1 ./...

# TestMain builds the binary once (make build) for the whole suite.
e2e:
	go test -tags e2e -count=1 -p 1 -timeout 40m -v ./test/e2e/

# Histories under faults (test/robustness): the short profile in make test;
# the long one injects random faults for ROBUSTNESS_DURATION per datastore
# (embedded etcd, then PostgreSQL) and adds its runs to bench/RESULTS.md.
# Replay a run with ROBUSTNESS_SEED=<the seed it printed>.
ROBUSTNESS_DURATION ?= 30m
ROBUSTNESS_SEED     ?= 0
robustness-short:
	go test -tags robustness -count=1 -p 1 -timeout 40m -v ./test/robustness/ -args -robustness.seed=$(ROBUSTNESS_SEED)

robustness:
	go test -tags robustness -count=1 -p 1 -timeout 4h -v ./test/robustness/ -args \
		-robustness.duration=$(ROBUSTNESS_DURATION) -robustness.seed=$(ROBUSTNESS_SEED) -robustness.results=$(CURDIR)/bench/RESULTS.md

vet:
	go vet ./...
	cd components/helpers && go vet ./...
	go vet -tags e2e ./test/e2e/
	go vet -tags bench ./bench/
	go vet -tags robustness ./test/robustness/

# Benchmarks of real servers (root, like e2e); not part of `make test`. They
# write their figures into bench/RESULTS.md. The cold build is separate:
# bench/coldbuild.sh (about 10 minutes on two cores).
bench:
	go test -tags bench -count=1 -p 1 -timeout 60m -v ./bench/

clean:
	rm -rf bin

# The upstream conformance suite for the Kubernetes k3ha embeds, from
# conformance/'s own module (its go.mod copies this one's replace block; a
# unit test checks they agree). e2e.test is stamped with the Kubernetes
# version: unstamped it reports v0.0.0, and version-checking specs fail.
CONFORMANCE := bin/conformance
E2E_LDFLAGS := -s -w $(foreach p,$(VERSION_PKGS),-X $(p).gitVersion=$(K8S_VERSION) \
	-X $(p).gitMajor=$(MAJOR) -X $(p).gitMinor=$(MINOR) -X $(p).gitTreeState=clean)
conformance-tools: $(CONFORMANCE)/e2e.test $(CONFORMANCE)/ginkgo $(CONFORMANCE)/busybox
$(CONFORMANCE)/e2e.test: conformance/go.mod conformance/go.sum
	cd conformance && go test -c -trimpath -ldflags '$(E2E_LDFLAGS)' -o $(CURDIR)/$@ k8s.io/kubernetes/test/e2e
$(CONFORMANCE)/ginkgo: conformance/go.mod conformance/go.sum
	cd conformance && go build -trimpath -o $(CURDIR)/$@ github.com/onsi/ginkgo/v2/ginkgo
$(CONFORMANCE)/busybox: conformance/busybox.sh
	conformance/busybox.sh $@ $(CONFORMANCE)/work/busybox

# The whole conformance suite on a cluster in network namespaces (about an
# hour on two cores; not part of make test): CONFORMANCE_SERVERS=3 for the
# HA topology, CONFORMANCE_FOCUS to run part of it. Writes
# conformance/RESULTS.md and the JUnit report beside it.
conformance: conformance-tools build
	@for p in dig:bind9-dnsutils curl:curl nc.openbsd:netcat-openbsd; do command -v $${p%%:*} >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq --no-install-recommends $${p#*:}; }; done
	K3HA_BIN=$(CURDIR)/bin/k3ha go test -tags conformance -count=1 -p 1 -timeout 5h -v ./test/conformance/
