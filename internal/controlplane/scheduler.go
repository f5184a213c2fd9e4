package controlplane

import (
	"context"
	"fmt"

	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/cmd/kube-scheduler/app"
	"k8s.io/kubernetes/cmd/kube-scheduler/app/options"
)

// NewScheduler returns the embedded kube-scheduler, run while this server
// holds its lease. args must include --kubeconfig.
func NewScheduler(args Args, identity string) *elected {
	return &elected{
		name:       "kube-scheduler",
		configz:    "componentconfig",
		kubeconfig: args["kubeconfig"],
		identity:   identity,
		newTerm: func(ctx context.Context) (func(context.Context) error, error) {
			opts := options.NewOptions()
			if err := parse("kube-scheduler", *opts.Flags, args); err != nil {
				return nil, err
			}
			if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
				return nil, fmt.Errorf("kube-scheduler feature gates: %w", err)
			}
			name, err := cache.NewInformerName("kube-scheduler")
			if err != nil {
				return nil, err
			}
			opts.InformerName = name
			completed, sched, err := app.Setup(ctx, opts)
			if err != nil {
				return nil, fmt.Errorf("kube-scheduler: %w", err)
			}
			return func(ctx context.Context) error {
				err := app.Run(ctx, completed, sched)
				if ctx.Err() != nil {
					return nil // without its own election, Run reports its normal end as an error
				}
				return err
			}, nil
		},
	}
}
