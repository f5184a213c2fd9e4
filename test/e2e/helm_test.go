//go:build e2e

package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// chartArchive is a chart made by the test: one ConfigMap named after the
// release, holding the values greeting and extra.
func chartArchive(t *testing.T, name, version, template string) []byte {
	t.Helper()
	if template == "" {
		template = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}
data:
  greeting: {{ .Values.greeting | quote }}
  extra: {{ .Values.extra | default "" | quote }}
`
	}
	ch := &chart.Chart{
		Metadata: &chart.Metadata{APIVersion: chart.APIVersionV2, Name: name, Version: version, Type: "application"},
		Values:   map[string]any{"greeting": "from the chart"},
		// Helm saves values.yaml from the raw file, not from Values.
		Raw:       []*chart.File{{Name: chartutil.ValuesfileName, Data: []byte("greeting: from the chart\n")}},
		Templates: []*chart.File{{Name: "templates/configmap.yaml", Data: []byte(template)}},
	}
	dir := t.TempDir()
	path, err := chartutil.Save(ch, dir)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(readFile(t, path))
}

func helmChartYAML(name, spec string) string {
	return fmt.Sprintf("apiVersion: helm.k3ha.io/v1\nkind: HelmChart\nmetadata:\n  name: %s\n  namespace: kube-system\nspec:\n%s", name, spec)
}

// chartStatus is a HelmChart's Deployed condition and revision.
func chartStatus(s *cluster.Server, name string) (cond, reason, msg string, rev int, err error) {
	out, err := s.Kubectl("get", "helmchart", "-n", "kube-system", name, "-o",
		`jsonpath={.status.conditions[?(@.type=="Deployed")].status}|{.status.conditions[?(@.type=="Deployed")].reason}|{.status.revision}|{.status.conditions[?(@.type=="Deployed")].message}`)
	f := strings.SplitN(out, "|", 4)
	if err != nil || len(f) != 4 {
		return "", "", "", 0, fmt.Errorf("%v: %s", err, out)
	}
	rev, _ = strconv.Atoi(f[2])
	return f[0], f[1], f[3], rev, nil
}

// waitChartDeployed waits until the HelmChart has deployed revision rev.
func waitChartDeployed(t *testing.T, s *cluster.Server, name string, rev int, timeout time.Duration) {
	t.Helper()
	harness.WaitFor(t, timeout, fmt.Sprintf("HelmChart %s at revision %d", name, rev), func() (bool, error) {
		cond, reason, msg, got, err := chartStatus(s, name)
		return err == nil && cond == "True" && got == rev, fmt.Errorf("%v: %s %s rev %d: %s", err, cond, reason, got, msg)
	})
}

func waitConfigMapValue(t *testing.T, s *cluster.Server, ns, name, key, want string) {
	t.Helper()
	harness.WaitFor(t, 2*time.Minute, fmt.Sprintf("configmap %s/%s %s=%q", ns, name, key, want), func() (bool, error) {
		out, err := s.Kubectl("get", "configmap", "-n", ns, name, "-o", "jsonpath={.data."+key+"}")
		return err == nil && out == want, fmt.Errorf("%v: %q", err, out)
	})
}

// releaseRevisions lists the revisions Helm stored for a release, as the
// helm CLI finds them (Secrets labelled owner=helm).
func releaseRevisions(t *testing.T, s *cluster.Server, ns, name string) []string {
	t.Helper()
	out := s.MustKubectl("get", "secrets", "-n", ns, "-l", "owner=helm,name="+name, "-o", `jsonpath={range .items[*]}{.metadata.labels.version}={.metadata.labels.status}{"\n"}{end}`)
	lines := strings.Fields(out)
	slices.Sort(lines)
	return lines
}

// TestHelmCharts runs one server and one agent with the packaged
// components: HelmCharts from chartContent and from the server's static
// charts are installed, upgraded, kept serving through a broken upgrade and
// uninstalled; Traefik serves an Ingress to a host outside the cluster and
// is upgraded by a HelmChartConfig; --disable-helm-controller and
// --disable traefik take effect on restart.
func TestHelmCharts(t *testing.T) {
	n := harness.NewNetwork(t)
	s1 := newServer(t, n.AddHost(t, "s1"))
	withTestImage(t, s1)
	s1.Start()
	s1.WaitReady()
	agentToken := readFile(t, filepath.Join(s1.DataDir(), "server", "agent-token"))
	a1 := cluster.NewAgent(t, k3haBin, n.AddHost(t, "a1"), s1.URL(), agentToken)
	withTestImage(t, a1)
	a1.Start()
	waitNodeReady(t, s1, "s1")
	waitNodeReady(t, s1, "a1")
	outside := n.AddHost(t, "outside")

	t.Run("chartContent", func(t *testing.T) {
		v1 := base64.StdEncoding.EncodeToString(chartArchive(t, "demo", "0.1.0", ""))
		spec := func(content, greeting string) string {
			return fmt.Sprintf("  chartContent: %s\n  targetNamespace: demo\n  createNamespace: true\n  set:\n    extra: from-set\n  valuesContent: |-\n    greeting: %s\n", content, greeting)
		}
		if err := kubectlApply(s1, helmChartYAML("demo", spec(v1, "hello"))); err != nil {
			t.Fatal(err)
		}
		waitChartDeployed(t, s1, "demo", 1, 2*time.Minute)
		waitConfigMapValue(t, s1, "demo", "demo", "greeting", "hello")
		waitConfigMapValue(t, s1, "demo", "demo", "extra", "from-set")
		if got := releaseRevisions(t, s1, "demo", "demo"); !slices.Equal(got, []string{"1=deployed"}) {
			t.Fatalf("helm's release records: %v", got)
		}

		if err := kubectlApply(s1, helmChartYAML("demo", spec(v1, "changed"))); err != nil {
			t.Fatal(err)
		}
		waitChartDeployed(t, s1, "demo", 2, 2*time.Minute)
		waitConfigMapValue(t, s1, "demo", "demo", "greeting", "changed")

		// A template error: the status and an Event say so, and revision
		// 2 keeps serving.
		broken := base64.StdEncoding.EncodeToString(chartArchive(t, "demo", "0.2.0", "data: {{ .Values.greeting | nosuchfunction }}\n"))
		if err := kubectlApply(s1, helmChartYAML("demo", spec(broken, "changed"))); err != nil {
			t.Fatal(err)
		}
		harness.WaitFor(t, 2*time.Minute, "the broken chart's error on the HelmChart", func() (bool, error) {
			cond, reason, msg, rev, err := chartStatus(s1, "demo")
			return cond == "False" && reason == "Failed" && strings.Contains(msg, "nosuchfunction") && rev == 2,
				fmt.Errorf("%v: %s %s rev %d: %s", err, cond, reason, rev, msg)
		})
		harness.WaitFor(t, time.Minute, "a Warning Event naming the error", func() (bool, error) {
			out, err := s1.Kubectl("get", "events", "-n", "kube-system", "--field-selector", "involvedObject.kind=HelmChart,involvedObject.name=demo,type=Warning", "-o", "jsonpath={.items[*].message}")
			return strings.Contains(out, "nosuchfunction"), fmt.Errorf("%v: %s", err, out)
		})
		if out := s1.MustKubectl("get", "configmap", "-n", "demo", "demo", "-o", "jsonpath={.data.greeting}"); out != "changed" {
			t.Fatalf("the running release changed: greeting %q", out)
		}
		if got := releaseRevisions(t, s1, "demo", "demo"); !slices.Equal(got, []string{"1=superseded", "2=deployed"}) {
			t.Fatalf("helm's release records after the failed upgrade: %v", got)
		}

		s1.MustKubectl("delete", "helmchart", "-n", "kube-system", "demo", "--timeout=2m")
		harness.WaitFor(t, time.Minute, "release uninstalled", func() (bool, error) {
			out, err := s1.Kubectl("get", "configmap,secrets", "-n", "demo", "-l", "owner=helm", "-o", "name")
			cm, _ := s1.Kubectl("get", "configmap", "-n", "demo", "demo", "--ignore-not-found", "-o", "name")
			return err == nil && out == "" && cm == "", fmt.Errorf("%v: left %s %s", err, out, cm)
		})
	})

	t.Run("static chart", func(t *testing.T) {
		archive := chartArchive(t, "local", "1.2.3", "")
		if err := os.WriteFile(filepath.Join(s1.DataDir(), "server", "static", "charts", "local-1.2.3.tgz"), archive, 0o644); err != nil {
			t.Fatal(err)
		}
		// Nobody gets the file without a token.
		ip := s1.Host.IP.String()
		if out, _ := outside.Run(t, "curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://"+ip+":6443/static/charts/local-1.2.3.tgz"); out != "401" {
			t.Fatalf("anonymous GET of a static chart: %s, want 401", out)
		}
		if err := kubectlApply(s1, helmChartYAML("local", "  chart: https://%{KUBERNETES_API}%/static/charts/local-1.2.3.tgz\n  targetNamespace: default\n")); err != nil {
			t.Fatal(err)
		}
		waitChartDeployed(t, s1, "local", 1, 2*time.Minute)
		waitConfigMapValue(t, s1, "default", "local", "greeting", "from the chart")
	})

	// Traefik is installed by the Helm controller with every cluster.
	waitChartDeployed(t, s1, "traefik", 1, 3*time.Minute)
	if out := s1.MustKubectl("get", "ingressclass", "traefik", "-o", `jsonpath={.metadata.annotations.ingressclass\.kubernetes\.io/is-default-class}`); out != "true" {
		t.Fatalf("IngressClass traefik is not the default: %q", out)
	}

	t.Run("ingress", func(t *testing.T) {
		if err := kubectlApply(s1, podYAML("web", "a1")+"---\n"+cluster.WebIngressYAML("web.k3ha.test")); err != nil {
			t.Fatal(err)
		}
		waitPodRunning(t, s1, "web")
		for _, node := range []*cluster.Server{s1, a1} {
			ip := node.Host.IP.String()
			harness.WaitFor(t, 3*time.Minute, "the Ingress served on "+ip+":80", func() (bool, error) {
				out, err := outside.Run(t, "curl", "-sS", "--max-time", "5", "-H", "Host: web.k3ha.test", "http://"+ip+"/")
				return strings.Contains(out, "hello from web"), fmt.Errorf("%v: %s", err, out)
			})
			out, _ := outside.Run(t, "curl", "-sS", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: other.k3ha.test", "http://"+ip+"/")
			if out != "404" {
				t.Fatalf("another host on %s: HTTP %s, want 404", ip, out)
			}
		}
		// The Ingress shows where it is served (Traefik publishes its
		// Service's load balancer addresses).
		harness.WaitFor(t, time.Minute, "Ingress status", func() (bool, error) {
			out, err := s1.Kubectl("get", "ingress", "web", "-o", "jsonpath={.status.loadBalancer.ingress[*].ip}")
			return strings.Contains(out, s1.Host.IP.String()), fmt.Errorf("%v: %q", err, out)
		})
	})

	t.Run("HelmChartConfig", func(t *testing.T) {
		if err := kubectlApply(s1, `apiVersion: helm.k3ha.io/v1
kind: HelmChartConfig
metadata:
  name: traefik
  namespace: kube-system
spec:
  valuesContent: |-
    deployment:
      podAnnotations:
        k3ha.test/configured: "yes"
    logs:
      access:
        enabled: true
`); err != nil {
			t.Fatal(err)
		}
		waitChartDeployed(t, s1, "traefik", 2, 2*time.Minute)
		if out := s1.MustKubectl("get", "deployment", "-n", "kube-system", "traefik", "-o", `jsonpath={.spec.template.metadata.annotations.k3ha\.test/configured} {.spec.template.spec.containers[0].args}`); !strings.HasPrefix(out, "yes ") || !strings.Contains(out, "--accessLog=true") {
			t.Fatalf("traefik's Deployment after the HelmChartConfig: %s", out)
		}
		ip := a1.Host.IP.String()
		harness.WaitFor(t, 3*time.Minute, "the upgraded Traefik serving", func() (bool, error) {
			out, err := outside.Run(t, "curl", "-sS", "--max-time", "5", "-H", "Host: web.k3ha.test", "http://"+ip+"/")
			logs, _ := s1.Kubectl("logs", "-n", "kube-system", "deployment/traefik")
			// The access log shows the request went through the new pod.
			return strings.Contains(out, "hello from web") && strings.Contains(logs, `"GET / HTTP/1.1" 200`), fmt.Errorf("%v: %s; traefik log: %s", err, out, tail(logs, 5))
		})
	})

	t.Run("disable helm controller", func(t *testing.T) {
		s1.Stop(30 * time.Second)
		s1.Args = append(s1.Args, "--disable-helm-controller")
		s1.Start()
		s1.WaitReady()
		if err := kubectlApply(s1, helmChartYAML("idle", "  chartContent: "+base64.StdEncoding.EncodeToString(chartArchive(t, "idle", "0.1.0", ""))+"\n  targetNamespace: default\n")); err != nil {
			t.Fatal(err)
		}
		// The deploy controller runs beside the Helm controller on the
		// lease holder: once it has applied a new manifest, the Helm
		// controller would have acted on the older HelmChart too.
		marker := filepath.Join(s1.DataDir(), "server", "manifests", "marker.yaml")
		if err := os.WriteFile(marker, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: marker\n  namespace: default\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		harness.WaitFor(t, 2*time.Minute, "the deploy controller applied the marker", func() (bool, error) {
			out, err := s1.Kubectl("get", "configmap", "marker", "-o", "name")
			return out == "configmap/marker", fmt.Errorf("%v: %s", err, out)
		})
		out := s1.MustKubectl("get", "helmchart", "-n", "kube-system", "idle", "-o", "jsonpath={.metadata.finalizers}{.status}")
		if out != "" {
			t.Fatalf("a disabled Helm controller acted on a HelmChart: %s", out)
		}
		if cm, _ := s1.Kubectl("get", "configmap", "idle", "--ignore-not-found", "-o", "name"); cm != "" {
			t.Fatalf("a disabled Helm controller installed a chart: %s", cm)
		}
		s1.Stop(30 * time.Second)
		s1.Args = slices.DeleteFunc(s1.Args, func(a string) bool { return a == "--disable-helm-controller" })
		s1.Start()
		s1.WaitReady()
		waitChartDeployed(t, s1, "idle", 1, 2*time.Minute)
	})

	t.Run("disable traefik", func(t *testing.T) {
		s1.Stop(30 * time.Second)
		s1.Args = append(s1.Args, "--disable", "traefik")
		s1.Start()
		s1.WaitReady()
		harness.WaitFor(t, 2*time.Minute, "Traefik's objects gone", func() (bool, error) {
			var left []string
			for _, obj := range []string{"helmchart/traefik", "deployment/traefik", "service/traefik", "serviceaccount/traefik"} {
				if out, err := s1.Kubectl("get", "-n", "kube-system", obj, "--ignore-not-found", "-o", "name"); err != nil || out != "" {
					left = append(left, obj)
				}
			}
			if out, err := s1.Kubectl("get", "ingressclass", "traefik", "--ignore-not-found", "-o", "name"); err != nil || out != "" {
				left = append(left, "ingressclass/traefik")
			}
			if out, err := s1.Kubectl("get", "secrets", "-n", "kube-system", "-l", "owner=helm,name=traefik", "-o", "name"); err != nil || out != "" {
				left = append(left, "release records")
			}
			if out, err := s1.Kubectl("get", "daemonsets", "-n", "kube-system", "-l", "svccontroller.k3ha.io/svcname=traefik", "-o", "name"); err != nil || out != "" {
				left = append(left, "servicelb forwarders")
			}
			return len(left) == 0, fmt.Errorf("still there: %v", left)
		})
		harness.WaitFor(t, time.Minute, "nothing listens on port 80 any more", func() (bool, error) {
			out, err := outside.Run(t, "curl", "-sS", "--max-time", "5", "-H", "Host: web.k3ha.test", "http://"+a1.Host.IP.String()+"/")
			return err != nil && strings.Contains(out, "Failed to connect"), fmt.Errorf("%v: %s", err, out)
		})
		if _, err := os.Stat(filepath.Join(s1.DataDir(), "server", "manifests", "traefik.yaml")); !os.IsNotExist(err) {
			t.Errorf("traefik.yaml still in the manifests dir: %v", err)
		}
		// The other HelmCharts are untouched.
		waitChartDeployed(t, s1, "local", 1, time.Minute)
	})
}
