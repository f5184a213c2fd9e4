package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/k3ha/k3ha/internal/config"
)

// Manager takes this server's snapshots: on request (k3ha etcd-snapshot)
// and on schedule.
type Manager struct {
	Node string
	// Dir is where snapshots go by default.
	Dir string
	Cfg config.Snapshots
	// Etcd is the local member, for etcd snapshots; nil on SQLite.
	Etcd         *clientv3.Client
	EtcdEndpoint string
	// SQLite is the datastore file of a server on SQLite.
	SQLite string
	// Records are the snapshots' objects in the cluster (nil until the
	// apiserver serves).
	Records *Records

	mu sync.Mutex
}

// Request is what `k3ha etcd-snapshot` asks of the server.
type Request struct {
	Operation string     `json:"operation"` // save, list, delete, prune, verify
	Name      string     `json:"name,omitempty"`
	Names     []string   `json:"names,omitempty"`
	Dir       string     `json:"dir,omitempty"`
	Compress  *bool      `json:"compress,omitempty"`
	Retention int        `json:"retention,omitempty"`
	S3        *config.S3 `json:"s3,omitempty"`
}

// Result is what the server did.
type Result struct {
	Created   []Info   `json:"created,omitempty"`
	Deleted   []string `json:"deleted,omitempty"`
	Snapshots []Info   `json:"snapshots,omitempty"`
}

// Handle carries out a request.
func (m *Manager) Handle(ctx context.Context, req Request) (Result, error) {
	dir := m.Dir
	if req.Dir != "" {
		dir = req.Dir
	}
	s3cfg := m.Cfg.S3
	if req.S3 != nil {
		s3cfg = *req.S3
	}
	switch req.Operation {
	case "save":
		name := req.Name
		if name == "" {
			name = "on-demand"
		}
		compress := m.Cfg.Compress
		if req.Compress != nil {
			compress = *req.Compress
		}
		info, err := m.Save(ctx, dir, name, compress, s3cfg)
		return Result{Created: []Info{info}}, err
	case "list":
		return m.list(ctx, dir, s3cfg)
	case "delete":
		return m.delete(ctx, dir, req.Names, s3cfg)
	case "prune":
		name := req.Name
		if name == "" {
			name = m.Cfg.Name
		}
		keep := m.Cfg.Retention
		if req.Retention > 0 {
			keep, s3cfg.Retention = req.Retention, req.Retention
		}
		deleted, err := m.prune(ctx, dir, name, keep, s3cfg)
		return Result{Deleted: deleted}, err
	case "verify":
		return m.verify(ctx, dir, req.Names)
	}
	return Result{}, fmt.Errorf("unknown snapshot operation %q", req.Operation)
}

// Save takes a snapshot into dir, proves it (trial restore, or SQLite's
// integrity check), uploads it when S3 is on and records it. A failed
// upload keeps the local snapshot and is reported; a failed check is an
// error, but the file stays for inspection.
func (m *Manager) Save(ctx context.Context, dir, name string, compress bool, s3cfg config.S3) (Info, error) {
	m.mu.Lock() // one at a time: a request waits for a scheduled one
	defer m.mu.Unlock()
	begin := time.Now()
	var info Info
	var err error
	if m.Etcd != nil {
		if info, err = SaveEtcd(ctx, m.Etcd, dir, name, m.Node, compress); err != nil {
			return info, err
		}
		err = Verify(ctx, dir, &info, ClientLive{Client: m.Etcd, Endpoint: m.EtcdEndpoint})
	} else {
		if info, err = SaveSQLite(ctx, m.SQLite, dir, name, m.Node, compress); err != nil {
			return info, err
		}
	}
	slog.Info("snapshot saved", "snapshot", info.Name, "size", info.Size, "verified", info.Verified, "took", time.Since(begin).Round(time.Millisecond))
	m.record(ctx, info)
	if s3cfg.Enabled && info.Verified {
		info.S3 = m.upload(ctx, dir, info, s3cfg)
	}
	return info, err
}

// upload copies a snapshot to S3 and records the copy; the result says
// where it went or why it did not.
func (m *Manager) upload(ctx context.Context, dir string, info Info, s3cfg config.S3) *S3Object {
	s3, err := NewS3(ctx, s3cfg)
	var obj *S3Object
	if err == nil {
		obj, err = s3.Upload(ctx, filepath.Join(dir, info.Name))
		info.Location = s3.Location(info.Name)
	} else {
		obj = &S3Object{Endpoint: s3cfg.Endpoint, Bucket: s3cfg.Bucket, Error: err.Error()}
		info.Location = "s3://" + s3cfg.Bucket + "/" + info.Name
	}
	info.S3 = obj
	if err != nil {
		obj.Error = err.Error()
		slog.Error("snapshot upload to S3 failed; the local snapshot is kept", "snapshot", info.Name, "err", err)
	} else {
		slog.Info("snapshot uploaded to S3", "snapshot", info.Name, "location", info.Location)
	}
	m.record(ctx, info)
	return obj
}

func (m *Manager) record(ctx context.Context, info Info) {
	if err := m.Records.Save(ctx, info); err != nil {
		slog.Warn("could not record the snapshot in the cluster", "snapshot", info.Name, "err", err)
	}
}

// list is every server's snapshots as recorded in the cluster, with this
// server's local files and the S3 objects that have no record.
func (m *Manager) list(ctx context.Context, dir string, s3cfg config.S3) (Result, error) {
	seen := map[string]bool{}
	var out []Info
	add := func(list []Info) {
		for _, i := range list {
			if key := i.Location; !seen[key] {
				seen[key] = true
				out = append(out, i)
			}
		}
	}
	records, err := m.Records.List(ctx)
	if err != nil {
		slog.Warn("could not list the snapshots' records; listing this server's files", "err", err)
	}
	add(records)
	local, err := List(dir, m.Node)
	if err != nil {
		return Result{}, err
	}
	add(local)
	if s3cfg.Enabled {
		s3, err := NewS3(ctx, s3cfg)
		if err != nil {
			return Result{}, err
		}
		objs, err := s3.List(ctx)
		if err != nil {
			return Result{}, err
		}
		add(objs)
	}
	slices.SortFunc(out, func(a, b Info) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.Location, b.Location)
	})
	return Result{Snapshots: out}, nil
}

func (m *Manager) delete(ctx context.Context, dir string, names []string, s3cfg config.S3) (Result, error) {
	var res Result
	var s3 *S3
	if s3cfg.Enabled {
		var err error
		if s3, err = NewS3(ctx, s3cfg); err != nil {
			return res, err
		}
	}
	var errs []error
	for _, name := range names {
		if err := ValidName(name); err != nil {
			errs = append(errs, err)
			continue
		}
		local := Info{Name: name, Node: m.Node, Location: "file://" + filepath.Join(dir, name)}
		if err := Delete(dir, name); err == nil {
			res.Deleted = append(res.Deleted, local.Location)
			_ = m.Records.Delete(ctx, local)
		}
		if s3 != nil {
			if err := s3.Delete(ctx, name); err == nil {
				remote := Info{Name: name, Location: s3.Location(name)}
				res.Deleted = append(res.Deleted, remote.Location)
				_ = m.Records.Delete(ctx, remote)
			}
		}
	}
	return res, errors.Join(errs...)
}

func (m *Manager) prune(ctx context.Context, dir, name string, keep int, s3cfg config.S3) ([]string, error) {
	deleted, err := Prune(dir, m.Node, name, keep)
	for _, d := range deleted {
		_ = m.Records.Delete(ctx, Info{Name: d, Location: "file://" + filepath.Join(dir, d)})
	}
	if err != nil || !s3cfg.Enabled {
		return deleted, err
	}
	s3, err := NewS3(ctx, s3cfg)
	if err != nil {
		return deleted, err
	}
	keepS3 := s3cfg.Retention
	if keepS3 < 1 {
		keepS3 = keep
	}
	remote, err := s3.Prune(ctx, name, keepS3)
	for _, d := range remote {
		_ = m.Records.Delete(ctx, Info{Name: d, Location: s3.Location(d)})
		deleted = append(deleted, s3.Location(d))
	}
	return deleted, err
}

// verify runs the trial restore again on local snapshots.
func (m *Manager) verify(ctx context.Context, dir string, names []string) (Result, error) {
	if m.Etcd == nil {
		return Result{}, errors.New("this server runs on SQLite: its snapshots are checked when taken")
	}
	local, err := List(dir, m.Node)
	if err != nil {
		return Result{}, err
	}
	var res Result
	var errs []error
	for _, info := range local {
		if !slices.Contains(names, info.Name) {
			continue
		}
		if err := Verify(ctx, dir, &info, ClientLive{Client: m.Etcd, Endpoint: m.EtcdEndpoint}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", info.Name, err))
		}
		m.record(ctx, info)
		res.Snapshots = append(res.Snapshots, info)
	}
	if len(res.Snapshots) < len(names) {
		errs = append(errs, fmt.Errorf("no such local snapshot among %v", names))
	}
	return res, errors.Join(errs...)
}

// Run takes scheduled snapshots until ctx ends, each followed by pruning.
func (m *Manager) Run(ctx context.Context) error {
	if m.Cfg.Disable || m.Cfg.Schedule == "" {
		<-ctx.Done()
		return nil
	}
	c := cron.New(cron.WithChain(cron.Recover(cron.DiscardLogger), cron.SkipIfStillRunning(cron.DiscardLogger)))
	if _, err := c.AddFunc(m.Cfg.Schedule, func() { m.scheduled(ctx) }); err != nil {
		return fmt.Errorf("--etcd-snapshot-schedule-cron %q: %w", m.Cfg.Schedule, err)
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}

func (m *Manager) scheduled(ctx context.Context) {
	if _, err := m.Save(ctx, m.Dir, m.Cfg.Name, m.Cfg.Compress, m.Cfg.S3); err != nil {
		slog.Error("scheduled snapshot failed", "err", err)
		return
	}
	deleted, err := m.prune(ctx, m.Dir, m.Cfg.Name, m.Cfg.Retention, m.Cfg.S3)
	if err != nil {
		slog.Warn("pruning snapshots failed", "err", err)
	}
	if len(deleted) > 0 {
		slog.Info("old snapshots pruned", "deleted", strings.Join(deleted, ","))
	}
}
