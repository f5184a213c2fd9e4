// Package flagargs is an embedded component's command line as flag name →
// value: k3ha fills in its defaults, then the user's --<component>-arg
// key=value settings replace them key by key.
package flagargs

import (
	"fmt"
	"sort"
	"strings"
)

// Args maps flag names (without dashes) to values.
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
