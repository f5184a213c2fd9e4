// Package kubeconfig writes the kubeconfig files k3ha hands to users and to
// its own components.
package kubeconfig

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/k3ha/k3ha/internal/pki"
)

// ClientCert is a kubeconfig that logs in with a client certificate.
type ClientCert struct {
	Server   string // https://127.0.0.1:6443
	CAFile   string
	CertFile string
	KeyFile  string
	// Embed copies the certificates into the file so that it can be moved
	// elsewhere (the admin kubeconfig); components read the files directly.
	Embed bool
}

// Write writes the kubeconfig atomically with the given mode.
func (c ClientCert) Write(path string, mode os.FileMode) error {
	cluster := &clientcmdapi.Cluster{Server: c.Server, CertificateAuthority: c.CAFile}
	user := &clientcmdapi.AuthInfo{ClientCertificate: c.CertFile, ClientKey: c.KeyFile}
	if c.Embed {
		var err error
		if cluster.CertificateAuthorityData, err = os.ReadFile(c.CAFile); err != nil {
			return fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		if user.ClientCertificateData, err = os.ReadFile(c.CertFile); err != nil {
			return fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		if user.ClientKeyData, err = os.ReadFile(c.KeyFile); err != nil {
			return fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		cluster.CertificateAuthority, user.ClientCertificate, user.ClientKey = "", "", ""
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["default"] = cluster
	cfg.AuthInfos["default"] = user
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: "default"}
	cfg.CurrentContext = "default"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	if err := pki.WriteFileAtomic(path, data, mode); err != nil {
		return fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return nil
}
