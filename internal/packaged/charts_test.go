package packaged

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"sigs.k8s.io/yaml"
)

// The Traefik chart's appVersion is the packaged image it runs.
func TestTraefikChartMatchesImage(t *testing.T) {
	ch, err := Chart("traefik")
	if err != nil {
		t.Fatal(err)
	}
	if img := ImageByName("traefik"); ch.Metadata.AppVersion != img.Version {
		t.Fatalf("chart appVersion %s, image %s", ch.Metadata.AppVersion, img.Version)
	}
	if name, _ := ChartFile("traefik"); name != "traefik-"+ch.Metadata.Version+".tgz" {
		t.Fatalf("archive name %s", name)
	}
}

// The HelmChart's values, rendered through the chart, give the packaged
// image under the registry, a default IngressClass and a LoadBalancer.
func TestTraefikChartRenders(t *testing.T) {
	v := testValues
	v.Registry = "registry.example:5000"
	manifest, ok, err := Manifest("traefik", v)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	var hc struct {
		Spec struct{ Chart, ValuesContent string }
	}
	if err := yaml.Unmarshal(manifest, &hc); err != nil {
		t.Fatal(err)
	}
	file, _ := ChartFile("traefik")
	if hc.Spec.Chart != "https://%{KUBERNETES_API}%/static/charts/"+file {
		t.Errorf("chart URL %s", hc.Spec.Chart)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal([]byte(hc.Spec.ValuesContent), &vals); err != nil {
		t.Fatal(err)
	}
	ch, err := Chart("traefik")
	if err != nil {
		t.Fatal(err)
	}
	top, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "traefik", Namespace: "kube-system"}, chartutil.DefaultCapabilities)
	if err != nil {
		t.Fatal(err)
	}
	out, err := engine.Render(ch, top)
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join([]string{out["traefik/templates/deployment.yaml"], out["traefik/templates/service.yaml"], out["traefik/templates/ingressclass.yaml"]}, "\n")
	for _, want := range []string{
		`image: "registry.example:5000/k3ha/traefik:v3.7.13"`,
		"priorityClassName: system-cluster-critical",
		"--providers.kubernetesIngress.ingressEndpoint.publishedService=kube-system/traefik",
		"type: LoadBalancer",
		"port: 80\n",
		`ingressclass.kubernetes.io/is-default-class: "true"`,
		"controller: traefik.io/ingress-controller",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("rendered chart lacks %q:\n%s", want, all)
		}
	}
	for name, doc := range out {
		if strings.TrimSpace(doc) == "" || strings.HasSuffix(name, ".tpl") {
			continue
		}
		var obj map[string]any
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// WriteCharts leaves a loadable archive under Helm's name, and nothing else.
func TestWriteCharts(t *testing.T) {
	dir := t.TempDir()
	for range 2 { // a restart overwrites
		if err := WriteCharts(dir); err != nil {
			t.Fatal(err)
		}
	}
	file, _ := ChartFile("traefik")
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != file {
		t.Fatalf("dir holds %v, want only %s", entries, file)
	}
	ch, err := loader.Load(filepath.Join(dir, file))
	if err != nil || ch.Metadata.Name != "traefik" {
		t.Fatalf("archive: %v", err)
	}
}
