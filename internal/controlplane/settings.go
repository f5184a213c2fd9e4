package controlplane

import (
	"net"
	"strconv"
	"strings"

	"github.com/k3ha/k3ha/internal/datastore"
	"github.com/k3ha/k3ha/internal/layout"
)

// Settings are the values the three components are configured from.
type Settings struct {
	Layout        layout.Server
	AdvertiseIP   net.IP
	APIPort       int
	ClusterCIDR   string
	ServiceCIDR   string
	ClusterDomain string
	Datastore     datastore.Endpoint
	// EncryptionConfig is the --encryption-provider-config file, empty when
	// secrets are not encrypted.
	EncryptionConfig string

	ExtraAPIServerArgs         []string
	ExtraControllerManagerArgs []string
	ExtraSchedulerArgs         []string
}

func (s Settings) issuer() string { return "https://kubernetes.default.svc." + s.ClusterDomain }

// APIServerArgs is kube-apiserver's command line.
func (s Settings) APIServerArgs() Args {
	l := s.Layout
	a := Args{
		"advertise-address":        s.AdvertiseIP.String(),
		"allow-privileged":         "true",
		"api-audiences":            s.issuer(),
		"authentication-config":    l.AuthenticationConfig(),
		"authorization-mode":       "Node,RBAC",
		"client-ca-file":           l.Cert(layout.ClientCA),
		"enable-admission-plugins": "NodeRestriction",
		// Extension apiservers (metrics-server) are reached at their
		// endpoints' pod IPs, not through their Service's cluster IP,
		// which only kube-proxy on this host would translate.
		"enable-aggregator-routing":          "true",
		"etcd-servers":                       strings.Join(s.Datastore.Servers, ","),
		"kubelet-certificate-authority":      l.Cert(layout.ServerCA),
		"kubelet-client-certificate":         l.Cert(layout.APIServerClient),
		"kubelet-client-key":                 l.Key(layout.APIServerClient),
		"kubelet-preferred-address-types":    "InternalIP,ExternalIP,Hostname",
		"profiling":                          "false",
		"proxy-client-cert-file":             l.Cert(layout.AuthProxyClient),
		"proxy-client-key-file":              l.Key(layout.AuthProxyClient),
		"requestheader-allowed-names":        authProxyUser,
		"requestheader-client-ca-file":       l.Cert(layout.RequestHeaderCA),
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-username-headers":     "X-Remote-User",
		"secure-port":                        strconv.Itoa(s.APIPort),
		"service-account-issuer":             s.issuer(),
		"service-account-key-file":           l.ServiceAccountPublicKey(),
		"service-account-signing-key-file":   l.Key(layout.ServiceAccount),
		"service-cluster-ip-range":           s.ServiceCIDR,
		"service-node-port-range":            "30000-32767",
		"storage-backend":                    "etcd3",
		"tls-cert-file":                      l.Cert(layout.APIServerServing),
		"tls-private-key-file":               l.Key(layout.APIServerServing),
	}
	if s.Datastore.CAFile != "" {
		a["etcd-cafile"] = s.Datastore.CAFile
		a["etcd-certfile"] = s.Datastore.CertFile
		a["etcd-keyfile"] = s.Datastore.KeyFile
	}
	if s.EncryptionConfig != "" {
		a["encryption-provider-config"] = s.EncryptionConfig
		a["encryption-provider-config-automatic-reload"] = "true"
	}
	a.Merge(s.ExtraAPIServerArgs)
	return a
}

// ControllerManagerArgs is kube-controller-manager's command line.
func (s Settings) ControllerManagerArgs() Args {
	l := s.Layout
	a := Args{
		"kubeconfig":               l.Kubeconfig("controller"),
		"allocate-node-cidrs":      "true",
		"cluster-cidr":             s.ClusterCIDR,
		"service-cluster-ip-range": s.ServiceCIDR,
		"cluster-signing-kube-apiserver-client-cert-file": l.Cert(layout.ClientCA),
		"cluster-signing-kube-apiserver-client-key-file":  l.Key(layout.ClientCA),
		"cluster-signing-kubelet-client-cert-file":        l.Cert(layout.ClientCA),
		"cluster-signing-kubelet-client-key-file":         l.Key(layout.ClientCA),
		"cluster-signing-kubelet-serving-cert-file":       l.Cert(layout.ServerCA),
		"cluster-signing-kubelet-serving-key-file":        l.Key(layout.ServerCA),
		"cluster-signing-legacy-unknown-cert-file":        l.Cert(layout.ServerCA),
		"cluster-signing-legacy-unknown-key-file":         l.Key(layout.ServerCA),
		"configure-cloud-routes":                          "false",
		"controllers":                                     "*,tokencleaner",
		"controller-shutdown-timeout":                     "3s",
		// Upstream's 20/30 would pace the start: with a credential per
		// controller it makes ~100 requests (service accounts, tokens)
		// before any controller runs, about 5 s of a new node's wait for
		// its pod CIDR. A small cluster's apiserver takes far more.
		"kube-api-burst":                   "200",
		"kube-api-qps":                     "100",
		"leader-elect":                     "false", // k3ha runs the election (elected.go)
		"profiling":                        "false",
		"root-ca-file":                     l.Cert(layout.ServerCA),
		"secure-port":                      "0",
		"service-account-private-key-file": l.Key(layout.ServiceAccount),
		"use-service-account-credentials":  "true",
	}
	a.Merge(s.ExtraControllerManagerArgs)
	return a
}

// SchedulerArgs is kube-scheduler's command line.
func (s Settings) SchedulerArgs() Args {
	a := Args{
		"kubeconfig":   s.Layout.Kubeconfig("scheduler"),
		"leader-elect": "false", // k3ha runs the election (elected.go)
		"profiling":    "false",
		"secure-port":  "0",
	}
	a.Merge(s.ExtraSchedulerArgs)
	return a
}
