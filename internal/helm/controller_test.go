package helm

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestSpecChanged(t *testing.T) {
	obj := func(rv string, gen int64, deleting bool) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		u.SetResourceVersion(rv)
		u.SetGeneration(gen)
		if deleting {
			now := metav1.Now()
			u.SetDeletionTimestamp(&now)
		}
		return u
	}
	cases := []struct {
		name     string
		old, new *unstructured.Unstructured
		want     bool
	}{
		{"own status or finalizer write", obj("1", 1, false), obj("2", 1, false), false},
		{"new spec", obj("1", 1, false), obj("2", 2, false), true},
		{"resync", obj("2", 1, false), obj("2", 1, false), true},
		{"deleted", obj("1", 1, false), obj("2", 1, true), true},
	}
	for _, c := range cases {
		if got := specChanged(c.old, c.new); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
