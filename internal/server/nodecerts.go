package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/pki"
	"github.com/k3ha/k3ha/internal/supervisor"
)

// nodePasswordSecret names the Secret that binds a node name to the host
// that first registered it.
func nodePasswordSecret(node string) string { return node + ".node-password.k3ha" }

// ControllerUser is the identity of k3ha's node-side controllers (flannel,
// network policy, node addresses); the rolebindings manifest grants it
// what they need.
const ControllerUser = "system:k3ha-controller"

// issueNodeCerts checks the node's password and makes its certificates:
// the kubelet's client certificate (system:node:<name>, which the Node
// authorizer and NodeRestriction key on), its serving certificate (which the
// apiserver verifies for logs/exec/port-forward), kube-proxy's and the
// node's controllers'.
func issueNodeCerts(ctx context.Context, l layout.Server, cs kubernetes.Interface, req supervisor.NodeCertsRequest) (supervisor.NodeCerts, error) {
	var out supervisor.NodeCerts
	if msgs := validation.IsDNS1123Subdomain(req.NodeName); len(msgs) > 0 {
		return out, fmt.Errorf("%w: node name %q is invalid: %s", supervisor.ErrDenied, req.NodeName, strings.Join(msgs, "; "))
	}
	ip := net.ParseIP(req.NodeIP)
	if ip == nil {
		return out, fmt.Errorf("%w: node IP %q is not an IP address", supervisor.ErrDenied, req.NodeIP)
	}
	if req.Password == "" {
		return out, fmt.Errorf("%w: the request carries no node password", supervisor.ErrDenied)
	}
	if cs == nil {
		return out, errors.New("the apiserver is not ready yet")
	}
	if err := checkNodePassword(ctx, cs, req.NodeName, req.Password); err != nil {
		return out, err
	}
	serverCA, err := pki.LoadCA(l.TLSDir(), layout.ServerCA)
	if err != nil {
		return out, err
	}
	clientCA, err := pki.LoadCA(l.TLSDir(), layout.ClientCA)
	if err != nil {
		return out, err
	}
	out.ServerCA, out.ClientCA = serverCA.CertPEM, clientCA.CertPEM
	if out.KubeletClientCert, out.KubeletClientKey, err = clientCA.Issue(pki.LeafSpec{
		CommonName: "system:node:" + req.NodeName, Organization: []string{"system:nodes"}, Usage: pki.ClientAuth}); err != nil {
		return out, err
	}
	if out.KubeletServingCert, out.KubeletServingKey, err = serverCA.Issue(pki.LeafSpec{
		CommonName: req.NodeName, DNSNames: []string{req.NodeName, "localhost"},
		IPs: []net.IP{ip, net.ParseIP("127.0.0.1")}, Usage: pki.ServerAuth}); err != nil {
		return out, err
	}
	if out.KubeProxyCert, out.KubeProxyKey, err = clientCA.Issue(pki.LeafSpec{
		CommonName: "system:kube-proxy", Usage: pki.ClientAuth}); err != nil {
		return out, err
	}
	if out.ControllerCert, out.ControllerKey, err = clientCA.Issue(pki.LeafSpec{
		CommonName: ControllerUser, Usage: pki.ClientAuth}); err != nil {
		return out, err
	}
	return out, nil
}

// checkNodePassword binds the node name to the password on first use and
// refuses any other password afterwards.
func checkNodePassword(ctx context.Context, cs kubernetes.Interface, node, password string) error {
	sum := sha256.Sum256([]byte(password))
	hash := hex.EncodeToString(sum[:])
	secrets := cs.CoreV1().Secrets(metav1.NamespaceSystem)
	for attempt := 0; attempt < 2; attempt++ {
		s, err := secrets.Get(ctx, nodePasswordSecret(node), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = secrets.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: nodePasswordSecret(node), Namespace: metav1.NamespaceSystem,
					Labels: map[string]string{"k3ha.io/node-password": "true"}},
				Immutable: ptrTrue(),
				Data:      map[string][]byte{"hash": []byte(hash)},
			}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue // another request for this name won the race; compare with it
			}
			if err != nil {
				return fmt.Errorf("store node password: %w", err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read node password: %w", err)
		}
		if subtle.ConstantTimeCompare(s.Data["hash"], []byte(hash)) != 1 {
			return fmt.Errorf("%w: node name %q belongs to another host (its node password differs); if that node is gone, delete it (kubectl delete node %s), otherwise give this one another --node-name",
				supervisor.ErrDenied, node, node)
		}
		return nil
	}
	return errors.New("node password changed while checking it; try again")
}

func ptrTrue() *bool { t := true; return &t }
