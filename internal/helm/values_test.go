package helm

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestValuesLayers(t *testing.T) {
	spec := ChartSpec{
		ValuesContent: "image:\n  tag: v1\n  pullPolicy: Never\nreplicas: 1\nlist: [a, b]\n",
		Set: map[string]intstr.IntOrString{
			"replicas":      intstr.FromInt32(3),
			"debug":         intstr.FromString("True"),
			"service.ports": intstr.FromString("80,443"),
			"name":          intstr.FromString("007"),
		},
	}
	got, err := Values(spec, "image:\n  tag: v2\nlist: [c]\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"image":    map[string]any{"tag": "v2", "pullPolicy": "Never"},
		"replicas": int64(3),
		"list":     []any{"c"},
		"debug":    true,
		"service":  map[string]any{"ports": "80,443"},
		"name":     "007",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("values:\n got %#v\nwant %#v", got, want)
	}
}

func TestValuesErrorsNameTheLayer(t *testing.T) {
	if _, err := Values(ChartSpec{ValuesContent: "- a list"}, ""); err == nil || !strings.Contains(err.Error(), "valuesContent") {
		t.Fatalf("list as values: %v", err)
	}
	if _, err := Values(ChartSpec{}, "a: [unclosed"); err == nil || !strings.Contains(err.Error(), "HelmChartConfig") {
		t.Fatalf("broken config values: %v", err)
	}
	if _, err := Values(ChartSpec{Set: map[string]intstr.IntOrString{"a[": intstr.FromInt32(1)}}, ""); err == nil || !strings.Contains(err.Error(), "set a[") {
		t.Fatalf("bad set key: %v", err)
	}
}
