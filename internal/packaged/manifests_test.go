package packaged

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var testValues = Values{ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local", StoragePath: "/var/lib/k3ha/storage"}

// Every manifest renders to YAML documents that each name an object.
func TestManifestsRender(t *testing.T) {
	for _, c := range []string{"coredns", "local-storage", "metrics-server", "servicelb", "traefik"} {
		data, ok, err := Manifest(c, testValues)
		if err != nil || !ok {
			t.Fatalf("%s: ok=%v err=%v", c, ok, err)
		}
		for i, doc := range strings.Split(string(data), "\n---\n") {
			var obj struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name string `json:"name"`
				} `json:"metadata"`
			}
			if err := yaml.UnmarshalStrict([]byte(doc), &obj, yaml.DisallowUnknownFields); err != nil {
				// Unknown fields are expected (spec, data, ...); only syntax matters.
				if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
					t.Fatalf("%s document %d: %v", c, i+1, err)
				}
			}
			if obj.APIVersion == "" || obj.Kind == "" || obj.Metadata.Name == "" {
				t.Fatalf("%s document %d names no object:\n%s", c, i+1, doc)
			}
		}
	}
}

func TestManifestValues(t *testing.T) {
	v := testValues
	v.ClusterDNS, v.ClusterDomain = "10.99.0.10", "example.internal"
	data, _, _ := Manifest("coredns", v)
	for _, want := range []string{"clusterIP: 10.99.0.10", "kubernetes example.internal in-addr.arpa", "image: k3ha.invalid/k3ha/coredns:v1.15.0"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("coredns manifest lacks %q", want)
		}
	}
	v.Registry = "registry.example.com:5000"
	data, _, _ = Manifest("local-storage", v)
	for _, want := range []string{"image: registry.example.com:5000/k3ha/local-path-provisioner:v0.0.30",
		"image: registry.example.com:5000/k3ha/local-path-helper:", `"paths": ["/var/lib/k3ha/storage"]`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("local-storage manifest lacks %q", want)
		}
	}
}

func TestWriteManifests(t *testing.T) {
	dir := t.TempDir()
	// A user's own coredns: the .skip file keeps k3ha's away.
	if err := os.WriteFile(filepath.Join(dir, "coredns.yaml"), []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "coredns.yaml.skip"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "metrics-server.yaml"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteManifests(dir, testValues, []string{"coredns", "local-storage", "servicelb", "traefik"}, []string{"metrics-server"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "coredns.yaml")); string(got) != "mine" {
		t.Errorf("skipped manifest was overwritten: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "metrics-server.yaml")); !os.IsNotExist(err) {
		t.Errorf("disabled component's manifest kept: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if info, _ := e.Info(); e.Name() == "local-storage.yaml" && info.Mode().Perm() != 0o600 {
			t.Errorf("mode %v", info.Mode())
		}
	}
	want := []string{"coredns.yaml", "coredns.yaml.skip", "local-storage.yaml", "servicelb.yaml", "traefik.yaml"}
	if !slices.Equal(names, want) {
		t.Errorf("files %v, want %v", names, want)
	}
}
