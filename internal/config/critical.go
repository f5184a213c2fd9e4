package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Critical are the settings every server of a cluster must share; a server
// whose values differ must not join (spec section 1).
type Critical struct {
	ClusterCIDR           string   `json:"cluster-cidr"`
	ServiceCIDR           string   `json:"service-cidr"`
	ClusterDNS            string   `json:"cluster-dns"`
	ClusterDomain         string   `json:"cluster-domain"`
	Disable               []string `json:"disable"`
	DisableHelmController bool     `json:"disable-helm-controller"`
	DisableKubeProxy      bool     `json:"disable-kube-proxy"`
	DisableNetworkPolicy  bool     `json:"disable-network-policy"`
	SecretsEncryption     bool     `json:"secrets-encryption"`
	FlannelBackend        string   `json:"flannel-backend,omitempty"`
	FlannelExternalIP     bool     `json:"flannel-external-ip,omitempty"`
}

// Critical returns this server's critical settings.
func (s *Server) Critical() Critical {
	disable := slices.Clone(s.Disable)
	slices.Sort(disable)
	disable = slices.Compact(disable)
	return Critical{
		ClusterCIDR:           s.ClusterCIDR,
		ServiceCIDR:           s.ServiceCIDR,
		ClusterDNS:            s.ClusterDNS,
		ClusterDomain:         s.ClusterDomain,
		Disable:               disable,
		DisableHelmController: s.DisableHelmController,
		DisableKubeProxy:      s.DisableKubeProxy,
		DisableNetworkPolicy:  s.DisableNetworkPolicy,
		SecretsEncryption:     s.SecretsEncryption,
		FlannelBackend:        s.FlannelBackend,
		FlannelExternalIP:     s.FlannelExternalIP,
	}
}

// Diff lists, one line per flag, where mine differs from the cluster's.
func (mine Critical) Diff(cluster Critical) []string {
	var out []string
	check := func(flag, m, c string) {
		if m != c {
			out = append(out, fmt.Sprintf("--%s: this server has %q, the cluster has %q", flag, m, c))
		}
	}
	b := strconv.FormatBool
	check("cluster-cidr", mine.ClusterCIDR, cluster.ClusterCIDR)
	check("service-cidr", mine.ServiceCIDR, cluster.ServiceCIDR)
	check("cluster-dns", mine.ClusterDNS, cluster.ClusterDNS)
	check("cluster-domain", mine.ClusterDomain, cluster.ClusterDomain)
	check("disable", strings.Join(mine.Disable, ","), strings.Join(cluster.Disable, ","))
	check("disable-helm-controller", b(mine.DisableHelmController), b(cluster.DisableHelmController))
	check("disable-kube-proxy", b(mine.DisableKubeProxy), b(cluster.DisableKubeProxy))
	check("disable-network-policy", b(mine.DisableNetworkPolicy), b(cluster.DisableNetworkPolicy))
	check("secrets-encryption", b(mine.SecretsEncryption), b(cluster.SecretsEncryption))
	check("flannel-backend", mine.Flannel(), cluster.Flannel())
	check("flannel-external-ip", b(mine.FlannelExternalIP), b(cluster.FlannelExternalIP))
	return out
}

// Flannel is the cluster's --flannel-backend; settings recorded before the
// flag existed had none and meant the default.
func (c Critical) Flannel() string {
	if c.FlannelBackend == "" {
		return FlannelVXLAN
	}
	return c.FlannelBackend
}
