//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// throwAwayRoot runs script as root in a mount and network namespace of its
// own, where /etc, /usr/local and /var/lib are overlays whose changes go to
// a temp dir: what an install writes there vanishes with the namespace.
func throwAwayRoot(t *testing.T, script string, env ...string) string {
	t.Helper()
	dir := t.TempDir()
	setup := `set -e
for d in /etc /usr/local /var/lib; do
  mkdir -p "$OVERLAYS$d/upper" "$OVERLAYS$d/work"
  mount -t overlay overlay -o "lowerdir=$d,upperdir=$OVERLAYS$d/upper,workdir=$OVERLAYS$d/work" "$d"
done
`
	cmd := exec.Command("unshare", "--mount", "--net", "--propagation", "private", "sh", "-c", setup+script)
	cmd.Env = append(os.Environ(), append([]string{"OVERLAYS=" + dir}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return string(out)
}

// TestInstallScript installs k3ha as a server service with install.sh, as
// README says, into a throw-away root, checks what it wrote, and uninstalls
// (which also removes the network policy table).
func TestInstallScript(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	installSh := filepath.Join(filepath.Dir(file), "..", "..", "install.sh")
	out := throwAwayRoot(t, `
cat "$INSTALL_SH" | sh -s - server --cluster-init --tls-san "k8s.example.com"
echo "== unit"; cat /etc/systemd/system/k3ha.service
echo "== env"; stat -c '%a %U' /etc/systemd/system/k3ha.service.env; cat /etc/systemd/system/k3ha.service.env
echo "== bin"; ls -l /usr/local/bin | grep -e k3ha -e crictl -e ctr
if command -v systemd-analyze >/dev/null; then echo "== verify"; systemd-analyze verify /etc/systemd/system/k3ha.service && echo verify-ok; fi
mkdir -p /var/lib/k3ha/server /etc/k3ha
nft add table ip k3ha-network-policy
/usr/local/bin/k3ha-uninstall.sh >/dev/null 2>&1
echo "== after uninstall"
nft list tables
ls /usr/local/bin/k3ha /usr/local/bin/crictl /usr/local/bin/ctr /usr/local/bin/k3ha-killall.sh /usr/local/bin/k3ha-uninstall.sh \
   /etc/systemd/system/k3ha.service /etc/systemd/system/k3ha.service.env /etc/k3ha /var/lib/k3ha 2>&1 | grep -v 'No such file' || true
echo "== end"
`, "INSTALL_SH="+installSh, "INSTALL_K3HA_BIN="+k3haBin, "INSTALL_K3HA_SKIP_ENABLE=true", "K3HA_TOKEN=s3cret-t0ken")
	section := func(name string) string {
		_, rest, _ := strings.Cut(out, "== "+name+"\n")
		body, _, _ := strings.Cut("\n"+rest, "\n== ")
		return strings.TrimPrefix(body, "\n")
	}
	unit := section("unit")
	for _, want := range []string{"Type=notify", "KillMode=process", "Delegate=yes", "EnvironmentFile=-/etc/systemd/system/k3ha.service.env",
		"ExecStart=/usr/local/bin/k3ha \\\n    server \\\n\t\"--cluster-init\" \\\n\t\"--tls-san\" \\\n\t\"k8s.example.com\""} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if env := section("env"); !strings.HasPrefix(env, "600 root") || !strings.Contains(env, `K3HA_TOKEN="s3cret-t0ken"`) {
		t.Errorf("environment file:\n%s", env)
	}
	if strings.Contains(unit, "s3cret") {
		t.Error("the token is in the unit file, which everyone can read")
	}
	bin := section("bin")
	for _, want := range []string{"k3ha-killall.sh", "k3ha-uninstall.sh", "crictl -> k3ha", "ctr -> k3ha"} {
		if !strings.Contains(bin, want) {
			t.Errorf("bin dir lacks %q:\n%s", want, bin)
		}
	}
	if strings.Contains(out, "== verify") && !strings.Contains(out, "verify-ok") {
		t.Errorf("systemd-analyze verify refused the unit:\n%s", section("verify"))
	}
	if left := strings.TrimSpace(section("after uninstall")); left != "" {
		t.Errorf("left after uninstall:\n%s", left)
	}
	t.Logf("install output:\n%s", out)
}

// An agent install: K3HA_URL picks the agent unit; without a token the
// script refuses and writes nothing.
func TestInstallScriptAgent(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	installSh := filepath.Join(filepath.Dir(file), "..", "..", "install.sh")
	out := throwAwayRoot(t, `
if sh "$INSTALL_SH" 2>"$OVERLAYS/err.txt"; then echo "== no token: installed"; else echo "== no token: refused"; cat "$OVERLAYS/err.txt"; fi
ls /etc/systemd/system/k3ha-agent.service 2>/dev/null && echo "== unit written without a token"
K3HA_TOKEN=t sh "$INSTALL_SH" --node-label role=edge >/dev/null
echo "== unit"; grep -A3 ExecStart /etc/systemd/system/k3ha-agent.service
echo "== end"
`, "INSTALL_SH="+installSh, "INSTALL_K3HA_BIN="+k3haBin, "INSTALL_K3HA_SKIP_ENABLE=true", "K3HA_URL=https://10.0.0.1:6443")
	if !strings.Contains(out, "== no token: refused") || !strings.Contains(out, "K3HA_TOKEN") || strings.Contains(out, "unit written without a token") {
		t.Fatalf("install without a token:\n%s", out)
	}
	if !strings.Contains(out, "ExecStart=/usr/local/bin/k3ha \\\n    agent \\\n\t\"--node-label\" \\\n\t\"role=edge\"") {
		t.Fatalf("agent unit:\n%s", out)
	}
}
