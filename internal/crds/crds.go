// Package crds installs k3ha's own custom resource definitions and waits
// until the apiserver serves them.
package crds

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
)

// Group is the API group of k3ha's own resources.
const Group = "k3ha.io"

// fieldManager owns the fields k3ha sets on its CRDs.
const fieldManager = "k3ha"

// Install applies each definition (server-side, so every server may do it
// and a newer server's schema wins) and waits until all are Established.
func Install(ctx context.Context, cfg *rest.Config, defs ...*apiextv1.CustomResourceDefinition) error {
	client, err := apiextclient.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("apiextensions client: %w", err)
	}
	crds := client.ApiextensionsV1().CustomResourceDefinitions()
	for _, d := range defs {
		d.TypeMeta = metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"}
		body, err := json.Marshal(d)
		if err != nil {
			return err
		}
		force := true
		if _, err := crds.Patch(ctx, d.Name, types.ApplyPatchType, body, metav1.PatchOptions{FieldManager: fieldManager, Force: &force}); err != nil {
			return fmt.Errorf("install CRD %s: %w", d.Name, err)
		}
	}
	for _, d := range defs {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
			got, err := crds.Get(ctx, d.Name, metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			for _, c := range got.Status.Conditions {
				if c.Type == apiextv1.Established && c.Status == apiextv1.ConditionTrue {
					return true, nil
				}
			}
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("CRD %s not established: %w", d.Name, err)
		}
	}
	return nil
}

// Column is one printer column of `kubectl get`.
type Column struct{ Name, Type, JSONPath string }

// ClusterScoped describes a cluster-scoped resource of group k3ha.io (see Define).
func ClusterScoped(kind, plural string, columns ...Column) *apiextv1.CustomResourceDefinition {
	return Define(Group, kind, plural, apiextv1.ClusterScoped, columns...)
}

// Define describes a resource of group with one version v1, a status
// subresource and a schema that keeps whatever fields its spec and status
// hold (k3ha validates them itself).
func Define(group, kind, plural string, scope apiextv1.ResourceScope, columns ...Column) *apiextv1.CustomResourceDefinition {
	preserve := true
	open := apiextv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}
	cols := []apiextv1.CustomResourceColumnDefinition{}
	for _, c := range columns {
		cols = append(cols, apiextv1.CustomResourceColumnDefinition{Name: c.Name, Type: c.Type, JSONPath: c.JSONPath})
	}
	cols = append(cols, apiextv1.CustomResourceColumnDefinition{Name: "Age", Type: "date", JSONPath: ".metadata.creationTimestamp"})
	return &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural, Singular: strings.ToLower(kind)},
			Scope: scope,
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Subresources:             &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}},
				AdditionalPrinterColumns: cols,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type:       "object",
					Properties: map[string]apiextv1.JSONSchemaProps{"spec": open, "status": open},
				}},
			}},
		},
	}
}
