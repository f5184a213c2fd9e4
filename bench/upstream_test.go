//go:build bench

package bench

// The upstream layout as kubeadm runs it: etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler as four processes, built from
// the same Kubernetes and etcd modules k3ha embeds, with kubeadm's flags and
// certificates made before the clock starts. Used by upstream_compare_test.go
// to measure k3ha side by side with it.

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/k3ha/k3ha/internal/kubeconfig"
	"github.com/k3ha/k3ha/internal/pki"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// upstreamPrograms are built from k3ha's own go.mod, so their versions are
// the ones k3ha embeds.
var upstreamPrograms = map[string]string{
	"etcd":                    "go.etcd.io/etcd/server/v3",
	"kube-apiserver":          "k8s.io/kubernetes/cmd/kube-apiserver",
	"kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
	"kube-scheduler":          "k8s.io/kubernetes/cmd/kube-scheduler",
}

var (
	upstreamOnce sync.Once
	upstreamDir  string
	upstreamErr  error
)

// upstreamBins builds the four programs into bin/upstream (once per run;
// kept while newer than go.mod and go.sum), stripped like bin/k3ha.
func upstreamBins(t *testing.T) string {
	t.Helper()
	upstreamOnce.Do(func() {
		root := repoRoot()
		upstreamDir = filepath.Join(root, "bin", "upstream")
		newest := time.Time{}
		for _, f := range []string{"go.mod", "go.sum"} {
			if st, err := os.Stat(filepath.Join(root, f)); err == nil && st.ModTime().After(newest) {
				newest = st.ModTime()
			}
		}
		for name, pkg := range upstreamPrograms {
			out := filepath.Join(upstreamDir, name)
			if st, err := os.Stat(out); err == nil && st.ModTime().After(newest) {
				continue
			}
			cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, pkg)
			cmd.Dir = root
			if b, err := cmd.CombinedOutput(); err != nil {
				upstreamErr = fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
				return
			}
		}
	})
	if upstreamErr != nil {
		t.Fatal(upstreamErr)
	}
	return upstreamDir
}

// upstream is one control plane the kubeadm way on a test host.
type upstream struct {
	host  *harness.Host
	bins  string
	dir   string // certificates, kubeconfigs, etcd's data, logs
	procs []*harness.Process
	t     *testing.T
	runs  int
}

const (
	upstreamServiceCIDR = "10.43.0.0/16" // k3ha's defaults, so both serve the same ranges
	upstreamClusterCIDR = "10.42.0.0/16"
)

// newUpstream writes the certificates and kubeconfigs kubeadm would.
func newUpstream(t *testing.T, host *harness.Host) *upstream {
	t.Helper()
	u := &upstream{host: host, bins: upstreamBins(t), dir: t.TempDir(), t: t}
	ip := host.IP
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	pkiDir := u.path("pki")
	ca, _, err := pki.LoadOrCreateCA(pkiDir, "ca", "kubernetes")
	must(err)
	etcdCA, _, err := pki.LoadOrCreateCA(pkiDir, "etcd-ca", "etcd-ca")
	must(err)
	proxyCA, _, err := pki.LoadOrCreateCA(pkiDir, "front-proxy-ca", "front-proxy-ca")
	must(err)
	leaf := func(ca *pki.CA, name string, spec pki.LeafSpec) {
		_, err := ca.EnsureLeaf(filepath.Join(pkiDir, name+".crt"), filepath.Join(pkiDir, name+".key"), spec)
		must(err)
	}
	loopback := net.ParseIP("127.0.0.1")
	leaf(ca, "apiserver", pki.LeafSpec{CommonName: "kube-apiserver", Usage: pki.ServerAuth,
		DNSNames: []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPs:      []net.IP{ip, loopback, net.ParseIP("10.43.0.1")}})
	leaf(ca, "apiserver-kubelet-client", pki.LeafSpec{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"kubeadm:cluster-admins"}, Usage: pki.ClientAuth})
	leaf(ca, "admin", pki.LeafSpec{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}, Usage: pki.ClientAuth})
	leaf(ca, "controller-manager", pki.LeafSpec{CommonName: "system:kube-controller-manager", Usage: pki.ClientAuth})
	leaf(ca, "scheduler", pki.LeafSpec{CommonName: "system:kube-scheduler", Usage: pki.ClientAuth})
	leaf(etcdCA, "etcd-server", pki.LeafSpec{CommonName: "etcd", IPs: []net.IP{ip, loopback}, DNSNames: []string{"localhost"}, Usage: pki.ServerAuth | pki.ClientAuth})
	leaf(etcdCA, "etcd-peer", pki.LeafSpec{CommonName: "etcd", IPs: []net.IP{ip, loopback}, Usage: pki.ServerAuth | pki.ClientAuth})
	leaf(etcdCA, "apiserver-etcd-client", pki.LeafSpec{CommonName: "kube-apiserver-etcd-client", Usage: pki.ClientAuth})
	leaf(proxyCA, "front-proxy-client", pki.LeafSpec{CommonName: "front-proxy-client", Usage: pki.ClientAuth})
	_, err = pki.EnsureKey(u.path("pki", "sa.key"), u.path("pki", "sa.pub"))
	must(err)
	for _, name := range []string{"admin", "controller-manager", "scheduler"} {
		must(kubeconfig.ClientCert{Server: u.url(), CAFile: u.path("pki", "ca.crt"),
			CertFile: u.path("pki", name+".crt"), KeyFile: u.path("pki", name+".key")}.Write(u.path(name+".conf"), 0o600))
	}
	return u
}

func (u *upstream) path(parts ...string) string {
	return filepath.Join(append([]string{u.dir}, parts...)...)
}
func (u *upstream) url() string { return "https://" + net.JoinHostPort(u.host.IP.String(), "6443") }

// args are kubeadm's flags for each program (v1.3x), on this host's files.
func (u *upstream) args() map[string][]string {
	ip, p := u.host.IP.String(), func(f string) string { return u.path("pki", f) }
	return map[string][]string{
		"etcd": {"--name=bench", "--data-dir=" + u.path("etcd"),
			"--listen-client-urls=https://127.0.0.1:2379,https://" + ip + ":2379", "--advertise-client-urls=https://" + ip + ":2379",
			"--listen-peer-urls=https://" + ip + ":2380", "--initial-advertise-peer-urls=https://" + ip + ":2380",
			"--initial-cluster=bench=https://" + ip + ":2380", "--listen-metrics-urls=http://127.0.0.1:2381",
			"--cert-file=" + p("etcd-server.crt"), "--key-file=" + p("etcd-server.key"), "--client-cert-auth=true", "--trusted-ca-file=" + p("etcd-ca.crt"),
			"--peer-cert-file=" + p("etcd-peer.crt"), "--peer-key-file=" + p("etcd-peer.key"), "--peer-client-cert-auth=true", "--peer-trusted-ca-file=" + p("etcd-ca.crt"),
			"--snapshot-count=10000", "--watch-progress-notify-interval=5s"},
		"kube-apiserver": {"--advertise-address=" + ip, "--allow-privileged=true", "--authorization-mode=Node,RBAC",
			"--client-ca-file=" + p("ca.crt"), "--enable-admission-plugins=NodeRestriction", "--enable-bootstrap-token-auth=true",
			"--etcd-cafile=" + p("etcd-ca.crt"), "--etcd-certfile=" + p("apiserver-etcd-client.crt"), "--etcd-keyfile=" + p("apiserver-etcd-client.key"),
			"--etcd-servers=https://127.0.0.1:2379",
			"--kubelet-client-certificate=" + p("apiserver-kubelet-client.crt"), "--kubelet-client-key=" + p("apiserver-kubelet-client.key"),
			"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
			"--proxy-client-cert-file=" + p("front-proxy-client.crt"), "--proxy-client-key-file=" + p("front-proxy-client.key"),
			"--requestheader-allowed-names=front-proxy-client", "--requestheader-client-ca-file=" + p("front-proxy-ca.crt"),
			"--requestheader-extra-headers-prefix=X-Remote-Extra-", "--requestheader-group-headers=X-Remote-Group",
			"--requestheader-username-headers=X-Remote-User", "--secure-port=6443",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local", "--service-account-key-file=" + p("sa.pub"),
			"--service-account-signing-key-file=" + p("sa.key"), "--service-cluster-ip-range=" + upstreamServiceCIDR,
			"--tls-cert-file=" + p("apiserver.crt"), "--tls-private-key-file=" + p("apiserver.key")},
		"kube-controller-manager": {"--allocate-node-cidrs=true", "--authentication-kubeconfig=" + u.path("controller-manager.conf"),
			"--authorization-kubeconfig=" + u.path("controller-manager.conf"), "--bind-address=127.0.0.1",
			"--client-ca-file=" + p("ca.crt"), "--cluster-cidr=" + upstreamClusterCIDR, "--cluster-name=kubernetes",
			"--cluster-signing-cert-file=" + p("ca.crt"), "--cluster-signing-key-file=" + p("ca.key"),
			"--controllers=*,bootstrapsigner,tokencleaner", "--kubeconfig=" + u.path("controller-manager.conf"), "--leader-elect=true",
			"--requestheader-client-ca-file=" + p("front-proxy-ca.crt"), "--root-ca-file=" + p("ca.crt"),
			"--service-account-private-key-file=" + p("sa.key"), "--service-cluster-ip-range=" + upstreamServiceCIDR,
			"--use-service-account-credentials=true"},
		"kube-scheduler": {"--authentication-kubeconfig=" + u.path("scheduler.conf"), "--authorization-kubeconfig=" + u.path("scheduler.conf"),
			"--bind-address=127.0.0.1", "--kubeconfig=" + u.path("scheduler.conf"), "--leader-elect=true"},
	}
}

// upstreamOrder is the order the programs start in (all at once, as the
// kubelet starts kubeadm's static pods: each waits for the others by
// itself); they stop in reverse, etcd last.
var upstreamOrder = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

func (u *upstream) start() {
	u.runs++
	u.procs = nil
	args := u.args()
	for _, name := range upstreamOrder {
		log := u.path(fmt.Sprintf("%s-%d.log", name, u.runs))
		u.procs = append(u.procs, u.host.Start(u.t, log, nil, filepath.Join(u.bins, name), args[name]...))
	}
}

// stop sends SIGTERM to each program in reverse order and waits for it.
func (u *upstream) stop() {
	for _, p := range slices.Backward(u.procs) {
		if err := p.Stop(stopTimeout); err != nil {
			u.t.Logf("upstream: %v", err)
		}
	}
}

func (u *upstream) exited() bool {
	for _, p := range u.procs {
		if p.Exited() {
			return true
		}
	}
	return false
}

func (u *upstream) target() target {
	tg := target{name: "upstream", ip: u.host.IP.String()}
	for _, p := range u.procs {
		tg.pids = append(tg.pids, p.PID)
	}
	return tg
}

func (u *upstream) restConfig(t *testing.T) *rest.Config {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", u.path("admin.conf"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	cfg.Timeout = 30 * time.Second
	return cfg
}

// readyzClient asks an apiserver's /readyz, which anyone may read.
var readyzClient = &http.Client{Timeout: 2 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true}}

// waitReadyz polls ip's /readyz until it answers 200 and returns when,
// from t0; exited tells whether the processes died meanwhile.
func waitReadyz(t *testing.T, ip string, t0 time.Time, exited func() bool) time.Duration {
	t.Helper()
	for {
		resp, err := readyzClient.Get("https://" + net.JoinHostPort(ip, "6443") + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(t0)
			}
		}
		if exited() {
			t.Fatalf("a process on %s exited before /readyz answered", ip)
		}
		if time.Since(t0) > 3*time.Minute {
			t.Fatalf("%s: /readyz not ok 3 minutes after the start: %v", ip, err)
		}
		time.Sleep(pollEvery)
	}
}
