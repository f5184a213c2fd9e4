package cli

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/k3ha/k3ha/internal/server"
)

func newSecretsEncryptCommand() *cobra.Command {
	var sc serverClient
	root := &cobra.Command{Use: "secrets-encrypt", Short: "Inspect and rotate the encryption of Secrets at rest (--secrets-encryption)"}
	sc.addFlags(root.PersistentFlags())
	op := func(name, short string) *cobra.Command {
		return &cobra.Command{
			Use: name, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				ctx := cmd.Context()
				cl, err := sc.dial(ctx)
				if err != nil {
					return err
				}
				var st server.EncryptionStatus
				if err := cl.Operation(ctx, "secrets-encrypt", server.EncryptionRequest{Operation: name}, &st); err != nil {
					return err
				}
				printEncryption(cmd, st)
				return nil
			},
		}
	}
	root.AddCommand(
		op("status", "Show the keys and whether every server runs with the same config"),
		op("rotate-keys", "Make a new key, rewrite every Secret with it, then drop the old key, on every server"),
		op("reencrypt", "Rewrite every Secret with the current key"),
	)
	return root
}

func printEncryption(cmd *cobra.Command, st server.EncryptionStatus) {
	out := cmd.OutOrStdout()
	if !st.Enabled {
		fmt.Fprintln(out, "Encryption Status: Disabled")
		return
	}
	fmt.Fprintln(out, "Encryption Status: Enabled")
	fmt.Fprintf(out, "Active Key: %s\n", st.ActiveKey)
	fmt.Fprintf(out, "Keys: %s\n", strings.Join(st.Keys, ", "))
	if st.Reencrypted > 0 {
		fmt.Fprintf(out, "Secrets Rewritten: %d\n", st.Reencrypted)
	}
	if st.HashesMatch {
		fmt.Fprintln(out, "Server Encryption Hashes: All hashes match")
	} else {
		fmt.Fprintln(out, "Server Encryption Hashes: they differ")
	}
	var addrs []string
	for a := range st.Servers {
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	for _, a := range addrs {
		fmt.Fprintf(out, "  %s: %s\n", a, st.Servers[a])
	}
}
