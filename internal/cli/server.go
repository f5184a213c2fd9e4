package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/gomem"
	"github.com/k3ha/k3ha/internal/hostcheck"
	"github.com/k3ha/k3ha/internal/logging"
	"github.com/k3ha/k3ha/internal/server"
	"github.com/k3ha/k3ha/internal/version"
)

func newServerCommand() *cobra.Command {
	cfg := &config.Server{}
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a server: the Kubernetes control plane on an embedded datastore",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src := config.Sources{Env: config.ServerEnv, DefaultFile: config.DefaultConfigFile}
			if err := src.Apply(cmd.Flags()); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid server configuration:\n%w", err)
			}
			if !cfg.DisableAgent {
				if err := hostcheck.Real("").Fatal(); err != nil {
					return err
				}
			}
			logging.Setup(os.Stderr, logging.Options{Debug: cfg.Debug})
			ctx, stop := signalContext()
			defer stop()
			slog.Info("starting k3ha server", "version", version.Version, "data-dir", cfg.DataDir)
			tuneGC()
			return server.Run(ctx, cfg)
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}

// tuneGC sets the Go garbage collector for a long-running k3ha process.
func tuneGC() {
	mem, err := gomem.MemTotal()
	if err != nil {
		slog.Warn("machine memory unknown: no Go memory limit", "err", err)
	}
	gomem.Apply(gomem.Decide(os.Getenv, mem))
}

// signalContext is the one signal context of the process: SIGINT or SIGTERM
// starts an orderly shutdown; a second signal exits at once.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		cancel(fmt.Errorf("received %s", sig))
		<-ch
		os.Exit(1)
	}()
	return ctx, func() { signal.Stop(ch); cancel(nil) }
}
