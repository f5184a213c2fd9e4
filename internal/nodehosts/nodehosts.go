// Package nodehosts keeps the NodeHosts key of the cluster DNS's ConfigMap
// (kube-system/coredns) current: one "<ip> <node name>" line per address
// of every node, so that pods resolve node names.
package nodehosts

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

const (
	namespace = metav1.NamespaceSystem
	configMap = "coredns"
	// Key is the ConfigMap key the Corefile's hosts plugin reads.
	Key = "NodeHosts"
)

// Render is the NodeHosts content for nodes: each InternalIP (or, lacking
// one, ExternalIP) with the node's name and, if it differs, its host name;
// sorted by address so the same nodes always give the same bytes.
func Render(nodes []*corev1.Node) string {
	type line struct {
		ip    netip.Addr
		names string
	}
	var lines []line
	for _, n := range nodes {
		if n.DeletionTimestamp != nil {
			continue
		}
		names := n.Name
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeHostName && a.Address != n.Name {
				names += " " + a.Address
			}
		}
		for _, ip := range nodeIPs(n) {
			lines = append(lines, line{ip, names})
		}
	}
	sort.Slice(lines, func(i, j int) bool {
		if c := lines[i].ip.Compare(lines[j].ip); c != 0 {
			return c < 0
		}
		return lines[i].names < lines[j].names
	})
	var b strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&b, "%s %s\n", l.ip, l.names)
	}
	return b.String()
}

func nodeIPs(n *corev1.Node) []netip.Addr {
	for _, kind := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		var out []netip.Addr
		for _, a := range n.Status.Addresses {
			if ip, err := netip.ParseAddr(a.Address); a.Type == kind && err == nil {
				out = append(out, ip)
			}
		}
		if len(out) > 0 {
			return out
		}
	}
	return nil
}

// Controller rewrites NodeHosts whenever nodes or the ConfigMap change.
type Controller struct {
	Client kubernetes.Interface
}

// Run keeps NodeHosts current until ctx ends.
func (c *Controller) Run(ctx context.Context) error {
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](time.Second, 30*time.Second))
	defer queue.ShutDown()
	nodes := informers.NewSharedInformerFactory(c.Client, 10*time.Minute)
	cms := informers.NewSharedInformerFactoryWithOptions(c.Client, 10*time.Minute, informers.WithNamespace(namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = "metadata.name=" + configMap }))
	kick := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { queue.Add(Key) },
		UpdateFunc: func(any, any) { queue.Add(Key) },
		DeleteFunc: func(any) { queue.Add(Key) },
	}
	nodeInf := nodes.Core().V1().Nodes()
	cmInf := cms.Core().V1().ConfigMaps()
	if _, err := nodeInf.Informer().AddEventHandler(kick); err != nil {
		return err
	}
	if _, err := cmInf.Informer().AddEventHandler(kick); err != nil {
		return err
	}
	nodes.Start(ctx.Done())
	cms.Start(ctx.Done())
	defer nodes.Shutdown()
	defer cms.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nodeInf.Informer().HasSynced, cmInf.Informer().HasSynced) {
		return nil
	}
	go func() { <-ctx.Done(); queue.ShutDown() }()
	for {
		key, quit := queue.Get()
		if quit {
			return nil
		}
		if err := c.sync(ctx, nodeInf.Lister(), cmInf.Lister()); err != nil {
			if ctx.Err() == nil {
				slog.Warn("could not update the cluster DNS's NodeHosts; retrying", "err", err)
				queue.AddRateLimited(key)
			}
		} else {
			queue.Forget(key)
		}
		queue.Done(key)
	}
}

func (c *Controller) sync(ctx context.Context, nodes corelisters.NodeLister, cms corelisters.ConfigMapLister) error {
	list, err := nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	cm, err := cms.ConfigMaps(namespace).Get(configMap)
	if apierrors.IsNotFound(err) {
		return nil // the cluster DNS is not deployed (yet, or disabled)
	}
	if err != nil {
		return err
	}
	want := Render(list)
	if cm.Data[Key] == want {
		return nil
	}
	cm = cm.DeepCopy()
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[Key] = want
	if _, err := c.Client.CoreV1().ConfigMaps(namespace).Update(ctx, cm, metav1.UpdateOptions{FieldManager: "k3ha-nodehosts"}); err != nil {
		return err
	}
	slog.Info("cluster DNS node hosts updated", "nodes", len(list))
	return nil
}
