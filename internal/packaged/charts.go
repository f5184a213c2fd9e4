package packaged

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
)

// charts are the packaged components' Helm charts (all: keeps _helpers.tpl).
//
//go:embed all:charts
var chartFS embed.FS

// Chart loads the packaged chart name.
func Chart(name string) (*chart.Chart, error) {
	root := path.Join("charts", name)
	var files []*loader.BufferedFile
	err := fs.WalkDir(chartFS, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := chartFS.ReadFile(p)
		if err != nil {
			return err
		}
		files = append(files, &loader.BufferedFile{Name: strings.TrimPrefix(p, root+"/"), Data: data})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("packaged chart %s: %w", name, err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, fmt.Errorf("packaged chart %s: %w", name, err)
	}
	return ch, nil
}

// ChartFile is the archive name of the packaged chart name, as Helm names
// archives: <name>-<version>.tgz.
func ChartFile(name string) (string, error) {
	ch, err := Chart(name)
	if err != nil {
		return "", err
	}
	return ch.Metadata.Name + "-" + ch.Metadata.Version + ".tgz", nil
}

// ChartNames are the packaged charts.
func ChartNames() []string {
	entries, _ := chartFS.ReadDir("charts")
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// WriteCharts writes every packaged chart's archive into dir, where the
// supervisor serves it under /static/charts/ (as every server does at
// start, so whichever holds the controllers' lease finds it).
func WriteCharts(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("charts dir: %w", err)
	}
	for _, name := range ChartNames() {
		ch, err := Chart(name)
		if err != nil {
			return err
		}
		// Saved beside, then renamed: a reader never sees half an archive.
		tmp, err := os.MkdirTemp(dir, ".save-")
		if err != nil {
			return err
		}
		saved, err := chartutil.Save(ch, tmp)
		if err == nil {
			err = os.Rename(saved, filepath.Join(dir, filepath.Base(saved)))
		}
		os.RemoveAll(tmp)
		if err != nil {
			return fmt.Errorf("write chart %s: %w", name, err)
		}
	}
	return nil
}
