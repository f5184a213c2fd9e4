package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/hostcheck"
)

func newCheckConfigCommand() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "check-config",
		Short: "Check that this machine can run k3ha: kernel, cgroups, programs, ports, disk",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fails := hostcheck.Print(cmd.OutOrStdout(), hostcheck.Real(dataDir).All())
			if fails > 0 {
				os.Exit(1)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&dataDir, "data-dir", "d", config.DefaultDataDirPath(), "The data dir whose disk to check")
	return cmd
}
