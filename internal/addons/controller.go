package addons

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/k3ha/k3ha/internal/keyloop"
)

// Controller applies Addons. Only the server holding the controllers'
// lease runs it.
type Controller struct {
	client   dynamic.Interface
	mapper   *restmapper.DeferredDiscoveryRESTMapper
	recorder record.EventRecorder
	// disabled are packaged components turned off with --disable: their
	// Addons and objects are removed.
	disabled []string
	lister   cache.GenericLister
}

// NewController returns a controller that records Events with recorder.
func NewController(cfg *rest.Config, recorder record.EventRecorder, disabled []string) (*Controller, error) {
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Controller{
		client:   client,
		mapper:   restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(disc)),
		recorder: recorder,
		disabled: disabled,
	}, nil
}

// Run applies Addons until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	loop := keyloop.New("addons", time.Second, time.Minute, c.sync)
	factory := dynamicinformer.NewDynamicSharedInformerFactory(c.client, 10*time.Minute)
	inf := factory.ForResource(Resource)
	if _, err := inf.Informer().AddEventHandler(loop.Handler()); err != nil {
		return err
	}
	c.lister = inf.Lister()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	loop.Run(ctx, inf.Informer().HasSynced)
	return nil
}

func (c *Controller) sync(ctx context.Context, key string) error {
	obj, err := c.lister.Get(key)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil
	}
	a, err := fromUnstructured(u)
	if err != nil {
		slog.Warn("malformed addon", "addon", key, "err", err)
		return nil
	}
	if a.Deleting {
		return nil
	}
	if slices.Contains(c.disabled, a.Name) {
		return c.remove(ctx, a)
	}
	if a.Status.AppliedChecksum == a.Spec.Checksum && a.Status.Error == "" {
		return nil
	}
	return c.apply(ctx, a)
}

// apply applies every object of the Addon, then deletes the objects it
// applied before that its content no longer holds. A file that does not
// parse or an object the apiserver refuses is an Event and a log line; the
// other objects still apply, and the failed ones are retried with backoff.
func (c *Controller) apply(ctx context.Context, a *Addon) error {
	objs, err := decode([]byte(a.Spec.Content))
	if err != nil {
		msg := fmt.Sprintf("%s does not parse: %v", a.Spec.Source, err)
		c.warn(a, "ParseFailed", msg)
		// Nothing changes until the file does; the old objects stay.
		return c.setStatus(ctx, a, Status{AppliedChecksum: a.Spec.Checksum, Objects: a.Status.Objects, Error: msg})
	}
	var failed []string
	var refs []ObjectRef
	for _, o := range applyOrder(objs) {
		ref := ObjectRef{APIVersion: o.GetAPIVersion(), Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}
		ns, err := c.applyObject(ctx, a.Name, o)
		ref.Namespace = ns
		refs = append(refs, ref)
		if err != nil {
			msg := fmt.Sprintf("%s: %s: %v", a.Spec.Source, ref, err)
			c.warn(a, "ApplyFailed", msg)
			failed = append(failed, msg)
		}
	}
	for _, old := range a.Status.Objects {
		if slices.Contains(refs, old) {
			continue
		}
		if err := c.deleteObject(ctx, a.Name, old); err != nil {
			c.warn(a, "DeleteFailed", fmt.Sprintf("%s: delete %s, which the file no longer holds: %v", a.Spec.Source, old, err))
			refs = append(refs, old) // try again next time
			failed = append(failed, err.Error())
		} else {
			slog.Info("addon object deleted: no longer in its file", "addon", a.Name, "object", old.String())
		}
	}
	st := Status{Objects: refs}
	if len(failed) == 0 {
		st.AppliedChecksum = a.Spec.Checksum
		c.recorder.Eventf(a.object, corev1.EventTypeNormal, "Applied", "applied %d objects from %s", len(objs), a.Spec.Source)
		slog.Info("addon applied", "addon", a.Name, "file", a.Spec.Source, "objects", len(objs))
	} else {
		st.Error = strings.Join(failed, "; ")
	}
	if err := c.setStatus(ctx, a, st); err != nil {
		return err
	}
	if len(failed) > 0 {
		return errors.New(st.Error)
	}
	return nil
}

// applyObject applies one object server-side and returns the namespace it
// went to (namespaced objects without one go to "default", as kubectl does).
func (c *Controller) applyObject(ctx context.Context, addon string, o *unstructured.Unstructured) (string, error) {
	mapping, err := c.mapping(o.GroupVersionKind())
	if err != nil {
		return o.GetNamespace(), err
	}
	labels := o.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelAddon] = addon
	o.SetLabels(labels)
	res := c.client.Resource(mapping.Resource)
	if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
		o.SetNamespace("")
		_, err = res.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
		return "", err
	}
	if o.GetNamespace() == "" {
		o.SetNamespace(metav1.NamespaceDefault)
	}
	_, err = res.Namespace(o.GetNamespace()).Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: FieldManager, Force: true})
	return o.GetNamespace(), err
}

// mapping finds the resource of a kind, asking discovery again once if the
// kind is new (a CRD applied a moment ago).
func (c *Controller) mapping(gvk schema.GroupVersionKind) (*meta.RESTMapping, error) {
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		c.mapper.Reset()
		m, err = c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	}
	return m, err
}

// deleteObject deletes an object this Addon applied, unless another Addon
// has taken it over since.
func (c *Controller) deleteObject(ctx context.Context, addon string, ref ObjectRef) error {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return err
	}
	mapping, err := c.mapping(gv.WithKind(ref.Kind))
	if meta.IsNoMatchError(err) {
		return nil // its type is gone, so is it
	}
	if err != nil {
		return err
	}
	var res dynamic.ResourceInterface = c.client.Resource(mapping.Resource)
	if ref.Namespace != "" {
		res = c.client.Resource(mapping.Resource).Namespace(ref.Namespace)
	}
	cur, err := res.Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.GetLabels()[LabelAddon] != addon {
		return nil
	}
	policy := metav1.DeletePropagationBackground
	err = res.Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: ptr(cur.GetUID())}})
	if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
		return nil
	}
	return err
}

// remove deletes a disabled component's objects, then its Addon.
func (c *Controller) remove(ctx context.Context, a *Addon) error {
	for _, ref := range a.Status.Objects {
		if err := c.deleteObject(ctx, a.Name, ref); err != nil {
			c.warn(a, "DeleteFailed", fmt.Sprintf("disabled component %s: delete %s: %v", a.Name, ref, err))
			return err
		}
	}
	err := c.client.Resource(Resource).Delete(ctx, a.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	slog.Info("disabled component removed", "component", a.Name, "objects", len(a.Status.Objects))
	return nil
}

func (c *Controller) setStatus(ctx context.Context, a *Addon, st Status) error {
	u := a.object.DeepCopy()
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&st)
	if err != nil {
		return err
	}
	u.Object["status"] = content
	_, err = c.client.Resource(Resource).UpdateStatus(ctx, u, metav1.UpdateOptions{})
	return err
}

func (c *Controller) warn(a *Addon, reason, msg string) {
	slog.Warn("addon: "+msg, "addon", a.Name, "reason", reason)
	c.recorder.Event(a.object, corev1.EventTypeWarning, reason, msg)
}

func ptr[T any](v T) *T { return &v }
