// Package cli is k3ha's command line: one binary, one command per role.
package cli

import (
	"github.com/spf13/cobra"

	"github.com/k3ha/k3ha/internal/packaged"
	"github.com/k3ha/k3ha/internal/version"
)

// New returns the k3ha root command.
func New() *cobra.Command {
	root := &cobra.Command{
		Use:           "k3ha",
		Short:         "Lightweight highly available Kubernetes in one binary",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate(version.String() + "\n" + packaged.Versions())
	// Declared here so that the Kubernetes libraries' global --version flag
	// (of another type) does not take its place.
	root.Flags().Bool("version", false, "Print the version and exit")
	root.AddCommand(newServerCommand(), newAgentCommand(), newKubectlCommand(), newCrictlCommand(), newCtrCommand(), newCheckConfigCommand(), newEtcdSnapshotCommand(), newTokenCommand(), newSecretsEncryptCommand(), newCertificateCommand(), newContainerdCommand())
	return root
}
