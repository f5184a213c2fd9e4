// Command k3ha is the single binary: server, agent and the embedded kubectl.
package main

import (
	"fmt"
	"os"

	"github.com/k3ha/k3ha/internal/cli"
	"github.com/k3ha/k3ha/internal/sdnotify"
)

func main() {
	// Before anything else: no embedded part may tell systemd it is ready.
	sdnotify.Capture()
	// Called through a symlink named kubectl, crictl or ctr, be that tool.
	cli.ByName(os.Args[0], os.Args[1:])
	if err := cli.New().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "k3ha:", err)
		os.Exit(1)
	}
}
