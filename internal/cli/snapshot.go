package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/snapshot"
	"github.com/k3ha/k3ha/internal/supervisor"
	"github.com/k3ha/k3ha/internal/token"
)

// serverClient is how a `k3ha` command reaches the local server: its
// supervisor port with the server token.
type serverClient struct {
	dataDir string
	server  string
	token   string
}

func (c *serverClient) addFlags(fs *pflag.FlagSet) {
	fs.StringVarP(&c.dataDir, "data-dir", "d", config.DefaultDataDirPath(), "The server's data dir (its token is read from there)")
	fs.StringVar(&c.server, "server", "https://127.0.0.1:6443", "The server to ask")
	fs.StringVarP(&c.token, "token", "t", "", "The server token (default: <data-dir>/server/token)")
}

func (c *serverClient) dial(ctx context.Context) (*supervisor.Client, error) {
	raw := c.token
	if raw == "" {
		data, err := os.ReadFile(layout.NewServer(c.dataDir).TokenFile())
		if err != nil {
			return nil, fmt.Errorf("read the server token (give --token or --data-dir): %w", err)
		}
		raw = strings.TrimSpace(string(data))
	}
	tok, err := token.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--token: %w", err)
	}
	cl, err := supervisor.Dial(ctx, c.server, tok, token.RoleServer)
	if err != nil {
		return nil, fmt.Errorf("%s (is the server running?): %w", c.server, err)
	}
	// Snapshots and their trial restores, S3 uploads and re-encryption take time.
	return cl.WithTimeout(10 * time.Minute), nil
}

func newEtcdSnapshotCommand() *cobra.Command {
	var sc serverClient
	var req snapshot.Request
	var compress bool
	var s3 config.S3
	root := &cobra.Command{
		Use:   "etcd-snapshot",
		Short: "Take, list, delete, prune and check snapshots of the running server's datastore",
	}
	sc.addFlags(root.PersistentFlags())
	root.PersistentFlags().StringVar(&req.Dir, "dir", "", "Snapshot dir on the server (default: its --etcd-snapshot-dir)")
	root.PersistentFlags().StringVar(&req.Name, "name", "", "Snapshot name: the file's prefix (save: on-demand; prune: the scheduled snapshots' name)")
	s3.AddFlags(root.PersistentFlags(), "s3")

	run := func(op string, withArgs bool) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			req.Operation = op
			if withArgs {
				req.Names = args
			}
			if cmd.Flags().Changed("snapshot-compress") {
				req.Compress = &compress
			}
			if s3.Enabled {
				req.S3 = &s3
			}
			ctx := cmd.Context()
			cl, err := sc.dial(ctx)
			if err != nil {
				return err
			}
			var res snapshot.Result
			if err := cl.Operation(ctx, "snapshots", req, &res); err != nil {
				return err
			}
			printSnapshots(cmd, op, res)
			return nil
		}
	}
	save := &cobra.Command{Use: "save", Short: "Take a snapshot now", Args: cobra.NoArgs, RunE: run("save", false)}
	save.Flags().BoolVar(&compress, "snapshot-compress", false, "Compress the snapshot with zstd")
	ls := &cobra.Command{Use: "ls", Aliases: []string{"list"}, Short: "List every server's snapshots", Args: cobra.NoArgs, RunE: run("list", false)}
	del := &cobra.Command{Use: "delete NAME...", Short: "Delete snapshots (by file name) on this server and S3", Args: cobra.MinimumNArgs(1), RunE: run("delete", true)}
	prune := &cobra.Command{Use: "prune", Short: "Delete all but the newest verified snapshots of a name", Args: cobra.NoArgs, RunE: run("prune", false)}
	prune.Flags().IntVar(&req.Retention, "snapshot-retention", 0, "Snapshots to keep (default: the server's --etcd-snapshot-retention)")
	verify := &cobra.Command{Use: "verify NAME...", Short: "Prove snapshots restorable again by a trial restore", Args: cobra.MinimumNArgs(1), RunE: run("verify", true)}
	root.AddCommand(save, ls, del, prune, verify)
	return root
}

func printSnapshots(cmd *cobra.Command, op string, res snapshot.Result) {
	out := cmd.OutOrStdout()
	for _, c := range res.Created {
		status := "verified: " + c.VerifyLog
		if !c.Verified {
			status = "FAILED its check: " + c.Error
		}
		fmt.Fprintf(out, "Snapshot %s saved (%d bytes); %s\n", c.Name, c.Size, status)
		if c.S3 != nil {
			if c.S3.Error != "" {
				fmt.Fprintf(out, "Upload to S3 failed, the local snapshot is kept: %s\n", c.S3.Error)
			} else {
				fmt.Fprintf(out, "Uploaded to s3://%s/%s\n", c.S3.Bucket, c.S3.Key)
			}
		}
	}
	for _, d := range res.Deleted {
		fmt.Fprintf(out, "Snapshot %s deleted.\n", d)
	}
	if op != "list" && op != "verify" {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Name\tNode\tLocation\tSize\tCreated\tVerified")
	for _, s := range res.Snapshots {
		verified := "yes"
		if !s.Verified {
			verified = "no"
			if s.Error != "" {
				verified = "FAILED: " + s.Error
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", s.Name, s.Node, s.Location, s.Size, s.Created.UTC().Format(time.RFC3339), verified)
	}
	tw.Flush()
}
