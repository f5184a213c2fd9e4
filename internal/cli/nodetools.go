package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	ctrapp "github.com/containerd/containerd/v2/cmd/ctr/app"
	"github.com/spf13/cobra"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/payload"
)

// nodeDataDir is the data dir of the node whose containerd crictl and ctr
// talk to: $K3HA_DATA_DIR, else the default.
func nodeDataDir() string {
	if d := os.Getenv("K3HA_DATA_DIR"); d != "" {
		return d
	}
	return config.DefaultDataDirPath()
}

func containerdSocket() string {
	return layout.NewAgent(nodeDataDir()).ContainerdSocket()
}

func newCrictlCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "crictl",
		Short:              "Run crictl against this node's containerd ($K3HA_DATA_DIR selects the node)",
		DisableFlagParsing: true,
		Run:                func(_ *cobra.Command, args []string) { RunCrictl(args) },
	}
}

func newCtrCommand() *cobra.Command {
	return &cobra.Command{
		Use:                "ctr",
		Short:              "Run containerd's ctr against this node's containerd ($K3HA_DATA_DIR selects the node)",
		DisableFlagParsing: true,
		Run:                func(_ *cobra.Command, args []string) { RunCtr(args) },
	}
}

// RunCrictl runs the crictl k3ha carries, pointed at the node's containerd
// unless told otherwise; it never returns.
func RunCrictl(args []string) {
	self, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	p, err := payload.Open(self)
	if err != nil {
		fatal(fmt.Errorf("crictl: %w", err))
	}
	prog, err := p.Program(nodeDataDir(), "bin/crictl")
	if err != nil {
		fatal(fmt.Errorf("crictl: %w", err))
	}
	sock := "unix://" + containerdSocket()
	env := os.Environ()
	for _, v := range []string{"CONTAINER_RUNTIME_ENDPOINT", "IMAGE_SERVICE_ENDPOINT"} {
		if os.Getenv(v) == "" {
			env = append(env, v+"="+sock)
		}
	}
	err = syscall.Exec(prog, append([]string{"crictl"}, args...), env)
	fatal(fmt.Errorf("crictl: %w", err))
}

// RunCtr runs containerd's ctr, embedded, against the node's containerd
// and the Kubernetes namespace unless told otherwise; it never returns.
func RunCtr(args []string) {
	if os.Getenv("CONTAINERD_ADDRESS") == "" {
		os.Setenv("CONTAINERD_ADDRESS", containerdSocket())
	}
	if os.Getenv("CONTAINERD_NAMESPACE") == "" {
		os.Setenv("CONTAINERD_NAMESPACE", "k8s.io")
	}
	if err := ctrapp.New().Run(context.Background(), append([]string{"ctr"}, args...)); err != nil {
		fatal(fmt.Errorf("ctr: %w", err))
	}
	os.Exit(0)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "k3ha:", err)
	os.Exit(1)
}

// ByName runs the tool a symlink to k3ha is named after (kubectl, crictl,
// ctr), as K3s does; it returns only when the name is none of them.
func ByName(argv0 string, args []string) {
	switch filepath.Base(argv0) {
	case "kubectl":
		RunKubectl(args)
	case "crictl":
		RunCrictl(args)
	case "ctr":
		RunCtr(args)
	}
}
