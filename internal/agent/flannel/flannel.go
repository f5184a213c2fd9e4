package flannel

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/flannel-io/flannel/pkg/backend"
	_ "github.com/flannel-io/flannel/pkg/backend/hostgw" // registers host-gw
	_ "github.com/flannel-io/flannel/pkg/backend/vxlan"  // registers vxlan
	_ "github.com/flannel-io/flannel/pkg/backend/wireguard"
	"github.com/flannel-io/flannel/pkg/subnet"
	"github.com/flannel-io/flannel/pkg/subnet/kube"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/k3ha/k3ha/internal/config"
)

// annotationPrefix is flannel's own, so tools that read flannel's node
// annotations (and flannel itself on a node joined later) understand them.
const annotationPrefix = "flannel.alpha.coreos.com"

// Config is one node's flannel.
type Config struct {
	NodeName string
	// NodeIP picks the interface pod traffic leaves by (the one holding
	// it), unless Iface names one.
	NodeIP net.IP
	Iface  string
	// ExternalIP, when set, is the address other nodes send pod traffic
	// to (--flannel-external-ip with --node-external-ip).
	ExternalIP  net.IP
	ClusterCIDR *net.IPNet
	Backend     string
	// Kubeconfig must list and watch all Nodes and patch nodes/status.
	Kubeconfig string
	// Dir holds flannel's net-conf.json.
	Dir string
}

// Network is a node's registered flannel network.
type Network struct {
	net backend.Network
	wg  sync.WaitGroup
}

// MTU is what pods' interfaces must use so that the backend's headers fit.
func (n *Network) MTU() int { return n.net.MTU() }

// Run keeps the routes (and tunnel peers) to the other nodes' pods current
// until ctx ends.
func (n *Network) Run(ctx context.Context) {
	n.net.Run(ctx)
	n.wg.Wait()
}

// Register takes this node's lease (its pod CIDR, with the backend's data
// in the Node's annotations) and sets up the backend's device.
func Register(ctx context.Context, cfg Config) (*Network, error) {
	conf, err := renderNetConf(cfg.ClusterCIDR, cfg.Backend)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("flannel: %w", err)
	}
	confPath := filepath.Join(cfg.Dir, "net-conf.json")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return nil, fmt.Errorf("flannel: %w", err)
	}
	ext, err := externalInterface(cfg.NodeIP, cfg.Iface, cfg.ExternalIP)
	if err != nil {
		return nil, err
	}
	// The Kubernetes subnet manager finds its node by this variable; one
	// process runs one node.
	if err := os.Setenv("NODE_NAME", cfg.NodeName); err != nil {
		return nil, err
	}
	if err := waitNodesReadable(ctx, cfg.Kubeconfig); err != nil {
		return nil, err
	}
	sm, err := kube.NewSubnetManager(ctx, "", cfg.Kubeconfig, annotationPrefix, confPath, false)
	if err != nil {
		return nil, fmt.Errorf("flannel subnet manager: %w", err)
	}
	netCfg, err := sm.GetNetworkConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("flannel network config: %w", err)
	}
	be, err := pickBackend(ctx, cfg, sm, ext, netCfg.BackendType)
	if err != nil {
		return nil, fmt.Errorf("flannel backend %s: %w", cfg.Backend, err)
	}
	n := &Network{}
	bn, err := be.RegisterNetwork(ctx, &n.wg, netCfg)
	if err != nil {
		return nil, fmt.Errorf("flannel %s network: %w", cfg.Backend, err)
	}
	n.net = bn
	slog.Info("flannel network registered", "backend", cfg.Backend, "interface", ext.Iface.Name,
		"address", ext.ExtAddr.String(), "subnet", bn.Lease().Subnet.String(), "mtu", bn.MTU())
	return n, nil
}

// pickBackend is flannel's backend, except for WireGuard on a kernel
// without it: then wireguard-go, in this process.
func pickBackend(ctx context.Context, cfg Config, sm subnet.Manager, ext *backend.ExternalInterface, typ string) (backend.Backend, error) {
	if cfg.Backend == config.FlannelWireGuard {
		// The node's key, kept with its flannel files (flannel's own
		// backend reads the variable; the default is one file per machine).
		keyFile := filepath.Join(cfg.Dir, "wireguard.key")
		if err := os.Setenv("WIREGUARD_KEY_FILE", keyFile); err != nil {
			return nil, err
		}
		if !kernelHasWireGuard() {
			slog.Warn("this kernel has no WireGuard: running WireGuard in userspace (wireguard-go), encrypted but slower; load the wireguard module for the kernel's",
				"node", cfg.NodeName)
			return &userspaceWG{sm: sm, ext: ext, keyFile: keyFile}, nil
		}
	}
	return backend.NewManager(ctx, sm, ext).GetBackend(typ)
}

// externalInterface finds the interface pod traffic leaves by: the one
// named, or the one holding the node IP.
func externalInterface(nodeIP net.IP, name string, extIP net.IP) (*backend.ExternalInterface, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("flannel: list interfaces: %w", err)
	}
	for _, iface := range ifaces {
		if name != "" && iface.Name != name {
			continue
		}
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		addr := pickAddr(addrs, nodeIP, name != "")
		if addr == nil {
			continue
		}
		ext := &backend.ExternalInterface{Iface: &iface, IfaceName: iface.Name, IfaceAddr: addr, ExtAddr: addr}
		if extIP != nil {
			ext.ExtAddr = extIP
		}
		return ext, nil
	}
	if name != "" {
		return nil, fmt.Errorf("--flannel-iface=%s: no such interface with an IPv4 address", name)
	}
	return nil, fmt.Errorf("flannel: no interface holds the node IP %s; name one with --flannel-iface", nodeIP)
}

// pickAddr returns the node IP if the interface holds it, or, for an
// interface named by the user, its first IPv4 address.
func pickAddr(addrs []net.Addr, nodeIP net.IP, anyV4 bool) net.IP {
	var first net.IP
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil {
			continue
		}
		if ipn.IP.Equal(nodeIP) {
			return ipn.IP.To4()
		}
		if first == nil {
			first = ipn.IP.To4()
		}
	}
	if anyV4 {
		return first
	}
	return nil
}

// waitNodesReadable waits until the kubeconfig's user may list Nodes: on a
// new cluster the rolebindings manifest is applied moments after the first
// server starts, and flannel's informer would back off for up to half a
// minute after a refusal.
func waitNodesReadable(ctx context.Context, kubeconfig string) error {
	rc, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("flannel: %w", err)
	}
	cs, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("flannel: %w", err)
	}
	logged := false
	for {
		_, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			return nil
		}
		if apierrors.IsForbidden(err) && !logged {
			slog.Info("flannel: waiting for the rolebindings that let it read Nodes", "err", err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flannel: list nodes: %w", err)
		case <-time.After(time.Second):
		}
	}
}
