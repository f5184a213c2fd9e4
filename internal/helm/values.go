package helm

import (
	"fmt"
	"slices"
	"strings"

	"helm.sh/helm/v3/pkg/strvals"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Values are the user-supplied values of a release: the HelmChart's
// valuesContent, its HelmChartConfig's over that, and its set values last,
// as `helm -f chart.yaml -f config.yaml --set ...` would take them. Helm
// itself lays them over the chart's own values.
func Values(chart ChartSpec, configValues string) (map[string]any, error) {
	vals := map[string]any{}
	for _, layer := range []struct{ name, text string }{
		{"valuesContent", chart.ValuesContent},
		{"HelmChartConfig valuesContent", configValues},
	} {
		m := map[string]any{}
		if err := yaml.Unmarshal([]byte(layer.text), &m); err != nil {
			return nil, fmt.Errorf("%s is not a YAML map: %w", layer.name, err)
		}
		vals = merge(vals, m)
	}
	keys := make([]string, 0, len(chart.Set))
	for k := range chart.Set {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := setValue(vals, k, chart.Set[k]); err != nil {
			return nil, fmt.Errorf("set %s: %w", k, err)
		}
	}
	return vals, nil
}

// setValue sets one value: numbers and true/false as typed values, other
// strings as strings (K3s's rule), never split at commas.
func setValue(vals map[string]any, key string, v intstr.IntOrString) error {
	if v.Type == intstr.Int {
		return strvals.ParseInto(fmt.Sprintf("%s=%d", key, v.IntVal), vals)
	}
	if s := strings.ToLower(v.StrVal); s == "true" || s == "false" {
		return strvals.ParseInto(key+"="+s, vals)
	}
	return strvals.ParseIntoString(key+"="+escapeCommas(v.StrVal), vals)
}

func escapeCommas(s string) string { return strings.ReplaceAll(s, ",", `\,`) }

// merge lays over onto base: maps merge key by key, anything else replaces.
func merge(base, over map[string]any) map[string]any {
	out := make(map[string]any, len(base))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		if bm, ok := out[k].(map[string]any); ok {
			if om, ok := v.(map[string]any); ok {
				out[k] = merge(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}
