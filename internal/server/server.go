// Package server runs a k3ha server: certificates, token, datastore, the
// Kubernetes control plane and the supervisor port, started in that order and
// stopped in reverse.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/controlplane"
	"github.com/k3ha/k3ha/internal/datastore/kine"
	"github.com/k3ha/k3ha/internal/kubeconfig"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/lockfile"
	"github.com/k3ha/k3ha/internal/supervisor"
)

// stopBudget bounds how long one component may take to stop, so that a
// SIGTERM ends the process within about ten seconds.
const stopBudget = 4 * time.Second

// Run runs the server until ctx ends or a component fails.
func Run(ctx context.Context, cfg *config.Server) error {
	begin := time.Now()
	l := layout.NewServer(cfg.DataDir)
	lock, err := lockfile.Acquire(l.LockFile(), "data dir "+cfg.DataDir)
	if err != nil {
		return err
	}
	defer lock.Release()

	ip, err := nodeIP(cfg.NodeIP)
	if err != nil {
		return err
	}
	name, err := nodeName(cfg.NodeName)
	if err != nil {
		return err
	}
	advertise := ip
	if cfg.AdvertiseAddress != "" {
		advertise = net.ParseIP(cfg.AdvertiseAddress)
	}
	if advertise.IsLoopback() {
		return fmt.Errorf("the node IP %s is a loopback address; other servers and agents could not reach it: give a reachable one with --node-ip", advertise)
	}

	// Bind the port first: a port in use fails fast, before any file is touched.
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.BindAddress, strconv.Itoa(cfg.HTTPSPort)))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("port %d on %s is already in use (another server?): stop it or choose --https-listen-port: %w", cfg.HTTPSPort, cfg.BindAddress, err)
		}
		return fmt.Errorf("listen on --bind-address %s port %d: %w", cfg.BindAddress, cfg.HTTPSPort, err)
	}
	defer ln.Close()

	certs, err := prepareFiles(l, cfg, name, advertise)
	if err != nil {
		return err
	}
	slog.Info("certificates ready", "dir", l.TLSDir(), "created", certs.created)

	mgr := component.NewManager()
	defer mgr.Stop(stopBudget)

	if err := os.MkdirAll(l.DBDir(), 0o700); err != nil {
		return fmt.Errorf("datastore dir: %w", err)
	}
	store := kine.New(kine.Config{DSN: kine.SQLiteDSN(l.SQLiteFile()), Socket: l.KineSocket()})
	if err := mgr.Start(ctx, store); err != nil {
		return err
	}
	slog.Info("datastore ready", "kind", "sqlite", "file", l.SQLiteFile())

	settings := controlplane.Settings{
		Layout:                     l,
		AdvertiseIP:                advertise,
		APIPort:                    cfg.HTTPSPort,
		ClusterCIDR:                cfg.ClusterCIDR,
		ServiceCIDR:                cfg.ServiceCIDR,
		ClusterDomain:              cfg.ClusterDomain,
		Datastore:                  store.Endpoint(),
		EncryptionConfig:           certs.encryptionConfig,
		ExtraAPIServerArgs:         cfg.KubeAPIServerArgs,
		ExtraControllerManagerArgs: cfg.KubeControllerManagerArgs,
		ExtraSchedulerArgs:         cfg.KubeSchedulerArgs,
	}
	sup := &supervisor.Supervisor{CACerts: certs.serverCA}
	api := &controlplane.APIServer{Args: settings.APIServerArgs(), Listener: ln, Wrap: sup.Wrap}
	if err := mgr.Start(ctx, api); err != nil {
		return err
	}
	if err := waitOrFail(ctx, mgr, api.WaitReady); err != nil {
		return err
	}
	slog.Info("kube-apiserver ready", "address", ln.Addr().String())

	if err := mgr.Start(ctx, controlplane.NewControllerManager(settings.ControllerManagerArgs(), name)); err != nil {
		return err
	}
	if err := mgr.Start(ctx, controlplane.NewScheduler(settings.SchedulerArgs(), name)); err != nil {
		return err
	}
	slog.Info("controllers started", "components", "kube-controller-manager,kube-scheduler")

	admin := kubeconfig.ClientCert{Server: localAPI(cfg), CAFile: l.Cert(layout.ServerCA),
		CertFile: l.Cert(layout.AdminClient), KeyFile: l.Key(layout.AdminClient), Embed: true}
	if err := admin.Write(cfg.WriteKubeconfig, os.FileMode(cfg.KubeconfigMode())); err != nil {
		return fmt.Errorf("--write-kubeconfig: %w", err)
	}
	sup.SetReady(true)
	slog.Info("k3ha is ready", "took", time.Since(begin).Round(time.Millisecond), "kubeconfig", cfg.WriteKubeconfig, "node", name)

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
