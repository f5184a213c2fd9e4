// Package controlplane runs the real kube-apiserver, kube-controller-manager
// and kube-scheduler inside the k3ha process, each configured the way its own
// command line would be: flags → options → completed config → run.
package controlplane

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
)

// Args is a component's command line as flag name → value. k3ha fills in its
// defaults, then the user's --kube-*-arg values replace them key by key.
type Args map[string]string

// Merge applies "key=value" overrides given by the user.
func (a Args) Merge(overrides []string) {
	for _, o := range overrides {
		k, v, _ := strings.Cut(o, "=")
		a[strings.TrimLeft(k, "-")] = v
	}
}

// List renders the flags in a stable order.
func (a Args) List() []string {
	keys := make([]string, 0, len(a))
	for k := range a {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("--%s=%s", k, a[k]))
	}
	return out
}

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
