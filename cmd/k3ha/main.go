// Command k3ha is the single binary: server, agent and the embedded kubectl.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/k3ha/k3ha/internal/cli"
)

func main() {
	// Called through a symlink named kubectl, behave as kubectl.
	if filepath.Base(os.Args[0]) == "kubectl" {
		cli.RunKubectl(os.Args[1:])
	}
	if err := cli.New().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "k3ha:", err)
		os.Exit(1)
	}
}
