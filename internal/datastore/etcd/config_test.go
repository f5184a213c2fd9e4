package etcd

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/k3ha/k3ha/internal/layout"
)

// loadRendered writes s as etcd's config file and parses it with etcd.
func loadRendered(t *testing.T, s settings) *embed.Config {
	t.Helper()
	data, err := s.marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := embed.ConfigFromFile(path)
	if err != nil {
		t.Fatalf("etcd rejects the rendered config: %v\n%s", err, data)
	}
	return cfg
}

func urlStrings(t *testing.T, cfg *embed.Config) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, list := range map[string]any{
		"listen-client":    cfg.ListenClientUrls,
		"advertise-client": cfg.AdvertiseClientUrls,
		"listen-peer":      cfg.ListenPeerUrls,
		"advertise-peer":   cfg.AdvertisePeerUrls,
		"metrics":          cfg.ListenMetricsUrls,
		"listen-http":      cfg.ListenClientHttpUrls,
	} {
		for _, u := range list.([]url.URL) {
			out[name] = append(out[name], u.String())
		}
	}
	return out
}

func TestRenderDefaults(t *testing.T) {
	l := layout.NewServer(t.TempDir())
	cfg := Config{Name: "node-a", Layout: l, NodeIP: net.ParseIP("10.0.0.5")}
	ec := loadRendered(t, render(cfg, nil, "node-a=https://10.0.0.5:2380", "new"))

	if ec.Name != "node-a" || ec.Dir != l.EtcdDir() {
		t.Errorf("name/data-dir = %q %q", ec.Name, ec.Dir)
	}
	want := map[string][]string{
		"listen-client":    {"https://10.0.0.5:2379", "https://127.0.0.1:2379"},
		"advertise-client": {"https://10.0.0.5:2379"},
		"listen-peer":      {"https://10.0.0.5:2380"},
		"advertise-peer":   {"https://10.0.0.5:2380"},
		"metrics":          {"http://127.0.0.1:2381"},
		// gRPC alone on the client port: etcd serves it with gRPC's own
		// transport only when HTTP has a port of its own.
		"listen-http": {"https://127.0.0.1:2382"},
	}
	got := urlStrings(t, ec)
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s URLs = %v, want %v", k, got[k], w)
		}
	}
	if ec.InitialCluster != "node-a=https://10.0.0.5:2380" || ec.ClusterState != "new" {
		t.Errorf("initial cluster = %q state %q", ec.InitialCluster, ec.ClusterState)
	}
	c, p := ec.ClientTLSInfo, ec.PeerTLSInfo
	if c.CertFile != l.Cert(layout.EtcdServer) || c.KeyFile != l.Key(layout.EtcdServer) ||
		c.TrustedCAFile != l.Cert(layout.EtcdServerCA) || !c.ClientCertAuth {
		t.Errorf("client TLS = %+v", c)
	}
	if p.CertFile != l.Cert(layout.EtcdPeer) || p.KeyFile != l.Key(layout.EtcdPeer) ||
		p.TrustedCAFile != l.Cert(layout.EtcdPeerCA) || !p.ClientCertAuth {
		t.Errorf("peer TLS = %+v", p)
	}
	if ec.TickMs != 100 || ec.ElectionMs != 1000 || ec.QuotaBackendBytes != 2<<30 || !ec.StrictReconfigCheck {
		t.Errorf("defaults: tick %d election %d quota %d strict %v", ec.TickMs, ec.ElectionMs, ec.QuotaBackendBytes, ec.StrictReconfigCheck)
	}

	// A node IP of 127.0.0.1 must not make etcd listen twice on one address.
	cfg.NodeIP = net.ParseIP("127.0.0.1")
	ec = loadRendered(t, render(cfg, nil, "", ""))
	if got := urlStrings(t, ec)["listen-client"]; !slices.Equal(got, []string{"https://127.0.0.1:2379"}) {
		t.Errorf("loopback node: listen-client URLs = %v", got)
	}
	// IPv6 node IPs are bracketed.
	cfg.NodeIP = net.ParseIP("fd00::5")
	ec = loadRendered(t, render(cfg, nil, "", ""))
	if got := urlStrings(t, ec)["advertise-peer"]; !slices.Equal(got, []string{"https://[fd00::5]:2380"}) {
		t.Errorf("IPv6 node: advertise-peer URLs = %v", got)
	}
}

func TestEtcdArgsOverlay(t *testing.T) {
	l := layout.NewServer(t.TempDir())
	cfg := Config{Name: "node-a", Layout: l, NodeIP: net.ParseIP("10.0.0.5")}
	user, err := parseArgs([]string{
		"heartbeat-interval=100",
		"--election-timeout=1000", // dashes as on etcd's command line
		"initial-cluster-token=true",
		"auto-compaction-retention=5",
		"backend-batch-interval=10ms",
		"quota-backend-bytes=8589934592",
		"peer-trusted-ca-file=/other/ca.crt",
		"client-cert-auth=false",
		"cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		"listen-metrics-urls=http://127.0.0.1:12381",
		"socket-reuse-port=true",
		"initial-cluster-state=existing",
	})
	if err != nil {
		t.Fatal(err)
	}
	ec := loadRendered(t, render(cfg, user, "node-a=https://10.0.0.5:2380", "new"))

	if ec.TickMs != 100 || ec.ElectionMs != 1000 {
		t.Errorf("tick %d election %d, want the user's 100/1000", ec.TickMs, ec.ElectionMs)
	}
	// Strings that look like other YAML types stay strings.
	if ec.InitialClusterToken != "true" || ec.AutoCompactionRetention != "5" {
		t.Errorf("token %q retention %q", ec.InitialClusterToken, ec.AutoCompactionRetention)
	}
	if ec.BackendBatchInterval != 10*time.Millisecond {
		t.Errorf("backend-batch-interval = %v", ec.BackendBatchInterval)
	}
	if ec.QuotaBackendBytes != 8<<30 {
		t.Errorf("quota = %d", ec.QuotaBackendBytes)
	}
	// One key of a TLS section replaced, the rest still k3ha's.
	if ec.PeerTLSInfo.TrustedCAFile != "/other/ca.crt" || ec.PeerTLSInfo.CertFile != l.Cert(layout.EtcdPeer) {
		t.Errorf("peer TLS = %+v", ec.PeerTLSInfo)
	}
	if ec.ClientTLSInfo.ClientCertAuth || ec.ClientTLSInfo.CertFile != l.Cert(layout.EtcdServer) {
		t.Errorf("client TLS = %+v", ec.ClientTLSInfo)
	}
	if !slices.Equal(ec.CipherSuites, []string{"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}) {
		t.Errorf("cipher suites = %v", ec.CipherSuites)
	}
	if got := urlStrings(t, ec)["metrics"]; !slices.Equal(got, []string{"http://127.0.0.1:12381"}) {
		t.Errorf("metrics URLs = %v", got)
	}
	if !ec.SocketOpts.ReusePort || ec.ClusterState != "existing" {
		t.Errorf("reuse-port %v state %q", ec.SocketOpts.ReusePort, ec.ClusterState)
	}
	// The user's values appear in the file itself, for whoever reads it.
	data, _ := render(cfg, user, "", "").marshal()
	if !strings.Contains(string(data), "heartbeat-interval: 100\n") || !strings.HasPrefix(string(data), "# etcd configuration") {
		t.Errorf("rendered file:\n%s", data)
	}
}

func TestEtcdArgsRejected(t *testing.T) {
	for arg, key := range map[string]string{
		"no-such-setting=1":                   "no-such-setting",
		"heartbeat-interval=fast":             "heartbeat-interval",
		"heartbeat-interval=-5":               "heartbeat-interval",
		"pre-vote=maybe":                      "pre-vote",
		"backend-batch-interval=10":           "backend-batch-interval",
		"listen-client-urls=localhost:2379":   "listen-client-urls",
		"advertise-client-urls=https://x/api": "advertise-client-urls",
		"log-level=debug":                     "log-level",
		"data-dir=/elsewhere":                 "data-dir",
		"name=other":                          "name",
		"client-crl-file=/crl.pem":            "client-crl-file",
		"=value":                              "=value",
		"novalue":                             "novalue",
	} {
		err := CheckArgs([]string{"heartbeat-interval=100", arg})
		if err == nil {
			t.Errorf("%q accepted", arg)
			continue
		}
		if !strings.Contains(err.Error(), key) {
			t.Errorf("%q: error %q does not name the key", arg, err)
		}
	}
	if err := CheckArgs([]string{"snapshot-count=5000", "feature-gates=StopGRPCServiceOnDefrag=true"}); err != nil {
		t.Errorf("good args rejected: %v", err)
	}
}
