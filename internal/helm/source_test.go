package helm

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestResolveSource(t *testing.T) {
	const api = "10.0.0.1:6443"
	cases := []struct {
		name string
		spec ChartSpec
		want Source
		err  string
	}{
		{"inline wins", ChartSpec{Chart: "x", ChartContent: base64.StdEncoding.EncodeToString([]byte("tgz"))}, Source{Inline: []byte("tgz")}, ""},
		{"static chart", ChartSpec{Chart: "https://%{KUBERNETES_API}%/static/charts/traefik-1.0.0.tgz"},
			Source{URL: "https://10.0.0.1:6443/static/charts/traefik-1.0.0.tgz"}, ""},
		{"repo chart", ChartSpec{Chart: "stable/nginx", Repo: "https://charts.example/", Version: "1.2.3"},
			Source{URL: "https://charts.example/", Name: "nginx", Version: "1.2.3"}, ""},
		{"bad base64", ChartSpec{ChartContent: "%%%"}, Source{}, "chartContent is not base64"},
		{"nothing", ChartSpec{}, Source{}, "spec.chart or spec.chartContent is required"},
		{"name without repo", ChartSpec{Chart: "nginx"}, Source{}, "spec.repo is empty"},
		{"oci", ChartSpec{Chart: "oci://r.example/c"}, Source{}, "OCI registries are not supported"},
		{"ftp repo", ChartSpec{Chart: "c", Repo: "ftp://r.example"}, Source{}, "only http and https"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ResolveSource(c.spec, api)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Inline) != string(c.want.Inline) || got.URL != c.want.URL || got.Name != c.want.Name || got.Version != c.want.Version {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}
