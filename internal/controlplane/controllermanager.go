package controlplane

import (
	"context"
	"fmt"

	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app/options"
)

// NewControllerManager returns the embedded kube-controller-manager, run
// while this server holds its lease. args must include --kubeconfig.
func NewControllerManager(args Args, identity string) *elected {
	return &elected{
		name:       "kube-controller-manager",
		configz:    app.ConfigzName,
		kubeconfig: args["kubeconfig"],
		identity:   identity,
		newTerm: func(ctx context.Context) (func(context.Context) error, error) {
			s, err := options.NewKubeControllerManagerOptions()
			if err != nil {
				return nil, fmt.Errorf("kube-controller-manager options: %w", err)
			}
			known, disabled, aliases := app.KnownControllers(), app.ControllersDisabledByDefault(), app.ControllerAliases()
			sets := s.Flags(known, disabled, aliases)
			s.ParsedFlags = &sets
			if err := parse("kube-controller-manager", sets, args); err != nil {
				return nil, err
			}
			if err := s.ComponentGlobalsRegistry.Set(); err != nil {
				return nil, fmt.Errorf("kube-controller-manager feature gates: %w", err)
			}
			config, err := s.Config(ctx, known, disabled, aliases)
			if err != nil {
				return nil, fmt.Errorf("kube-controller-manager config: %w", err)
			}
			completed := config.Complete()
			return func(ctx context.Context) error { return app.Run(ctx, completed) }, nil
		},
	}
}
