package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/k3ha/k3ha/internal/addons"
	"github.com/k3ha/k3ha/internal/agent"
	"github.com/k3ha/k3ha/internal/bootstrap"
	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/controlplane"
	"github.com/k3ha/k3ha/internal/crds"
	"github.com/k3ha/k3ha/internal/datastore"
	"github.com/k3ha/k3ha/internal/datastore/etcd"
	"github.com/k3ha/k3ha/internal/datastore/migrate"
	"github.com/k3ha/k3ha/internal/events"
	"github.com/k3ha/k3ha/internal/helm"
	"github.com/k3ha/k3ha/internal/kubeconfig"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/packaged"
	"github.com/k3ha/k3ha/internal/snapshot"
	"github.com/k3ha/k3ha/internal/token"
)

// startup carries out a plan. Each step uses what the earlier ones made;
// the components they start go to mgr, which stops them in reverse.
type startup struct {
	cfg    *config.Server
	plan   plan
	layout layout.Server
	mgr    *component.Manager
	undo   *undo

	listener      *listener
	joinEndpoints []string // client URLs of the cluster joined
	store         store
	files         prepared
	api           *controlplane.APIServer
	apiInputs     bootstrap.Data // the bootstrap files api was built from
	client        *kubernetes.Clientset
	sup           *serverSupervisor
	tokens        *liveTokens // the server's tokens, changed by rotations
}

type step struct {
	name string
	run  func(context.Context) error
}

// steps is start-up in order.
func (s *startup) steps() []step {
	return []step{
		{"migrate sqlite to etcd", s.migrate},
		{"listen", s.listen},
		{"join", s.join},
		{"kine", s.startKine},
		{"files", s.prepareFiles},
		{"etcd", s.startEtcd},
		{"bootstrap data", s.publishBootstrap},
		{"apiserver", s.startAPIServer},
		{"controllers", s.startControllers},
		{"node controller", s.startNodeController},
		{"packaged components", s.startAddons},
		{"snapshots", s.startSnapshots},
		{"token and key rotation", s.startTokenRotation},
		{"agent", s.startAgent},
		{"kubeconfig", s.writeKubeconfig},
	}
}

func (s *startup) migrate(ctx context.Context) error {
	if s.plan.finishMigration {
		if _, err := migrate.Finish(s.layout); err != nil {
			slog.Warn("could not rename the SQLite file a migration to etcd left; it is not used", "err", err)
		}
	}
	if !s.plan.migrate {
		return nil
	}
	return migrateSQLite(ctx, s.cfg, s.layout, s.plan.node)
}

// listen binds the port first: a port in use fails fast, before any file
// is touched.
func (s *startup) listen(ctx context.Context) error {
	addr := net.JoinHostPort(s.cfg.BindAddress, strconv.Itoa(s.cfg.HTTPSPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("port %d on %s is already in use (another server?): stop it or choose --https-listen-port: %w", s.cfg.HTTPSPort, s.cfg.BindAddress, err)
		}
		return fmt.Errorf("listen on --bind-address %s port %d: %w", s.cfg.BindAddress, s.cfg.HTTPSPort, err)
	}
	s.listener = &listener{Listener: ln}
	return s.mgr.Start(ctx, s.listener)
}

func (s *startup) join(ctx context.Context) error {
	if s.plan.datastore != datastore.EtcdJoin {
		return nil
	}
	var err error
	if s.joinEndpoints, err = joinCluster(ctx, s.cfg, s.layout, s.plan.token, s.plan.node.name, peerURL(s.plan.node.ip)); err != nil {
		return err
	}
	slog.Info("join checks passed; bootstrap data received", "server", s.cfg.ServerURL)
	return nil
}

// startKine starts kine first when there is no embedded etcd: it needs no
// certificates, and a server on a shared external datastore takes the
// cluster's CAs from there.
func (s *startup) startKine(ctx context.Context) error {
	if s.plan.datastore.Etcd() {
		return nil
	}
	var err error
	if s.store, err = startKine(ctx, s.mgr, s.cfg, s.layout, s.plan.datastore); err != nil {
		return err
	}
	s.undo.commit()
	return withKV(s.store.Endpoint(), func(kv clientv3.KV) error {
		_, err := adoptBootstrap(ctx, kv, s.layout, secretOf(s.layout, s.plan.token), s.cfg.SecretsEncryption)
		return err
	})
}

func (s *startup) prepareFiles(context.Context) error {
	var err error
	if s.files, err = prepareFiles(s.layout, s.cfg, s.plan.node); err != nil {
		return err
	}
	slog.Info("certificates ready", "dir", s.layout.TLSDir(), "created", s.files.created)
	return nil
}

func (s *startup) startEtcd(ctx context.Context) error {
	if !s.plan.datastore.Etcd() {
		return nil
	}
	n := s.plan.node
	if err := etcd.EnsureCertificates(s.layout, n.name, n.ip); err != nil {
		return err
	}
	e := etcd.New(etcd.Config{Name: n.name, Layout: s.layout, NodeIP: n.ip, ExtraArgs: s.cfg.EtcdArgs}, s.plan.etcdMode, s.joinEndpoints)
	s.store = e
	if s.plan.buildAPIServerEarly {
		if err := e.Listen(); err != nil {
			return err
		}
		// Recorded to compare after the bootstrap step, which may change them.
		inputs, err := apiServerFiles(s.layout)
		if err != nil {
			return err
		}
		s.apiInputs = inputs
		s.buildAPIServer(ctx)
	}
	if err := s.mgr.Start(ctx, e); err != nil {
		return err
	}
	s.undo.commit()
	slog.Info("datastore ready", "kind", s.plan.datastore.String(), "member", n.name)
	return nil
}

// buildAPIServer makes the apiserver and its supervisor and starts building
// the apiserver. The tokens it serves are filled in by publishBootstrap.
func (s *startup) buildAPIServer(ctx context.Context) {
	if s.tokens == nil {
		s.tokens = &liveTokens{layout: s.layout, ca: s.files.serverCA}
	}
	s.sup = newSupervisor(s.cfg, s.layout, s.files, s.store, s.tokens)
	s.api = &controlplane.APIServer{Args: s.settings().APIServerArgs(), Listener: s.listener.handOver(), Wrap: s.sup.Wrap, NodeName: s.plan.node.name}
	s.api.Build(ctx)
}

// publishBootstrap stores or checks the cluster's bootstrap data; the
// token files are written only once the datastore accepted the token.
func (s *startup) publishBootstrap(ctx context.Context) error {
	t := s.files.tokens
	err := withKV(s.store.Endpoint(), func(kv clientv3.KV) error {
		secret, err := publishBootstrap(ctx, kv, s.layout, t.server.Password, s.cfg.SecretsEncryption)
		if err == nil && secret != t.server.Password {
			t = rotated(t, s.files.serverCA, secret)
		}
		return err
	})
	if err != nil {
		return err
	}
	// Without an agent token of its own, the server takes the cluster's,
	// which the bootstrap data may just have brought.
	if s.cfg.AgentToken == "" && s.cfg.AgentTokenFile == "" {
		if stored, err := readToken(s.layout.AgentTokenFile()); err == nil && stored.Password != "" && stored.Password != t.agent.Password {
			t = newTokens(s.files.serverCA, t.server.Password, stored.Password)
		}
	}
	if s.tokens == nil {
		s.tokens = &liveTokens{layout: s.layout, ca: s.files.serverCA}
	}
	return s.tokens.set(t)
}

func (s *startup) settings() controlplane.Settings {
	return controlplane.Settings{
		Layout:                     s.layout,
		AdvertiseIP:                s.plan.node.advertise,
		APIPort:                    s.cfg.HTTPSPort,
		ClusterCIDR:                s.cfg.ClusterCIDR,
		ServiceCIDR:                s.cfg.ServiceCIDR,
		ClusterDomain:              s.cfg.ClusterDomain,
		Datastore:                  s.store.Endpoint(),
		EncryptionConfig:           s.files.encryptionConfig,
		ExtraAPIServerArgs:         s.cfg.KubeAPIServerArgs,
		ExtraControllerManagerArgs: s.cfg.KubeControllerManagerArgs,
		ExtraSchedulerArgs:         s.cfg.KubeSchedulerArgs,
	}
}

func (s *startup) startAPIServer(ctx context.Context) error {
	if s.api != nil && !s.apiInputsKept() {
		// The bootstrap data changed files the early build read (settings
		// rotated while this server was down): build again from them.
		slog.Info("bootstrap data changed the apiserver's files: building it again")
		s.api.Discard()
		s.api = nil
	}
	if s.api == nil {
		s.buildAPIServer(ctx)
	}
	if err := s.mgr.Start(ctx, s.api); err != nil {
		return err
	}
	var err error
	if s.client, err = kubernetes.NewForConfig(s.api.LoopbackConfig()); err != nil {
		return fmt.Errorf("client for the local apiserver: %w", err)
	}
	s.sup.useAPI(s.client)
	slog.Info("kube-apiserver ready", "address", s.listener.Addr().String())
	return nil
}

// apiInputsKept reports whether the data dir's bootstrap files are still
// those the apiserver was built from.
func (s *startup) apiInputsKept() bool {
	now, err := apiServerFiles(s.layout)
	return err == nil && now.Equal(s.apiInputs)
}

// apiServerFiles are the bootstrap files the apiserver reads: all but the
// agent token, which the supervisor serves from memory.
func apiServerFiles(l layout.Server) (bootstrap.Data, error) {
	d, err := bootstrap.Collect(l)
	delete(d.Files, relTo(l, l.AgentTokenFile()))
	return d, err
}

func (s *startup) startControllers(ctx context.Context) error {
	settings := s.settings()
	if err := s.mgr.Start(ctx, controlplane.NewControllerManager(settings.ControllerManagerArgs(), s.plan.node.name)); err != nil {
		return err
	}
	if err := s.mgr.Start(ctx, controlplane.NewScheduler(settings.SchedulerArgs(), s.plan.node.name)); err != nil {
		return err
	}
	slog.Info("controllers started", "components", "kube-controller-manager,kube-scheduler")
	return nil
}

func (s *startup) startNodeController(ctx context.Context) error {
	etcdStore, _ := s.store.(*etcd.Etcd)
	n := s.plan.node
	return s.mgr.Start(ctx, &nodeController{client: s.client, name: n.name, ip: n.ip.String(), etcd: etcdStore, agent: s.plan.agent})
}

// startAddons writes the packaged components' manifests, installs the
// Addon type, records this server's manifests as Addons and campaigns to
// run k3ha's controllers, which apply them.
func (s *startup) startAddons(ctx context.Context) error {
	l := s.layout
	values := packaged.Values{ClusterDNS: s.cfg.ClusterDNS, ClusterDomain: s.cfg.ClusterDomain,
		StoragePath: s.cfg.StoragePath(), Registry: s.cfg.SystemDefaultRegistry}
	if err := packaged.WriteManifests(l.ManifestsDir(), values, s.plan.components, s.plan.disabled); err != nil {
		return err
	}
	if err := packaged.WriteCharts(l.ChartsDir()); err != nil {
		return err
	}
	restConfig := s.api.LoopbackConfig()
	// The Helm types are installed even with --disable-helm-controller, so
	// that HelmChart files still apply for another controller to act on.
	if err := crds.Install(ctx, restConfig, append(helm.CRDs(), addons.CRD(), snapshot.CRD())...); err != nil {
		return err
	}
	scanner, err := newManifestScanner(restConfig, l.ManifestsDir(), s.plan.node.name)
	if err != nil {
		return err
	}
	if err := s.mgr.Start(ctx, scanner); err != nil {
		return err
	}
	c := &controllers{restConfig: restConfig, identity: s.plan.node.name,
		enabled: s.plan.components, disabled: s.plan.disabled, registry: s.cfg.SystemDefaultRegistry}
	if !s.cfg.DisableHelmController {
		c.charts = s.chartFetcher()
	}
	return s.mgr.Start(ctx, c)
}

// chartFetcher downloads charts for the Helm controller; charts on this
// server's own /static/charts/ are fetched over loopback with its token.
func (s *startup) chartFetcher() *helm.Fetcher {
	cas := x509.NewCertPool()
	cas.AppendCertsFromPEM(s.files.serverCA)
	return &helm.Fetcher{
		Self: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cfg.HTTPSPort)),
		CAs:  cas,
		Auth: func() (string, string) {
			server, _ := s.tokens.secrets()
			return token.RoleServer, server
		},
	}
}

// startSnapshots takes this server's snapshots on schedule and serves
// `k3ha etcd-snapshot`: etcd snapshots on embedded etcd, online backups on
// SQLite; an external datastore is backed up by whoever runs it.
func (s *startup) startSnapshots(ctx context.Context) error {
	if s.plan.datastore == datastore.External {
		return nil
	}
	restConfig := s.api.LoopbackConfig()
	dyn, err := dynamic.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	recorder, stopRecorder, err := events.NewRecorder(restConfig, "k3ha-snapshots")
	if err != nil {
		return err
	}
	m := &snapshot.Manager{Node: s.plan.node.name, Dir: s.cfg.Snapshots.Dir, Cfg: s.cfg.Snapshots,
		Records: &snapshot.Records{Client: dyn, Recorder: recorder}}
	if m.Dir == "" {
		m.Dir = s.layout.SnapshotDir()
	}
	if e, ok := s.store.(*etcd.Etcd); ok {
		m.Etcd, m.EtcdEndpoint = e.Client(), e.Client().Endpoints()[0]
	} else {
		m.SQLite = s.layout.SQLiteFile()
	}
	s.sup.register("snapshots", jsonOperation(m.Handle))
	return s.mgr.Start(ctx, &snapshotScheduler{m: m, stop: stopRecorder})
}

// startTokenRotation serves `k3ha token rotate` and `k3ha secrets-encrypt`,
// and follows rotations made on other servers.
func (s *startup) startTokenRotation(ctx context.Context) error {
	r := &tokenRotator{layout: s.layout, tokens: s.tokens, endpoint: s.store.Endpoint()}
	s.sup.register("token-rotate", jsonOperation(r.rotate))
	e := &encryption{layout: s.layout, client: s.client, endpoint: s.store.Endpoint(), tokens: s.tokens, port: s.cfg.HTTPSPort}
	s.sup.register("secrets-encrypt", jsonOperation(e.handle))
	if err := s.mgr.Start(ctx, watchBootstrap(r)); err != nil {
		return err
	}
	// Leaf certificates near their expiry are renewed while the server
	// runs too; the apiserver, etcd and the clients reload their files.
	return s.mgr.Start(ctx, &component.Periodic{Label: "certificate renewal", Every: certCheckEvery, Tick: func(context.Context) {
		if err := s.renewCertificates(); err != nil {
			slog.Warn("renewing certificates failed; retrying later", "err", err)
		}
	}})
}

// certCheckEvery is how often a running server looks for leaf
// certificates near their expiry.
const certCheckEvery = 12 * time.Hour

func (s *startup) renewCertificates() error {
	if _, err := controlplane.EnsureLeafCertificates(s.layout, leafIdentity(s.cfg, s.plan.node)); err != nil {
		return err
	}
	if s.plan.datastore.Etcd() {
		return etcd.EnsureCertificates(s.layout, s.plan.node.name, s.plan.node.ip)
	}
	return nil
}

func (s *startup) startAgent(ctx context.Context) error {
	if !s.plan.agent {
		return nil
	}
	n := s.plan.node
	return agent.Start(ctx, s.mgr, agent.Options{DataDir: s.cfg.DataDir, ServerURL: localAPI(s.cfg), Token: s.tokens.get().agent,
		NodeName: n.name, NodeIP: n.ip, Node: s.cfg.Node})
}

func (s *startup) writeKubeconfig(context.Context) error {
	l := s.layout
	admin := kubeconfig.ClientCert{Server: localAPI(s.cfg), CAFile: l.Cert(layout.ServerCA),
		CertFile: l.Cert(layout.AdminClient), KeyFile: l.Key(layout.AdminClient), Embed: true}
	if err := admin.Write(s.cfg.WriteKubeconfig, os.FileMode(s.cfg.KubeconfigMode())); err != nil {
		return fmt.Errorf("--write-kubeconfig: %w", err)
	}
	return nil
}

// listener is the API port from its binding until the apiserver owns it:
// closing it under a running apiserver makes that panic, so Stop closes it
// only if it was never handed over.
type listener struct {
	net.Listener
	handedOver bool
}

func (l *listener) Name() string                { return "listener" }
func (l *listener) Start(context.Context) error { return nil }
func (l *listener) handOver() net.Listener      { l.handedOver = true; return l.Listener }
func (l *listener) Stop() error {
	if l.handedOver {
		return nil
	}
	return l.Listener.Close()
}
