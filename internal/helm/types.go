// Package helm is k3ha's Helm controller: it installs, upgrades and
// uninstalls the Helm releases that HelmChart objects describe, with Helm as
// a library, on the server holding k3ha's controllers' lease. The field
// names are K3s's, so a K3s user's HelmChart files work unchanged.
package helm

import (
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/k3ha/k3ha/internal/crds"
)

// Group is the API group of HelmChart and HelmChartConfig.
const Group = "helm.k3ha.io"

var (
	// ChartResource is the HelmChart resource.
	ChartResource = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "helmcharts"}
	// ConfigResource is the HelmChartConfig resource.
	ConfigResource = schema.GroupVersionResource{Group: Group, Version: "v1", Resource: "helmchartconfigs"}
)

// CRDs are the definitions of HelmChart and HelmChartConfig.
func CRDs() []*apiextv1.CustomResourceDefinition {
	return []*apiextv1.CustomResourceDefinition{
		crds.Define(Group, "HelmChart", "helmcharts", apiextv1.NamespaceScoped,
			crds.Column{Name: "Chart", Type: "string", JSONPath: ".spec.chart"},
			crds.Column{Name: "Target", Type: "string", JSONPath: ".spec.targetNamespace"},
			crds.Column{Name: "Revision", Type: "integer", JSONPath: ".status.revision"},
			crds.Column{Name: "Deployed", Type: "string", JSONPath: `.status.conditions[?(@.type=="Deployed")].status`}),
		crds.Define(Group, "HelmChartConfig", "helmchartconfigs", apiextv1.NamespaceScoped),
	}
}

// Chart is a HelmChart: one release, named after the object.
type Chart struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ChartSpec   `json:"spec,omitempty"`
	Status            ChartStatus `json:"status,omitempty"`
}

// ChartSpec says which chart to install where, with which values.
type ChartSpec struct {
	// Chart is a chart's name in Repo, or the URL of a chart archive.
	// %{KUBERNETES_API}% in it stands for this server's API address.
	Chart   string `json:"chart,omitempty"`
	Repo    string `json:"repo,omitempty"`
	Version string `json:"version,omitempty"`
	// ChartContent is a base64 chart archive; it wins over Chart.
	ChartContent    string `json:"chartContent,omitempty"`
	TargetNamespace string `json:"targetNamespace,omitempty"`
	CreateNamespace bool   `json:"createNamespace,omitempty"`
	// ValuesContent is YAML over the chart's values.
	ValuesContent string `json:"valuesContent,omitempty"`
	// Set are single values, as `helm --set` (or --set-string) takes them.
	Set map[string]intstr.IntOrString `json:"set,omitempty"`
	// Bootstrap marks charts a cluster needs before its nodes are ready.
	// k3ha installs every chart from the server's own process, so such a
	// chart needs nothing more; the field is accepted for K3s's files.
	Bootstrap bool             `json:"bootstrap,omitempty"`
	Timeout   *metav1.Duration `json:"timeout,omitempty"`
}

// ChartStatus is what the controller last did.
type ChartStatus struct {
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Revision is the release's deployed revision.
	Revision   int                `json:"revision,omitempty"`
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ChartConfig is a HelmChartConfig: values layered over those of the
// HelmChart of the same name and namespace.
type ChartConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		ValuesContent string `json:"valuesContent,omitempty"`
	} `json:"spec,omitempty"`
}

// Condition types and reasons on a HelmChart.
const (
	CondDeployed = "Deployed"

	ReasonInstalled   = "Installed"
	ReasonUpgraded    = "Upgraded"
	ReasonUpToDate    = "UpToDate"
	ReasonFailed      = "Failed"
	ReasonUninstalled = "Uninstalled"
)

// Finalizer holds a HelmChart until its release is uninstalled.
const Finalizer = Group + "/uninstall"

// KubernetesAPI in a chart URL stands for the server's API address.
const KubernetesAPI = "%{KUBERNETES_API}%"
