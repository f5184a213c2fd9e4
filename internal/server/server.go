// Package server runs a k3ha server: certificates, token, datastore, the
// Kubernetes control plane and the supervisor port, started in that order and
// stopped in reverse.
package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/kubernetes"

	"github.com/k3ha/k3ha/internal/agent"
	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/controlplane"
	"github.com/k3ha/k3ha/internal/datastore"
	"github.com/k3ha/k3ha/internal/datastore/etcd"
	"github.com/k3ha/k3ha/internal/datastore/migrate"
	"github.com/k3ha/k3ha/internal/kubeconfig"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/lockfile"
	"github.com/k3ha/k3ha/internal/token"
)

// Run runs the server until ctx ends or a component fails.
func Run(ctx context.Context, cfg *config.Server) (err error) {
	begin := time.Now()
	l := layout.NewServer(cfg.DataDir)
	lock, err := lockfile.Acquire(cfg.DataDir)
	if err != nil {
		return err
	}
	// Until the datastore holds this node's data, a failed start takes back
	// what it wrote, so that a fresh node is left as it was (a failed join,
	// say, leaves nothing for the next attempt to trip over).
	fresh := !exists(l.Root)
	committed := false
	defer func() {
		if err != nil && fresh && !committed {
			_ = os.RemoveAll(l.Root)
			lock.Release()
			if lock.Created() {
				_ = os.Remove(cfg.DataDir)
			}
			return
		}
		lock.Release()
	}()

	n, err := resolveNode(cfg)
	if err != nil {
		return err
	}
	if cfg.ClusterReset {
		committed = etcd.HasData(l) // a reset never takes back data that existed
		return resetCluster(ctx, cfg, l, n)
	}
	choice := datastore.Choose(datastore.Inputs{EtcdData: etcd.HasData(l), ClusterInit: cfg.ClusterInit,
		ServerURL: cfg.ServerURL, DatastoreEndpoint: cfg.DatastoreEndpoint})
	if len(choice.Ignored) > 0 {
		slog.Info("etcd data exists: this node is already initialised or joined, so these flags are ignored",
			"ignored", strings.Join(choice.Ignored, ","), "etcd-dir", l.EtcdDir())
	}
	if choice.Kind == datastore.EtcdNew && migrate.Needed(l) {
		if err := migrateSQLite(ctx, cfg, l, n); err != nil {
			return err
		}
		choice.Kind = datastore.EtcdExisting
	}
	if choice.Kind == datastore.EtcdExisting {
		// A crash right after a migration may have left the SQLite file in place.
		if _, err := migrate.Finish(l); err != nil {
			slog.Warn("could not rename the SQLite file a migration to etcd left; it is not used", "err", err)
		}
	}
	if choice.Kind.Etcd() {
		if err := checkLocal(n.ip); err != nil {
			return err
		}
	}

	// Bind the port first: a port in use fails fast, before any file is touched.
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.HTTPSPort)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("port %d on %s is already in use (another server?): stop it or choose --https-listen-port: %w", cfg.HTTPSPort, cfg.BindAddress, err)
		}
		return fmt.Errorf("listen on --bind-address %s port %d: %w", cfg.BindAddress, cfg.HTTPSPort, err)
	}
	// The apiserver owns the listener once it starts (closing it under a
	// running apiserver makes it panic); until then, this closes it.
	apiStarted := false
	defer func() {
		if !apiStarted {
			ln.Close()
		}
	}()

	tok, err := token.FromFlags(cfg.Token, cfg.TokenFile, "token")
	if err != nil {
		return err
	}
	var joinEndpoints []string
	if choice.Kind == datastore.EtcdJoin {
		if joinEndpoints, err = joinCluster(ctx, cfg, l, tok, n.name, peerURL(n.ip)); err != nil {
			return err
		}
		slog.Info("join checks passed; bootstrap data received", "server", cfg.ServerURL)
	}

	mgr := component.NewManager()
	defer mgr.Stop(component.StopEach, component.StopAll)

	// kine needs no certificates, so it starts first: a server on a shared
	// external datastore takes the cluster's CAs from there.
	var kineStore store
	if !choice.Kind.Etcd() {
		if kineStore, err = startKine(ctx, mgr, cfg, l, choice.Kind); err != nil {
			return err
		}
		committed = true
		if err := withKV(kineStore.Endpoint(), func(kv clientv3.KV) error {
			return adoptBootstrap(ctx, kv, l, secretOf(l, tok))
		}); err != nil {
			return err
		}
	}

	files, err := prepareFiles(l, cfg, n)
	if err != nil {
		return err
	}
	slog.Info("certificates ready", "dir", l.TLSDir(), "created", files.created)

	store := kineStore
	if choice.Kind.Etcd() {
		if err := etcd.EnsureCertificates(l, n.name, n.ip); err != nil {
			return err
		}
		mode := map[datastore.Kind]etcd.Mode{datastore.EtcdNew: etcd.NewCluster, datastore.EtcdJoin: etcd.Join, datastore.EtcdExisting: etcd.Existing}[choice.Kind]
		e := etcd.New(etcd.Config{Name: n.name, Layout: l, NodeIP: n.ip, ExtraArgs: cfg.EtcdArgs}, mode, joinEndpoints)
		if err := mgr.Start(ctx, e); err != nil {
			return err
		}
		committed = true
		store = e
		slog.Info("datastore ready", "kind", choice.Kind.String(), "member", n.name)
	}
	if err := withKV(store.Endpoint(), func(kv clientv3.KV) error {
		return publishBootstrap(ctx, kv, l, files.tokens.server.Password)
	}); err != nil {
		return err
	}

	settings := controlplane.Settings{
		Layout:                     l,
		AdvertiseIP:                n.advertise,
		APIPort:                    cfg.HTTPSPort,
		ClusterCIDR:                cfg.ClusterCIDR,
		ServiceCIDR:                cfg.ServiceCIDR,
		ClusterDomain:              cfg.ClusterDomain,
		Datastore:                  store.Endpoint(),
		EncryptionConfig:           files.encryptionConfig,
		ExtraAPIServerArgs:         cfg.KubeAPIServerArgs,
		ExtraControllerManagerArgs: cfg.KubeControllerManagerArgs,
		ExtraSchedulerArgs:         cfg.KubeSchedulerArgs,
	}
	sup := newSupervisor(cfg, l, files, store)
	api := &controlplane.APIServer{Args: settings.APIServerArgs(), Listener: ln, Wrap: sup.Wrap, NodeName: n.name}
	if err := mgr.Start(ctx, api); err != nil {
		return err
	}
	apiStarted = true
	if err := waitOrFail(ctx, mgr, api.WaitReady); err != nil {
		return err
	}
	adminClient, err := kubernetes.NewForConfig(api.LoopbackConfig())
	if err != nil {
		return fmt.Errorf("client for the local apiserver: %w", err)
	}
	sup.useAPI(adminClient)
	slog.Info("kube-apiserver ready", "address", ln.Addr().String())

	if err := mgr.Start(ctx, controlplane.NewControllerManager(settings.ControllerManagerArgs(), n.name)); err != nil {
		return err
	}
	if err := mgr.Start(ctx, controlplane.NewScheduler(settings.SchedulerArgs(), n.name)); err != nil {
		return err
	}
	slog.Info("controllers started", "components", "kube-controller-manager,kube-scheduler")

	etcdStore, _ := store.(*etcd.Etcd)
	if err := mgr.Start(ctx, &nodeController{client: adminClient, name: n.name, ip: n.ip.String(), etcd: etcdStore, agent: !cfg.DisableAgent}); err != nil {
		return err
	}
	if !cfg.DisableAgent {
		if err := agent.Start(ctx, mgr, agent.Options{DataDir: cfg.DataDir, ServerURL: localAPI(cfg), Token: files.tokens.agent,
			NodeName: n.name, NodeIP: n.ip, Node: cfg.Node}); err != nil {
			return err
		}
	}

	admin := kubeconfig.ClientCert{Server: localAPI(cfg), CAFile: l.Cert(layout.ServerCA),
		CertFile: l.Cert(layout.AdminClient), KeyFile: l.Key(layout.AdminClient), Embed: true}
	if err := admin.Write(cfg.WriteKubeconfig, os.FileMode(cfg.KubeconfigMode())); err != nil {
		return fmt.Errorf("--write-kubeconfig: %w", err)
	}
	sup.SetReady(true)
	slog.Info("k3ha is ready", "took", time.Since(begin).Round(time.Millisecond), "kubeconfig", cfg.WriteKubeconfig,
		"node", n.name, "datastore", choice.Kind.String())

	select {
	case <-ctx.Done():
		slog.Info("shutting down", "reason", context.Cause(ctx))
		sup.SetReady(false)
		return nil
	case err := <-mgr.Failed():
		return err
	}
}

// waitOrFail waits for a readiness check unless a component dies first.
func waitOrFail(ctx context.Context, mgr *component.Manager, wait func(context.Context) error) error {
	waitCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case err := <-mgr.Failed():
			cancel(err)
		case <-waitCtx.Done():
		}
	}()
	if err := wait(waitCtx); err != nil {
		if cause := context.Cause(waitCtx); cause != nil && !errors.Is(cause, context.Canceled) {
			return cause
		}
		return err
	}
	return nil
}

// localAPI is how processes on this node reach the API port.
func localAPI(cfg *config.Server) string {
	host := "127.0.0.1"
	if ip := net.ParseIP(cfg.BindAddress); ip != nil && !ip.IsUnspecified() {
		host = ip.String()
	}
	return "https://" + net.JoinHostPort(host, strconv.Itoa(cfg.HTTPSPort))
}

func peerURL(ip net.IP) string { return "https://" + net.JoinHostPort(ip.String(), "2380") }

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
