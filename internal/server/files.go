package server

import (
	"fmt"
	"net"
	"os"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/controlplane"
	"github.com/k3ha/k3ha/internal/kubeconfig"
	"github.com/k3ha/k3ha/internal/layout"
)

// prepared is what prepareFiles made.
type prepared struct {
	created          bool   // any CA or key was new
	serverCA         []byte // the server CA bundle served on /cacerts
	encryptionConfig string
	tokens           tokens
}

// prepareFiles makes sure the certificates, token and component configs
// exist. CAs a joining server received from the cluster are kept as they are.
func prepareFiles(l layout.Server, cfg *config.Server, n node) (prepared, error) {
	var p prepared
	var err error
	if p.created, err = controlplane.EnsureCAs(l); err != nil {
		return p, err
	}
	if _, err := controlplane.EnsureLeafCertificates(l, leafIdentity(cfg, n)); err != nil {
		return p, err
	}
	if p.serverCA, err = os.ReadFile(l.Cert(layout.ServerCA)); err != nil {
		return p, fmt.Errorf("server CA: %w", err)
	}
	if p.tokens, err = ensureTokens(l, cfg, p.serverCA); err != nil {
		return p, err
	}
	if err := controlplane.WriteAuthenticationConfig(l.AuthenticationConfig()); err != nil {
		return p, err
	}
	if cfg.SecretsEncryption {
		if _, err := controlplane.EnsureEncryptionConfig(l.EncryptionConfig()); err != nil {
			return p, err
		}
		p.encryptionConfig = l.EncryptionConfig()
	}
	api := localAPI(cfg)
	for _, c := range []struct{ name, cert string }{{"controller", layout.ControllerClient}, {"scheduler", layout.SchedulerClient}, {"admin", layout.AdminClient}} {
		kc := kubeconfig.ClientCert{Server: api, CAFile: l.Cert(layout.ServerCA), CertFile: l.Cert(c.cert), KeyFile: l.Key(c.cert)}
		if err := kc.Write(l.Kubeconfig(c.name), 0o600); err != nil {
			return p, err
		}
	}
	return p, nil
}

// leafIdentity is what the server's certificates say it is.
func leafIdentity(cfg *config.Server, n node) controlplane.Identity {
	id := controlplane.Identity{
		NodeName:      n.name,
		IPs:           []net.IP{n.ip, n.advertise, net.ParseIP("127.0.0.1"), net.IPv6loopback, firstServiceIP(cfg.ServiceCIDR)},
		ClusterDomain: cfg.ClusterDomain,
	}
	for _, san := range cfg.TLSSANs {
		if ip := net.ParseIP(san); ip != nil {
			id.IPs = append(id.IPs, ip)
		} else {
			id.DNSNames = append(id.DNSNames, san)
		}
	}
	return id
}

// firstServiceIP is the kubernetes Service's ClusterIP: the first address of the range.
func firstServiceIP(cidr string) net.IP {
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		return nil
	}
	ip := make(net.IP, len(n.IP))
	copy(ip, n.IP)
	ip[len(ip)-1]++
	return ip
}
