package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/containerd/containerd/v2/cmd/containerd/command"
	"github.com/spf13/cobra"

	// The plugins of a standard containerd, CRI included.
	_ "github.com/containerd/containerd/v2/cmd/containerd/builtins"
)

// newContainerdCommand is the containerd daemon the agent runs as its child
// process; it is not meant to be called by hand.
func newContainerdCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "containerd",
		Short:              "Run the embedded containerd (started by the agent)",
		Hidden:             true,
		DisableFlagParsing: true,
		Run: func(_ *cobra.Command, args []string) {
			if err := command.App().Run(context.Background(), append([]string{"containerd"}, args...)); err != nil {
				fmt.Fprintln(os.Stderr, "containerd:", err)
				os.Exit(1)
			}
			os.Exit(0)
		},
	}
}
