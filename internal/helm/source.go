package helm

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Source is where a chart's archive comes from, decided from the spec alone.
type Source struct {
	// Inline is the archive itself (chartContent).
	Inline []byte
	// URL is the archive's address, or for a repository chart the
	// repository's.
	URL string
	// Name and Version pick a chart in the repository at URL.
	Name, Version string
}

// FromRepo reports whether the chart is picked from a repository index.
func (s Source) FromRepo() bool { return s.Name != "" }

// ResolveSource decides where spec's chart comes from. apiAddress
// (host:port) replaces %{KUBERNETES_API}% in URLs.
func ResolveSource(spec ChartSpec, apiAddress string) (Source, error) {
	if spec.ChartContent != "" {
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(spec.ChartContent))
		if err != nil {
			return Source{}, fmt.Errorf("chartContent is not base64: %w", err)
		}
		return Source{Inline: data}, nil
	}
	chart := strings.ReplaceAll(spec.Chart, KubernetesAPI, apiAddress)
	repo := strings.ReplaceAll(spec.Repo, KubernetesAPI, apiAddress)
	switch {
	case chart == "":
		return Source{}, errors.New("spec.chart or spec.chartContent is required")
	case strings.HasPrefix(chart, "oci://"):
		return Source{}, fmt.Errorf("chart %q: OCI registries are not supported; use a chart archive's URL, a repo, or chartContent", chart)
	case isHTTP(chart):
		if _, err := url.Parse(chart); err != nil {
			return Source{}, fmt.Errorf("chart URL %q: %w", chart, err)
		}
		return Source{URL: chart}, nil
	case repo == "":
		return Source{}, fmt.Errorf("chart %q is not a URL, and spec.repo is empty: set spec.repo to its repository, or give the archive's URL or chartContent", chart)
	case !isHTTP(repo):
		return Source{}, fmt.Errorf("repo %q: only http and https repositories are supported", repo)
	}
	// "stable/traefik" names a chart in the repository the user called
	// stable; the repository is spec.repo whatever its local name was.
	if i := strings.LastIndex(chart, "/"); i >= 0 {
		chart = chart[i+1:]
	}
	return Source{URL: repo, Name: chart, Version: spec.Version}, nil
}

func isHTTP(s string) bool {
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}
