package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/k3ha/k3ha/internal/server"
)

func newTokenCommand() *cobra.Command {
	root := &cobra.Command{Use: "token", Short: "Manage the cluster's join tokens"}
	var sc serverClient
	var req server.TokenRotation
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Replace the server token (or, with --agent, the agent token) cluster-wide",
		Long: `Re-seals the cluster's bootstrap data with the new token on the running
server; every other server switches to it within seconds. New servers and
agents must join with the new token; nodes that joined keep working. Keep the
old token: snapshots taken before the rotation are sealed with it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.NewToken == "" {
				return errors.New("--new-token: give the new token (a secret, or a full K10 token of this cluster)")
			}
			ctx := cmd.Context()
			cl, err := sc.dial(ctx)
			if err != nil {
				return err
			}
			var res server.TokenRotated
			if err := cl.Operation(ctx, "token-rotate", req, &res); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Token rotated. The new token is %s\nKeep the old one: snapshots taken before now need it to be restored.\n", res.Token)
			return nil
		},
	}
	sc.addFlags(rotate.Flags())
	rotate.Flags().StringVar(&req.NewToken, "new-token", "", "The new token")
	rotate.Flags().BoolVar(&req.Agent, "agent", false, "Rotate the agent token instead of the server token")
	root.AddCommand(rotate)
	return root
}
