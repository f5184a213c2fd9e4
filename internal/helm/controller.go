package helm

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/k3ha/k3ha/internal/keyloop"
)

// Controller keeps each HelmChart's release as the object describes it.
type Controller struct {
	Client   dynamic.Interface
	Releases *Releases
	Fetcher  *Fetcher
	Recorder record.EventRecorder

	charts  cache.GenericLister
	configs cache.GenericLister
}

// Run acts on HelmCharts until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	loop := keyloop.New("helmcharts", 2*time.Second, 5*time.Minute, func(ctx context.Context, key string) error {
		err := c.sync(ctx, key)
		if err != nil && ctx.Err() == nil {
			slog.Warn("helm chart not applied; retrying", "chart", key, "err", err)
		}
		return err
	})
	factory := dynamicinformer.NewDynamicSharedInformerFactory(c.Client, 10*time.Minute)
	charts, configs := factory.ForResource(ChartResource), factory.ForResource(ConfigResource)
	if _, err := charts.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: loop.Enqueue, DeleteFunc: loop.Enqueue,
		UpdateFunc: func(old, obj any) {
			if specChanged(old, obj) {
				loop.Enqueue(obj)
			}
		},
	}); err != nil {
		return err
	}
	// A HelmChartConfig changes the HelmChart of its own name.
	if _, err := configs.Informer().AddEventHandler(loop.Handler()); err != nil {
		return err
	}
	c.charts, c.configs = charts.Lister(), configs.Lister()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	slog.Info("helm controller starting")
	loop.Run(ctx, charts.Informer().HasSynced, configs.Informer().HasSynced)
	return nil
}

// specChanged tells whether a HelmChart update needs a sync: not the
// controller's own status and finalizer writes (the generation stays),
// but a new spec, a deletion, or a resync (the same version again, so a
// release changed behind k3ha's back is put right).
func specChanged(old, obj any) bool {
	o, ok1 := old.(*unstructured.Unstructured)
	n, ok2 := obj.(*unstructured.Unstructured)
	if !ok1 || !ok2 {
		return true
	}
	return o.GetResourceVersion() == n.GetResourceVersion() || o.GetGeneration() != n.GetGeneration() ||
		n.GetDeletionTimestamp() != nil
}

func (c *Controller) sync(ctx context.Context, key string) error {
	obj, err := c.charts.Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	u := obj.(*unstructured.Unstructured)
	var chart Chart
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &chart); err != nil {
		return c.fail(ctx, u, &chart, "", fmt.Errorf("HelmChart %s is malformed: %w", key, err))
	}
	target := chart.Spec.TargetNamespace
	if target == "" {
		target = chart.Namespace
	}
	if chart.DeletionTimestamp != nil {
		return c.remove(ctx, u, chart, target)
	}
	if !slices.Contains(chart.Finalizers, Finalizer) {
		if err := c.setFinalizers(ctx, chart, append(slices.Clone(chart.Finalizers), Finalizer)); err != nil {
			return err
		}
	}
	desired, err := c.desired(ctx, chart, target)
	if err != nil {
		return c.fail(ctx, u, &chart, "", err)
	}
	hash, err := desired.Hash()
	if err != nil {
		return err
	}
	state, err := c.Releases.State(target, chart.Name)
	if err != nil {
		return err
	}
	act := Decide(false, state, hash)
	if act == None {
		return c.setStatus(ctx, &chart, state.Revision, metav1.ConditionTrue, ReasonUpToDate,
			fmt.Sprintf("revision %d of %s is deployed", state.Revision, desired.Chart.Metadata.Name))
	}
	slog.Info("helm release", "action", act.String(), "chart", key, "release", chart.Name, "namespace", target)
	rev, err := c.Releases.Apply(ctx, act, desired, hash)
	if err != nil {
		return c.fail(ctx, u, &chart, act.String(), err)
	}
	reason := ReasonInstalled
	if act == Upgrade {
		reason = ReasonUpgraded
	}
	msg := fmt.Sprintf("%s %s revision %d (chart %s %s)", reason, chart.Name, rev, desired.Chart.Metadata.Name, desired.Chart.Metadata.Version)
	c.Recorder.Event(u, corev1.EventTypeNormal, reason, msg)
	slog.Info("helm release deployed", "chart", key, "revision", rev, "action", act.String())
	return c.setStatus(ctx, &chart, rev, metav1.ConditionTrue, reason, msg)
}

// desired reads the chart and computes the values the HelmChart asks for.
func (c *Controller) desired(ctx context.Context, chart Chart, target string) (Desired, error) {
	src, err := ResolveSource(chart.Spec, c.Fetcher.Self)
	if err != nil {
		return Desired{}, err
	}
	archive, err := c.Fetcher.Archive(ctx, src)
	if err != nil {
		return Desired{}, err
	}
	ch, err := LoadChart(archive)
	if err != nil {
		return Desired{}, err
	}
	configValues, err := c.configValues(chart)
	if err != nil {
		return Desired{}, err
	}
	vals, err := Values(chart.Spec, configValues)
	if err != nil {
		return Desired{}, err
	}
	timeout := defaultTimeout
	if chart.Spec.Timeout != nil && chart.Spec.Timeout.Duration > 0 {
		timeout = chart.Spec.Timeout.Duration
	}
	return Desired{Name: chart.Name, Namespace: target, CreateNamespace: chart.Spec.CreateNamespace,
		Chart: ch, Values: vals, Timeout: timeout}, nil
}

func (c *Controller) configValues(chart Chart) (string, error) {
	obj, err := c.configs.ByNamespace(chart.Namespace).Get(chart.Name)
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var cfg ChartConfig
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.(*unstructured.Unstructured).Object, &cfg); err != nil {
		return "", fmt.Errorf("HelmChartConfig %s/%s is malformed: %w", chart.Namespace, chart.Name, err)
	}
	return cfg.Spec.ValuesContent, nil
}

// remove uninstalls a deleted HelmChart's release, then lets it go.
func (c *Controller) remove(ctx context.Context, u *unstructured.Unstructured, chart Chart, target string) error {
	if !slices.Contains(chart.Finalizers, Finalizer) {
		return nil
	}
	state, err := c.Releases.State(target, chart.Name)
	if err != nil {
		return err
	}
	if Decide(true, state, "") == Uninstall {
		if _, err := c.Releases.Apply(ctx, Uninstall, Desired{Name: chart.Name, Namespace: target}, ""); err != nil {
			return c.fail(ctx, u, &chart, "uninstall", err)
		}
		c.Recorder.Eventf(u, corev1.EventTypeNormal, ReasonUninstalled, "Uninstalled release %s from %s", chart.Name, target)
		slog.Info("helm release uninstalled", "release", chart.Name, "namespace", target)
	}
	return c.setFinalizers(ctx, chart, slices.DeleteFunc(slices.Clone(chart.Finalizers), func(f string) bool { return f == Finalizer }))
}

// fail records err on the HelmChart (status and a Warning Event) and
// returns it, so the chart is retried with backoff. The release, if any,
// is left as it was.
func (c *Controller) fail(ctx context.Context, u *unstructured.Unstructured, chart *Chart, act string, err error) error {
	msg := err.Error()
	if act != "" {
		msg = act + " failed: " + msg
	}
	c.Recorder.Event(u, corev1.EventTypeWarning, ReasonFailed, msg)
	if serr := c.setStatus(ctx, chart, chart.Status.Revision, metav1.ConditionFalse, ReasonFailed, msg); serr != nil {
		slog.Warn("helm chart status not updated", "chart", chart.Namespace+"/"+chart.Name, "err", serr)
	}
	return err
}

func (c *Controller) setStatus(ctx context.Context, chart *Chart, rev int, status metav1.ConditionStatus, reason, msg string) error {
	st := chart.Status
	st.Conditions = slices.Clone(st.Conditions)
	changed := meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: CondDeployed, Status: status,
		Reason: reason, Message: msg, ObservedGeneration: chart.Generation})
	if !changed && st.Revision == rev && st.ObservedGeneration == chart.Generation {
		return nil
	}
	st.Revision, st.ObservedGeneration = rev, chart.Generation
	body, err := json.Marshal(map[string]any{"status": st})
	if err != nil {
		return err
	}
	_, err = c.Client.Resource(ChartResource).Namespace(chart.Namespace).Patch(ctx, chart.Name, types.MergePatchType, body, metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("HelmChart %s/%s status: %w", chart.Namespace, chart.Name, err)
	}
	chart.Status = st
	return nil
}

// setFinalizers replaces the finalizers, failing if the object changed
// since it was read (the newer version is queued anyway).
func (c *Controller) setFinalizers(ctx context.Context, chart Chart, finalizers []string) error {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"finalizers": finalizers, "resourceVersion": chart.ResourceVersion}})
	if err != nil {
		return err
	}
	_, err = c.Client.Resource(ChartResource).Namespace(chart.Namespace).Patch(ctx, chart.Name, types.MergePatchType, body, metav1.PatchOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("HelmChart %s/%s finalizers: %w", chart.Namespace, chart.Name, err)
	}
	return nil
}
