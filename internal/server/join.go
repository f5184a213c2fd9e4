package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/k3ha/k3ha/internal/bootstrap"
	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/supervisor"
	"github.com/k3ha/k3ha/internal/token"
)

// joinCluster does everything a joining server must do before it may touch
// the cluster's etcd, in an order that writes nothing until every check has
// passed: fetch the CA and check it against the token (Dial), compare the
// critical flags, download the bootstrap data, and make sure no other member
// has this node's name. Then it writes the bootstrap files and returns the
// client URLs of the existing members.
func joinCluster(ctx context.Context, cfg *config.Server, l layout.Server, tok token.Token, name, peerURL string) ([]string, error) {
	if tok.Username == token.RoleNode {
		return nil, fmt.Errorf("--token is an agent token; a server joins with the server token (the file server/token under the first server's data dir)")
	}
	c, err := supervisor.Dial(ctx, cfg.ServerURL, tok, token.RoleServer)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", cfg.ServerURL, err)
	}
	theirs, err := c.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", cfg.ServerURL, err)
	}
	if diff := cfg.Critical().Diff(theirs); len(diff) > 0 {
		return nil, fmt.Errorf("refusing to join %s: these settings must be the same on every server; start this one with the cluster's values:\n  %s",
			cfg.ServerURL, strings.Join(diff, "\n  "))
	}
	files, err := c.Bootstrap(ctx)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", cfg.ServerURL, err)
	}
	info, err := c.DBInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("join %s: %w", cfg.ServerURL, err)
	}
	var clientURLs []string
	for _, m := range info.Members {
		if m.Name == name && !slices.Contains(m.PeerURLs, peerURL) {
			return nil, fmt.Errorf("refusing to join %s: etcd member %q (peer %s) already has the node name %q; "+
				"if that server is gone for good remove it first (kubectl delete node %s), otherwise start this server with another --node-name",
				cfg.ServerURL, m.Name, strings.Join(m.PeerURLs, ","), name, name)
		}
		if !m.IsLearner {
			clientURLs = append(clientURLs, m.ClientURLs...)
		}
	}
	if len(clientURLs) == 0 {
		return nil, fmt.Errorf("refusing to join %s: it reports no voting etcd members; it does not run embedded etcd (servers on an external datastore join with the same --datastore-endpoint instead of --server)", cfg.ServerURL)
	}
	data := bootstrap.Data{Files: files.Files}
	if differ := data.Differing(l); len(differ) > 0 {
		return nil, fmt.Errorf("refusing to join %s: this data dir already holds other cluster certificates (%s); use an empty --data-dir", cfg.ServerURL, strings.Join(differ, ", "))
	}
	if err := data.Write(l); err != nil {
		return nil, fmt.Errorf("join %s: write bootstrap data: %w", cfg.ServerURL, err)
	}
	return clientURLs, nil
}

// errWrongToken is what a server says when its token cannot open the
// cluster's bootstrap data.
var errWrongToken = errors.New("this server's token cannot decrypt the bootstrap data stored in the datastore: it is not the token the cluster was created with; start it with the cluster's token (server/token on the first server)")
