package cli

import (
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/pki"
	"github.com/k3ha/k3ha/internal/server"
)

func newCertificateCommand() *cobra.Command {
	var dataDir string
	root := &cobra.Command{Use: "certificate", Short: "Check and rotate this node's certificates"}
	root.PersistentFlags().StringVarP(&dataDir, "data-dir", "d", config.DefaultDataDirPath(), "The node's data dir")
	check := &cobra.Command{
		Use: "check", Short: "List every certificate with its expiry", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			certs, err := pki.Inspect(dataDir)
			if err != nil {
				return err
			}
			now := time.Now()
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "FILENAME\tSUBJECT\tUSAGES\tEXPIRES\tRESIDUAL TIME\tSTATUS")
			for _, c := range certs {
				rel, _ := filepath.Rel(dataDir, c.File)
				left := c.NotAfter.Sub(now).Round(24 * time.Hour)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%dd\t%s\n", rel, c.Subject, strings.Join(c.Usages, ","),
					c.NotAfter.UTC().Format("Jan 02, 2006 15:04 MST"), int(left.Hours()/24), c.Status(now))
			}
			return tw.Flush()
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Have a stopped server issue new leaf certificates from the same CAs at its next start",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			backup, err := server.RotateCertificates(dataDir)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Certificates backed up to %s; start the server to issue new ones (agents fetch theirs at their next start).\n", backup)
			return nil
		},
	}
	root.AddCommand(check, rotate)
	return root
}
