package controlplane

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	encryptioncontroller "k8s.io/apiserver/pkg/server/options/encryptionconfig/controller"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/cmd/kube-apiserver/app"
	"k8s.io/kubernetes/cmd/kube-apiserver/app/options"

	"github.com/k3ha/k3ha/internal/component"
)

// encryptionReloadEvery is how often the apiserver looks for a changed
// encryption config.
const encryptionReloadEvery = 2 * time.Second

// APIServer is the embedded kube-apiserver.
type APIServer struct {
	Args Args
	// Listener is the port the API is served on; the caller binds it so that a
	// port already in use is reported before anything starts.
	Listener net.Listener
	// Wrap puts handlers in front of the apiserver's own chain (the supervisor paths).
	Wrap func(apiserver http.Handler) http.Handler
	// NodeName makes the apiserver's identity (its lease in kube-system).
	// Upstream derives it from the host name, which servers in containers or
	// network namespaces may share; two apiservers with one identity fight
	// over one lease.
	NodeName string

	component.Runner
	runCtx   context.Context
	built    chan struct{} // closed when prepared or buildErr is set
	prepared interface{ Run(context.Context) error }
	buildErr error
	loopback *rest.Config
	// informerName is registered once per process name; a discarded build
	// gives it back.
	informerName *cache.InformerName
}

func (a *APIServer) Name() string { return "kube-apiserver" }

// Build configures the apiserver in the background, so that start-up can
// overlap it with the datastore's start; Start then only runs it. The
// build only reads from the datastore (its watch caches begin to list), so
// a start that fails after it has changed nothing. A second build of one
// APIServer would race the first on the process's globals, so it panics;
// build anew with a new APIServer after Discard.
func (a *APIServer) Build(ctx context.Context) {
	if a.built != nil {
		panic("kube-apiserver: Build called twice on one APIServer")
	}
	a.runCtx = a.Context(ctx)
	a.built = make(chan struct{})
	go func() {
		defer close(a.built)
		begin := time.Now()
		a.prepared, a.buildErr = a.prepare(a.runCtx)
		if a.buildErr == nil {
			slog.Info("kube-apiserver prepared", "took", time.Since(begin).Round(time.Millisecond))
		}
	}()
}

// Start serves the apiserver, built first unless Build was called;
// WaitReady tells when it can answer.
func (a *APIServer) Start(ctx context.Context) error {
	if a.built == nil {
		a.Build(ctx)
	}
	select {
	case <-a.built:
	case <-ctx.Done():
		a.Abort()
		return ctx.Err()
	}
	if a.buildErr != nil {
		a.Abort()
		return a.buildErr
	}
	a.Run(a.runCtx, a.prepared.Run)
	return nil
}

// Discard drops a build that Start will not run, once the build has
// finished (two builds at once would race on the process's globals).
func (a *APIServer) Discard() {
	a.Abort()
	if a.built != nil {
		<-a.built
	}
	a.informerName.Release()
}

// prepare goes the way of kube-apiserver's own command: flags → options →
// completed options → config → server chain.
func (a *APIServer) prepare(ctx context.Context) (interface{ Run(context.Context) error }, error) {
	// A key rotation waits for every apiserver to reload the encryption
	// config; upstream looks at the file once a minute.
	encryptioncontroller.EncryptionConfigFileChangePollDuration = encryptionReloadEvery
	s := options.NewServerRunOptions()
	if err := parse("kube-apiserver", s.Flags(), a.Args); err != nil {
		return nil, err
	}
	s.SecureServing.Listener = a.Listener
	if err := s.GenericServerRunOptions.ComponentGlobalsRegistry.Set(); err != nil {
		return nil, fmt.Errorf("kube-apiserver feature gates: %w", err)
	}
	// The apiserver's own loopback clients should not log warnings about themselves.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})

	completed, err := s.Complete(ctx)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver options: %w", err)
	}
	if errs := completed.Validate(); len(errs) != 0 {
		return nil, fmt.Errorf("kube-apiserver options: %w", utilerrors.NewAggregate(errs))
	}
	if completed.InformerName == nil {
		if completed.InformerName, err = cache.NewInformerName("kube-apiserver"); err != nil {
			return nil, err
		}
		a.informerName = completed.InformerName
	}
	config, err := app.NewConfig(completed)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver config: %w", err)
	}
	if a.NodeName != "" {
		sum := sha256.Sum256([]byte(a.NodeName))
		id := "apiserver-" + hex.EncodeToString(sum[:10])
		config.KubeAPIs.ControlPlane.Generic.APIServerID = id
		config.ApiExtensions.GenericConfig.APIServerID = id
		config.Aggregator.GenericConfig.APIServerID = id
	}
	if a.Wrap != nil {
		// The aggregator is the outermost server of the chain: its handler is what is served.
		build := config.Aggregator.GenericConfig.BuildHandlerChainFunc
		config.Aggregator.GenericConfig.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
			return a.Wrap(build(h, c))
		}
	}
	a.loopback = rest.CopyConfig(config.KubeAPIs.ControlPlane.Generic.LoopbackClientConfig)
	cc, err := config.Complete()
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver config: %w", err)
	}
	chain, err := app.CreateServerChain(cc)
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	prepared, err := chain.PrepareRun()
	if err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w", err)
	}
	return prepared, nil
}

// WaitReady polls /readyz through the apiserver's loopback client.
func (a *APIServer) WaitReady(ctx context.Context) error {
	cs, err := kubernetes.NewForConfig(a.loopback)
	if err != nil {
		return err
	}
	client := cs.Discovery().RESTClient()
	var last error
	err = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case <-a.Done():
			return false, fmt.Errorf("kube-apiserver stopped: %w", a.Err())
		default:
		}
		reqCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if body, err := client.Get().AbsPath("/readyz").DoRaw(reqCtx); err != nil {
			last = fmt.Errorf("%w: %s", err, body)
			return false, nil
		}
		return true, nil
	})
	if err != nil && last != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("kube-apiserver not ready: %w (last check: %v)", err, last)
	}
	return err
}

// LoopbackConfig is a privileged client config for this apiserver; valid after Start.
func (a *APIServer) LoopbackConfig() *rest.Config { return rest.CopyConfig(a.loopback) }

// Stop shuts the apiserver down gracefully and waits for it.
func (a *APIServer) Stop() error { return a.StopWithin(0) }
