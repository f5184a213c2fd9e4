package server

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/datastore/etcd"
)

// Labels and annotations a server puts on its own Node (spec section 7).
const (
	labelControlPlane = "node-role.kubernetes.io/control-plane"
	labelMaster       = "node-role.kubernetes.io/master"
	labelEtcd         = "node-role.kubernetes.io/etcd"
	annotEtcdName     = "etcd.k3ha.io/node-name"
	annotEtcdAddress  = "etcd.k3ha.io/node-address"
)

// nodeController labels this server's Node with its roles (a kubelet may
// not set node-role labels on itself under NodeRestriction) and cleans up
// after deleted Nodes: their node password, and for servers their etcd member.
type nodeController struct {
	client kubernetes.Interface
	name   string
	ip     string
	etcd   *etcd.Etcd // nil without embedded etcd
	agent  bool       // this server runs a kubelet, so its Node will appear
	component.Runner
}

func (c *nodeController) Name() string { return "node controller" }

func (c *nodeController) Start(ctx context.Context) error {
	runCtx := c.Context(ctx)
	factory := informers.NewSharedInformerFactory(c.client, 10*time.Minute)
	_, err := factory.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if node, ok := obj.(*corev1.Node); ok {
				c.deleted(runCtx, node)
			}
		},
	})
	if err != nil {
		c.Abort()
		return err
	}
	factory.Start(runCtx.Done())
	c.Run(runCtx, func(ctx context.Context) error {
		if c.agent {
			c.labelOwnNode(ctx)
		}
		<-ctx.Done()
		factory.Shutdown()
		return nil
	})
	return nil
}

// labelOwnNode waits for this server's Node and gives it its roles.
func (c *nodeController) labelOwnNode(ctx context.Context) {
	labels := map[string]string{labelControlPlane: "true", labelMaster: "true"}
	annotations := map[string]string{}
	if c.etcd != nil {
		labels[labelEtcd] = "true"
		annotations[annotEtcdName] = c.name
		annotations[annotEtcdAddress] = c.ip
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels, "annotations": annotations}})
	_ = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := c.client.CoreV1().Nodes().Patch(ctx, c.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		if err == nil {
			slog.Info("node roles set", "node", c.name)
			return true, nil
		}
		if !apierrors.IsNotFound(err) {
			slog.Debug("labelling node", "node", c.name, "err", err)
		}
		return false, nil
	})
}

func (c *nodeController) deleted(ctx context.Context, node *corev1.Node) {
	err := c.client.CoreV1().Secrets(metav1.NamespaceSystem).Delete(ctx, nodePasswordSecret(node.Name), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		slog.Warn("could not delete the node password of a deleted node", "node", node.Name, "err", err)
	}
	member, ok := node.Annotations[annotEtcdName]
	if !ok || c.etcd == nil {
		return
	}
	err = c.etcd.RemoveMember(ctx, member)
	switch {
	case errors.Is(err, etcd.ErrNoSuchMember):
		// Another server removed it first.
	case err != nil:
		slog.Error("could not remove the etcd member of a deleted node", "node", node.Name, "member", member, "err", err)
	default:
		slog.Info("etcd member removed because its node was deleted", "node", node.Name, "member", member)
	}
}

func (c *nodeController) Stop() error { return c.StopWithin(0) }
