// Package addons is k3ha's deploy controller: every manifest file in the
// server's manifests directory becomes an Addon object in the cluster
// (on every server), and the server holding the controllers' lease applies
// each Addon's objects with server-side apply, deleting the objects a file
// no longer holds.
package addons

import (
	"fmt"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/k3ha/k3ha/internal/crds"
)

// Resource is the Addon resource.
var Resource = schema.GroupVersionResource{Group: crds.Group, Version: "v1", Resource: "addons"}

// CRD defines Addon.
func CRD() *apiextv1.CustomResourceDefinition {
	return crds.ClusterScoped("Addon", "addons",
		crds.Column{Name: "Source", Type: "string", JSONPath: ".spec.source"},
		crds.Column{Name: "Server", Type: "string", JSONPath: ".spec.server"},
		crds.Column{Name: "Applied", Type: "string", JSONPath: ".status.appliedChecksum"},
		crds.Column{Name: "Error", Type: "string", JSONPath: ".status.error"})
}

// Labels on the objects an Addon applied: which Addon owns them, so that
// pruning never deletes an object another file now holds.
const LabelAddon = "addons.k3ha.io/name"

// FieldManager is the server-side apply manager of applied objects.
const FieldManager = "k3ha-deploy"

// Addon is one manifest file as the cluster knows it.
type Addon struct {
	Name     string
	Spec     Spec
	Status   Status
	Deleting bool // marked for deletion
	object   *unstructured.Unstructured
}

// body is an Addon's spec and status as stored.
type body struct {
	Spec   Spec   `json:"spec"`
	Status Status `json:"status"`
}

// Spec is what a server found in its manifests directory.
type Spec struct {
	Source   string `json:"source"`   // the file's path on that server
	Server   string `json:"server"`   // the server that wrote it
	Checksum string `json:"checksum"` // SHA-256 of Content
	Content  string `json:"content"`
}

// Status is what the applying server did with it.
type Status struct {
	AppliedChecksum string      `json:"appliedChecksum,omitempty"`
	Objects         []ObjectRef `json:"objects,omitempty"`
	Error           string      `json:"error,omitempty"`
}

// ObjectRef names one applied object.
type ObjectRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
}

func (r ObjectRef) String() string {
	if r.Namespace != "" {
		return fmt.Sprintf("%s %s/%s", r.Kind, r.Namespace, r.Name)
	}
	return fmt.Sprintf("%s %s", r.Kind, r.Name)
}

func fromUnstructured(u *unstructured.Unstructured) (*Addon, error) {
	var b body
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b); err != nil {
		return nil, fmt.Errorf("addon %s: %w", u.GetName(), err)
	}
	return &Addon{Name: u.GetName(), Spec: b.Spec, Status: b.Status, Deleting: u.GetDeletionTimestamp() != nil, object: u}, nil
}

// object is the Addon with its spec, for writing.
func object(name string, spec Spec) (*unstructured.Unstructured, error) {
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&body{Spec: spec})
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: content}
	u.SetAPIVersion(Resource.GroupVersion().String())
	u.SetKind("Addon")
	u.SetName(name)
	return u, nil
}
