package helm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/client-go/rest"
)

// defaultTimeout bounds a release's hooks, as `helm --timeout` does.
const defaultTimeout = 5 * time.Minute

// hashLabel on a release (and its Secrets) holds Desired.Hash of what it
// was made from: the release itself says whether it is up to date.
const hashLabel = "helm.k3ha.io/hash"

// maxHistory is how many revisions a release keeps, as `helm upgrade
// --history-max` defaults.
const maxHistory = 10

// Releases carries out Helm actions, storing releases as Helm does (Secrets
// in the release's namespace), so the helm CLI sees and can manage them.
type Releases struct {
	Config *rest.Config
}

// Desired is one release as its HelmChart asks for it.
type Desired struct {
	Name, Namespace string
	CreateNamespace bool
	Chart           *chart.Chart
	Values          map[string]any
	Timeout         time.Duration
}

// LoadChart reads a chart archive.
func LoadChart(archive []byte) (*chart.Chart, error) {
	ch, err := loader.LoadArchive(bytes.NewReader(archive))
	if err != nil {
		return nil, fmt.Errorf("chart archive: %w", err)
	}
	return ch, nil
}

// Hash identifies what d would deploy: the chart's files, the values and
// the namespace (not the archive's bytes, whose timestamps change).
func (d Desired) Hash() (string, error) {
	h := sha256.New()
	files := slices.Clone(d.Chart.Raw)
	slices.SortFunc(files, func(a, b *chart.File) int { return strings.Compare(a.Name, b.Name) })
	for _, f := range files {
		fmt.Fprintf(h, "%s\x00%d\x00", f.Name, len(f.Data))
		h.Write(f.Data)
	}
	vals, err := json.Marshal(d.Values)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "%s\x00%s\x00%t", vals, d.Namespace, d.CreateNamespace)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func (r *Releases) configuration(namespace string) (*action.Configuration, error) {
	getter, err := newRESTGetter(r.Config, namespace)
	if err != nil {
		return nil, err
	}
	cfg := new(action.Configuration)
	logf := func(format string, v ...any) { slog.Debug(fmt.Sprintf(format, v...), "component", "helm") }
	if err := cfg.Init(getter, namespace, "secret", logf); err != nil {
		return nil, fmt.Errorf("helm in namespace %s: %w", namespace, err)
	}
	return cfg, nil
}

// State reads a release's history.
func (r *Releases) State(namespace, name string) (ReleaseState, error) {
	cfg, err := r.configuration(namespace)
	if err != nil {
		return ReleaseState{}, err
	}
	history, err := cfg.Releases.History(name)
	if errors.Is(err, driver.ErrReleaseNotFound) || (err == nil && len(history) == 0) {
		return ReleaseState{}, nil
	}
	if err != nil {
		return ReleaseState{}, fmt.Errorf("release %s/%s: %w", namespace, name, err)
	}
	st := ReleaseState{Exists: true}
	latest := history[0]
	for _, rel := range history {
		if rel.Version > latest.Version {
			latest = rel
		}
		if rel.Info.Status == release.StatusDeployed {
			st.Deployed, st.Revision, st.Hash = true, rel.Version, rel.Labels[hashLabel]
		}
	}
	st.Latest = latest.Info.Status
	return st, nil
}

// Apply carries out act for d, labelling the release with hash, and
// returns the deployed revision.
func (r *Releases) Apply(ctx context.Context, act Action, d Desired, hash string) (int, error) {
	cfg, err := r.configuration(d.Namespace)
	if err != nil {
		return 0, err
	}
	labels := map[string]string{hashLabel: hash}
	switch act {
	case Reinstall:
		if err := uninstall(cfg, d.Name); err != nil {
			return 0, err
		}
		fallthrough
	case Install:
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace, in.CreateNamespace, in.Timeout, in.Labels = d.Name, d.Namespace, d.CreateNamespace, d.Timeout, labels
		rel, err := in.RunWithContext(ctx, d.Chart, d.Values)
		if err != nil {
			return 0, fmt.Errorf("install: %w", err)
		}
		return rel.Version, nil
	case Upgrade:
		if err := unstick(cfg, d.Name); err != nil {
			return 0, err
		}
		up := action.NewUpgrade(cfg)
		up.Namespace, up.Timeout, up.MaxHistory, up.Labels = d.Namespace, d.Timeout, maxHistory, labels
		// The values are exactly the HelmChart's: none of an earlier
		// revision's carry over.
		up.ResetValues = true
		rel, err := up.RunWithContext(ctx, d.Name, d.Chart, d.Values)
		if err != nil {
			return 0, fmt.Errorf("upgrade: %w", err)
		}
		return rel.Version, nil
	case Uninstall:
		return 0, uninstall(cfg, d.Name)
	}
	return 0, nil
}

func uninstall(cfg *action.Configuration, name string) error {
	un := action.NewUninstall(cfg)
	un.Timeout = defaultTimeout
	if _, err := un.Run(name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstall: %w", err)
	}
	return nil
}

// unstick marks a revision left pending (k3ha stopped while Helm worked on
// it) as failed, so that Helm lets the next upgrade proceed. Only the lease
// holder acts on HelmCharts, so nobody else is working on it.
func unstick(cfg *action.Configuration, name string) error {
	last, err := cfg.Releases.Last(name)
	if err != nil || !last.Info.Status.IsPending() {
		return nil
	}
	slog.Warn("helm release left pending; marking it failed to go on", "release", name, "revision", last.Version, "status", last.Info.Status)
	last.SetStatus(release.StatusFailed, "interrupted: k3ha stopped during this operation")
	if err := cfg.Releases.Update(last); err != nil {
		return fmt.Errorf("mark interrupted revision %d failed: %w", last.Version, err)
	}
	return nil
}
