package addons

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestDecode(t *testing.T) {
	objs, err := decode([]byte(`# a comment only
---
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: ns}
- apiVersion: apiextensions.k8s.io/v1
  kind: CustomResourceDefinition
  metadata: {name: things.example.com}
`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range applyOrder(objs) {
		names = append(names, o.GetKind()+"/"+o.GetName())
	}
	if got := strings.Join(names, ","); got != "Namespace/ns,CustomResourceDefinition/things.example.com,ConfigMap/a" {
		t.Fatalf("order: %s", got)
	}
	json, err := decode([]byte(`{"apiVersion":"v1","kind":"Secret","metadata":{"name":"s"}}`))
	if err != nil || len(json) != 1 || json[0].GetKind() != "Secret" {
		t.Fatalf("json: %v %v", json, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for content, want := range map[string]string{
		"apiVersion: v1\nkind: ConfigMap\nmetadata: [broken\n":                 "document 1",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: X\n": "document 2: object without apiVersion, metadata.name",
	} {
		if _, err := decode([]byte(content)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", content, err, want)
		}
	}
}

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"coredns.yaml", "coredns.yaml.skip", "My_App.yml", "x.json", "notes.txt", ".hidden.yaml", "b.yaml"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o700); err != nil {
		t.Fatal(err)
	}
	got, err := Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"my-app": "My_App.yml", "x": "x.json", "b": "b.yaml"}
	if len(got) != len(want) {
		t.Fatalf("files %v", got)
	}
	for name, file := range want {
		if got[name] != filepath.Join(dir, file) {
			t.Errorf("%s: %q, want %s", name, got[name], file)
		}
	}
	if got, err := Files(filepath.Join(dir, "missing")); err != nil || len(got) != 0 {
		t.Errorf("missing dir: %v %v", got, err)
	}
}

func TestAddonRoundTrip(t *testing.T) {
	spec := Spec{Source: "/m/a.yaml", Server: "s1", Checksum: checksum([]byte("x")), Content: "x"}
	u, err := object("a", spec)
	if err != nil {
		t.Fatal(err)
	}
	u.Object["status"] = map[string]any{"appliedChecksum": "abc", "objects": []any{map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "namespace": "default", "name": "c"}}}
	a, err := fromUnstructured(u)
	if err != nil {
		t.Fatal(err)
	}
	if a.Name != "a" || a.Spec != spec || a.Status.AppliedChecksum != "abc" || a.Status.Objects[0].String() != "ConfigMap default/c" {
		t.Fatalf("addon %+v", a)
	}
	if _, err := fromUnstructured(&unstructured.Unstructured{Object: map[string]any{"spec": "not a map"}}); err == nil {
		t.Fatal("malformed addon accepted")
	}
}
