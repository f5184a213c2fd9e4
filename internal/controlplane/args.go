// Package controlplane runs the real kube-apiserver, kube-controller-manager
// and kube-scheduler inside the k3ha process, each configured the way its own
// command line would be: flags → options → completed config → run.
package controlplane

import (
	"fmt"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"

	"github.com/k3ha/k3ha/internal/flagargs"
)

// Args is a component's command line.
type Args = flagargs.Args

// parse applies args to a component's named flag sets.
func parse(component string, sets cliflag.NamedFlagSets, args Args) error {
	fs := pflag.NewFlagSet(component, pflag.ContinueOnError)
	for _, name := range sets.Order {
		fs.AddFlagSet(sets.FlagSets[name])
	}
	if err := fs.Parse(args.List()); err != nil {
		return fmt.Errorf("%s flags: %w (check --%s-arg values)", component, err, component)
	}
	return nil
}
