package cli

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/k3ha/k3ha/internal/agent"
	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/hostcheck"
	"github.com/k3ha/k3ha/internal/logging"
	"github.com/k3ha/k3ha/internal/version"
)

func newAgentCommand() *cobra.Command {
	cfg := &config.Agent{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node (kubelet, containerd, kube-proxy) that joins a k3ha cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			src := config.Sources{Env: config.AgentEnv, DefaultFile: config.DefaultConfigFile}
			if err := src.Apply(cmd.Flags()); err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid agent configuration:\n%w", err)
			}
			if err := hostcheck.Real("").Fatal(); err != nil {
				return err
			}
			logging.Setup(os.Stderr, logging.Options{Debug: cfg.Debug})
			ctx, stop := signalContext()
			defer stop()
			slog.Info("starting k3ha agent", "version", version.Version, "data-dir", cfg.DataDir, "server", cfg.ServerURL)
			tuneGC()
			return agent.Run(ctx, cfg)
		},
	}
	cfg.AddFlags(cmd.Flags())
	return cmd
}
