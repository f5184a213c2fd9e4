package flannel

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/flannel-io/flannel/pkg/backend"
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/lease"
	"github.com/flannel-io/flannel/pkg/subnet"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// WireGuard in userspace (wireguard-go) for kernels without the module:
// the same wire protocol, port, keys and lease data as flannel's
// wireguard backend, so nodes with and without the kernel module peer
// with each other. Slower than the kernel's, but encrypted all the same.
const (
	wgDevice   = "flannel-wg"
	wgPort     = 51820
	wgOverhead = 80 // outer IPv4 and UDP headers, WireGuard's header and tag
)

// kernelHasWireGuard tries to create a WireGuard link (which also loads
// the module if it is one).
func kernelHasWireGuard() bool {
	probe := &netlink.GenericLink{LinkAttrs: netlink.LinkAttrs{Name: "k3ha-wgprobe"}, LinkType: "wireguard"}
	err := netlink.LinkAdd(probe)
	if err == nil || errors.Is(err, unix.EEXIST) {
		_ = netlink.LinkDel(probe)
		return true
	}
	return false
}

// wgLeaseData is flannel's wireguard lease data (BackendData).
type wgLeaseData struct {
	PublicKey string
	Port      uint16
}

type userspaceWG struct {
	sm      subnet.Manager
	ext     *backend.ExternalInterface
	keyFile string
}

type userspaceNet struct {
	sm    subnet.Manager
	lease *lease.Lease
	dev   *device.Device
	mtu   int
}

func (b *userspaceWG) RegisterNetwork(ctx context.Context, wg *sync.WaitGroup, cfg *subnet.Config) (backend.Network, error) {
	key, err := wgKey(b.keyFile)
	if err != nil {
		return nil, err
	}
	mtu := b.ext.Iface.MTU - wgOverhead
	td, err := tun.CreateTUN(wgDevice, mtu)
	if err != nil {
		return nil, fmt.Errorf("userspace WireGuard: create %s: %w", wgDevice, err)
	}
	dev := device.NewDevice(td, conn.NewDefaultBind(), &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf:   func(f string, a ...any) { slog.Error(fmt.Sprintf(f, a...), "logger", "wireguard") },
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		dev.Close() // removes the TUN device
	}()
	if err := dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\n", hex.EncodeToString(key[:]), wgPort)); err != nil {
		return nil, fmt.Errorf("userspace WireGuard: %w", err)
	}
	if err := dev.Up(); err != nil {
		return nil, fmt.Errorf("userspace WireGuard: %w", err)
	}
	data, err := json.Marshal(wgLeaseData{PublicKey: key.PublicKey().String(), Port: wgPort})
	if err != nil {
		return nil, err
	}
	l, err := b.sm.AcquireLease(ctx, &lease.LeaseAttrs{BackendType: "wireguard", PublicIP: ip.FromIP(b.ext.ExtAddr), BackendData: data})
	if err != nil {
		return nil, fmt.Errorf("flannel lease: %w", err)
	}
	// The device holds the lease's first address; the whole pod range is
	// routed into it, this node's own subnet more specifically to cni0.
	link, err := netlink.LinkByName(wgDevice)
	if err != nil {
		return nil, fmt.Errorf("userspace WireGuard: %w", err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: l.Subnet.IP.ToIP(), Mask: net.CIDRMask(32, 32)}}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return nil, fmt.Errorf("userspace WireGuard: address: %w", err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("userspace WireGuard: %w", err)
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: cfg.Network.ToIPNet(), Scope: netlink.SCOPE_LINK}
	if err := netlink.RouteReplace(route); err != nil {
		return nil, fmt.Errorf("userspace WireGuard: route %s: %w", cfg.Network, err)
	}
	return &userspaceNet{sm: b.sm, lease: l, dev: dev, mtu: mtu}, nil
}

func (n *userspaceNet) Lease() *lease.Lease { return n.lease }
func (n *userspaceNet) MTU() int            { return n.mtu }

// Run adds a peer for each other node's lease and removes it with the lease.
func (n *userspaceNet) Run(ctx context.Context) {
	events := make(chan []lease.Event)
	go subnet.WatchLeases(ctx, n.sm, n.lease, events)
	for {
		select {
		case <-ctx.Done():
			return
		case batch := <-events:
			for _, e := range batch {
				if err := n.dev.IpcSet(peerConfig(e)); err != nil {
					slog.Error("userspace WireGuard: peer", "subnet", e.Lease.Subnet.String(), "err", err)
				}
			}
		}
	}
}

// peerConfig is the UAPI change for one lease event ("" changes nothing).
func peerConfig(e lease.Event) string {
	var data wgLeaseData
	if e.Lease.Attrs.BackendType != "wireguard" || json.Unmarshal(e.Lease.Attrs.BackendData, &data) != nil {
		return ""
	}
	key, err := wgtypes.ParseKey(data.PublicKey)
	if err != nil {
		return ""
	}
	port := data.Port
	if port == 0 {
		port = wgPort
	}
	var b strings.Builder
	fmt.Fprintf(&b, "public_key=%s\n", hex.EncodeToString(key[:]))
	if e.Type == lease.EventRemoved {
		b.WriteString("remove=true\n")
		return b.String()
	}
	fmt.Fprintf(&b, "endpoint=%s:%d\nreplace_allowed_ips=true\nallowed_ip=%s\npersistent_keepalive_interval=%d\n",
		e.Lease.Attrs.PublicIP.String(), port, e.Lease.Subnet.String(), wgKeepalive)
	return b.String()
}

// wgKey reads this node's private key, or makes and keeps one.
func wgKey(path string) (wgtypes.Key, error) {
	if b, err := os.ReadFile(path); err == nil {
		return wgtypes.ParseKey(strings.TrimSpace(string(b)))
	} else if !errors.Is(err, os.ErrNotExist) {
		return wgtypes.Key{}, fmt.Errorf("WireGuard key: %w", err)
	}
	k, err := wgtypes.GeneratePrivateKey()
	if err != nil {
		return wgtypes.Key{}, fmt.Errorf("WireGuard key: %w", err)
	}
	if err := os.WriteFile(path, []byte(k.String()+"\n"), 0o600); err != nil {
		return wgtypes.Key{}, fmt.Errorf("WireGuard key: %w", err)
	}
	return k, nil
}
