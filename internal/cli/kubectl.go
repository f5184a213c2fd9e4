package cli

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	"k8s.io/component-base/logs"
	kubectl "k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"

	"github.com/k3ha/k3ha/internal/config"
)

func newKubectlCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl",
		Short:              "Run kubectl (embedded) against this node's cluster",
		DisableFlagParsing: true,
		Run: func(_ *cobra.Command, args []string) {
			RunKubectl(args)
		},
	}
}

// RunKubectl runs the real kubectl with args; it never returns. Without
// KUBECONFIG or --kubeconfig it uses the server's admin kubeconfig when that
// exists, as K3s does.
func RunKubectl(args []string) {
	if os.Getenv("KUBECONFIG") == "" && !hasKubeconfigFlag(args) {
		if _, err := os.Stat(config.DefaultKubeconfig); err == nil {
			os.Setenv("KUBECONFIG", config.DefaultKubeconfig)
		}
	}
	argv := append([]string{"kubectl"}, args...)
	_, _ = logs.GlogSetter(kubectl.GetLogVerbosity(argv))
	os.Args = argv // kubectl's plugin lookup reads os.Args
	cmd := kubectl.NewDefaultKubectlCommand()
	cmd.SetArgs(args)
	if err := cli.RunNoErrOutput(cmd); err != nil {
		util.CheckErr(err)
	}
	os.Exit(0)
}

func hasKubeconfigFlag(args []string) bool {
	for _, a := range args {
		if a == "--kubeconfig" || strings.HasPrefix(a, "--kubeconfig=") {
			return true
		}
	}
	return false
}
