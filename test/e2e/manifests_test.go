//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

// leaseHolder is the server running k3ha's controllers.
func leaseHolder(t *testing.T, servers []*cluster.Server) *cluster.Server {
	t.Helper()
	var holder *cluster.Server
	harness.WaitFor(t, time.Minute, "k3ha controllers' lease held", func() (bool, error) {
		out, err := servers[0].Kubectl("get", "lease", "-n", "kube-system", "k3ha", "-o", "jsonpath={.spec.holderIdentity}")
		for _, s := range servers {
			if strings.HasPrefix(out, s.Name+"_") {
				holder = s
				return true, nil
			}
		}
		return false, fmt.Errorf("%v: %q", err, out)
	})
	return holder
}

func manifestCM(name, value string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s\n  namespace: default\ndata:\n  v: %q\n", name, value)
}

// testManifests drops a user's manifest on a server that does not hold the
// controllers' lease: it reaches the cluster, changes and removed objects
// follow the file, and a broken file is reported without stopping others.
func testManifests(t *testing.T, servers []*cluster.Server) {
	holder := leaseHolder(t, servers)
	var on *cluster.Server
	for _, s := range servers {
		if s != holder {
			on = s
		}
	}
	t.Logf("lease held by %s; dropping manifests on %s", holder.Name, on.Name)
	dir := filepath.Join(on.DataDir(), "server", "manifests")
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	waitValue := func(name, want string) {
		t.Helper()
		harness.WaitFor(t, time.Minute, fmt.Sprintf("configmap %s = %q", name, want), func() (bool, error) {
			out, err := holder.Kubectl("get", "configmap", name, "--ignore-not-found", "-o", "jsonpath={.data.v}")
			return err == nil && out == want, fmt.Errorf("%v: %q", err, out)
		})
	}

	write("user-app.yaml", manifestCM("user-a", "1")+"---\n"+manifestCM("user-b", "1"))
	waitValue("user-a", "1")
	waitValue("user-b", "1")
	if src := holder.MustKubectl("get", "addon", "user-app", "-o", "jsonpath={.spec.server} {.spec.source}"); src != on.Name+" "+filepath.Join(dir, "user-app.yaml") {
		t.Fatalf("addon source: %q", src)
	}

	// Edited: updated; an object gone from the file: deleted.
	write("user-app.yaml", manifestCM("user-a", "2"))
	waitValue("user-a", "2")
	waitValue("user-b", "")

	// A broken file is an Event on its Addon; a good file after it applies.
	write("broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: [not, a, map\n")
	write("later.yaml", manifestCM("user-later", "ok"))
	waitValue("user-later", "ok")
	harness.WaitFor(t, time.Minute, "the broken file is reported", func() (bool, error) {
		out, err := holder.Kubectl("get", "events", "-n", "default", "--field-selector", "involvedObject.kind=Addon,involvedObject.name=broken",
			"-o", "jsonpath={range .items[*]}{.reason}: {.message}{\"\\n\"}{end}")
		return strings.Contains(out, "ParseFailed") && strings.Contains(out, "broken.yaml"), fmt.Errorf("%v: %s", err, out)
	})
	if out := holder.MustKubectl("get", "addon", "broken", "-o", "jsonpath={.status.error}"); !strings.Contains(out, "does not parse") {
		t.Fatalf("broken addon status: %q", out)
	}
	if out := holder.MustKubectl("get", "addons"); !strings.Contains(out, "user-app") || !strings.Contains(out, "later") {
		t.Fatalf("kubectl get addons:\n%s", out)
	}
	// An object the apiserver refuses is reported the same way.
	write("refused.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Valid_Name\n")
	harness.WaitFor(t, time.Minute, "the refused object is reported", func() (bool, error) {
		out, err := holder.Kubectl("get", "addon", "refused", "-o", "jsonpath={.status.error}")
		return strings.Contains(out, "Not_A_Valid_Name"), fmt.Errorf("%v: %s", err, out)
	})
	for _, f := range []string{"user-app.yaml", "broken.yaml", "later.yaml", "refused.yaml"} {
		_ = os.Remove(filepath.Join(dir, f))
	}
}
