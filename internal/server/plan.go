package server

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/datastore"
	"github.com/k3ha/k3ha/internal/datastore/etcd"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/nodeid"
	"github.com/k3ha/k3ha/internal/token"
)

// facts are what start-up finds before it changes anything: the data dir,
// the host and the token the server was given. Gathering them is the only
// I/O before the plan; decide is a pure function of them and the config.
type facts struct {
	fresh      bool // <data-dir>/server does not exist yet
	etcdData   bool // an etcd WAL exists
	sqliteData bool // an SQLite datastore exists
	node       node
	nodeIPErr  error       // why the node IP is not an address of this host, if it is not
	token      token.Token // --token or --token-file, parsed (zero when not given)
}

// gather reads the facts start-up decides on.
func gather(cfg *config.Server, l layout.Server) (facts, error) {
	var f facts
	var err error
	f.fresh = !exists(l.Root)
	f.etcdData = etcd.HasData(l)
	_, statErr := os.Stat(l.SQLiteFile())
	f.sqliteData = statErr == nil
	if f.node, err = resolveNode(cfg); err != nil {
		return f, err
	}
	f.nodeIPErr = nodeid.CheckLocal(f.node.ip)
	if f.token, err = token.FromFlags(cfg.Token, cfg.TokenFile, "token"); err != nil {
		return f, err
	}
	return f, nil
}

// plan is everything start-up decides before it acts; the steps of Run only
// carry it out.
type plan struct {
	node      node
	datastore datastore.Kind
	// ignored are flags that etcd data on disk overrides.
	ignored []string
	// migrate moves the SQLite data into a new etcd member before anything
	// else starts (--cluster-init on a server that ran on SQLite).
	migrate bool
	// finishMigration renames an SQLite file a crash right after a
	// migration left in place.
	finishMigration bool
	// etcdMode is how the embedded etcd member comes up (datastore.Etcd()).
	etcdMode etcd.Mode
	// reset makes this server the only etcd member, then stops (--cluster-reset).
	reset bool
	// restore is the snapshot --cluster-reset-restore-path restores.
	restore string
	// undoOnFailure removes the data dir when start fails before the
	// datastore holds this node's data: a fresh node is left as it was.
	undoOnFailure bool
	token         token.Token
	agent         bool
	// buildAPIServerEarly builds the apiserver while etcd starts: on a new
	// cluster or a restart the data dir's files are final before etcd
	// starts. A join takes the cluster's settings only once etcd is up.
	buildAPIServerEarly bool
	// components are the packaged components to deploy; disabled the ones
	// to remove.
	components, disabled []string
}

// decide turns the configuration and the facts into a plan, or refuses
// with what to do instead. The datastore rules, in order: etcd data on
// disk wins over every flag; then --datastore-endpoint; then --server
// (join) or --cluster-init (new cluster, migrating SQLite data first);
// else SQLite.
func decide(cfg *config.Server, f facts) (plan, error) {
	p := plan{node: f.node, token: f.token, agent: !cfg.DisableAgent}
	p.components, p.disabled = splitComponents(cfg.Disable)
	l := layout.NewServer(cfg.DataDir)

	if cfg.ClusterReset {
		switch {
		case f.nodeIPErr != nil:
			return p, f.nodeIPErr
		case cfg.ClusterResetRestorePath != "":
			// On a new host, a failed restore leaves nothing behind.
			p.restore, p.undoOnFailure = cfg.ClusterResetRestorePath, f.fresh
		case !f.etcdData:
			return p, fmt.Errorf("--cluster-reset: %s holds no etcd data to reset; nothing was changed (to restore a snapshot, add --cluster-reset-restore-path)", l.EtcdDir())
		}
		p.reset, p.datastore, p.etcdMode = true, datastore.EtcdExisting, etcd.Existing
		return p, nil
	}

	choice := datastore.Choose(datastore.Inputs{EtcdData: f.etcdData, ClusterInit: cfg.ClusterInit,
		ServerURL: cfg.ServerURL, DatastoreEndpoint: cfg.DatastoreEndpoint})
	p.datastore, p.ignored = choice.Kind, choice.Ignored
	// Until the datastore holds data, a failed start takes back what it
	// wrote; a node with etcd data already has it.
	p.undoOnFailure = f.fresh && !f.etcdData

	switch p.datastore {
	case datastore.EtcdExisting:
		p.etcdMode = etcd.Existing
		p.finishMigration = f.sqliteData
		p.buildAPIServerEarly = true
	case datastore.EtcdNew:
		p.etcdMode = etcd.NewCluster
		if f.sqliteData {
			p.migrate, p.etcdMode = true, etcd.Existing
		}
		p.buildAPIServerEarly = true
	case datastore.EtcdJoin:
		p.etcdMode = etcd.Join
		if f.token.Username == token.RoleNode {
			return p, errors.New("--token is an agent token; a server joins with the server token (the file server/token under the first server's data dir)")
		}
		if f.sqliteData {
			return p, fmt.Errorf("--server: this server holds SQLite data (%s); joining another cluster would leave it behind. "+
				"Move it into etcd with --cluster-init to found a cluster of its own, or use an empty --data-dir to join %s", l.SQLiteFile(), cfg.ServerURL)
		}
	}
	if p.datastore.Etcd() {
		if f.nodeIPErr != nil {
			return p, f.nodeIPErr
		}
		if err := etcd.CheckArgs(cfg.EtcdArgs); err != nil {
			return p, err
		}
	}
	return p, nil
}

// splitComponents splits the packaged components into those to deploy and those
// --disable removes.
func splitComponents(disable []string) (enabled, disabled []string) {
	enabled = slices.Clone(config.RequiredManifests)
	for _, c := range config.PackagedComponents {
		if slices.Contains(disable, c) {
			disabled = append(disabled, c)
		} else {
			enabled = append(enabled, c)
		}
	}
	return enabled, disabled
}

// describe is the plan in one log line's attributes.
func (p plan) describe() []any {
	attrs := []any{"datastore", p.datastore.String(), "node", p.node.name, "node-ip", p.node.ip.String()}
	if p.migrate {
		attrs = append(attrs, "migrate", "sqlite to etcd")
	}
	if len(p.disabled) > 0 {
		attrs = append(attrs, "disabled", strings.Join(p.disabled, ","))
	}
	return attrs
}
