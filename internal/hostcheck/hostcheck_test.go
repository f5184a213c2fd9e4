package hostcheck

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeRoot is a machine's /proc and /sys as files.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		data := []byte(content)
		if strings.HasSuffix(name, ".gz") {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(data)
			zw.Close()
			data = b.Bytes()
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func kernelConfig(missing ...string) string {
	var b strings.Builder
	for _, o := range requiredOptions {
		if !slices.Contains(missing, o) {
			b.WriteString("CONFIG_" + o + "=y\n")
		}
	}
	b.WriteString("CONFIG_VXLAN=m\n# CONFIG_WIREGUARD is not set\n")
	return b.String()
}

func goodMachine() map[string]string {
	return map[string]string{
		"/proc/self/cgroup":                            "9:name=systemd:/\n8:pids:/\n4:memory:/x\n3:cpuset:/\n1:cpu,cpuacct:/\n0::/\n",
		"/sys/fs/cgroup/unified/.keep":                 "",
		"/proc/config.gz":                              kernelConfig(),
		"/proc/filesystems":                            "nodev\tcgroup\nnodev\toverlay\n",
		"/proc/sys/net/bridge/bridge-nf-call-iptables": "1\n",
		"/proc/sys/net/ipv4/ip_forward":                "0\n",
	}
}

func host(root string) Host {
	return Host{Root: root, LookPath: func(string) error { return nil }, Listen: func(int) error { return nil }}
}

func byName(results []Result) map[string]Result {
	out := map[string]Result{}
	for _, r := range results {
		out[r.Name] = r
	}
	return out
}

func TestGoodMachinePasses(t *testing.T) {
	h := host(fakeRoot(t, goodMachine()))
	results := h.All()
	var b bytes.Buffer
	if fails := Print(&b, results); fails != 0 {
		t.Fatalf("%d fails:\n%s", fails, b.String())
	}
	r := byName(results)
	if c := r["cgroups"]; c.Status != Pass || !strings.Contains(c.Detail, "v1 (hybrid)") || !strings.Contains(c.Detail, "cpuacct cpuset memory pids") {
		t.Errorf("cgroups: %+v", c)
	}
	if o := r["optional options"]; o.Status != Warn || !strings.Contains(o.Detail, "WIREGUARD") || strings.Contains(o.Detail, "VXLAN") {
		t.Errorf("optional: %+v", o)
	}
	if !strings.Contains(b.String(), "STATUS: pass") {
		t.Errorf("output:\n%s", b.String())
	}
	if err := h.Fatal(); err != nil {
		t.Fatal(err)
	}
}

func TestFailures(t *testing.T) {
	files := goodMachine()
	files["/proc/self/cgroup"] = "8:pids:/\n3:cpuset:/\n1:cpu,cpuacct:/\n"
	files["/proc/config.gz"] = kernelConfig("VETH", "BRIDGE_NETFILTER")
	delete(files, "/proc/sys/net/bridge/bridge-nf-call-iptables")
	files["/proc/filesystems"] = "nodev\tcgroup\n"
	h := host(fakeRoot(t, files))
	h.LookPath = func(name string) error {
		if name == "iptables" {
			return errors.New("not found")
		}
		return nil
	}
	h.Listen = func(port int) error {
		if port == 6443 {
			return errors.New("address already in use")
		}
		return nil
	}
	r := byName(h.All())
	for name, want := range map[string]string{
		"iptables": "apt-get install iptables", "cgroups": "missing memory", "required options": "VETH BRIDGE_NETFILTER",
		"bridge netfilter": "br_netfilter", "overlay filesystem": "modprobe overlay", "port 6443 (API and supervisor)": "in use",
	} {
		if got := r[name]; got.Status != Fail || !strings.Contains(got.Detail+got.Fix, want) {
			t.Errorf("%s: %+v, want a failure mentioning %q", name, got, want)
		}
	}
	err := h.Fatal()
	if err == nil {
		t.Fatal("fatal checks passed")
	}
	for _, want := range []string{"iptables", "memory", "overlay"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("fatal error lacks %q: %v", want, err)
		}
	}
	var b bytes.Buffer
	if fails := Print(&b, h.All()); fails < 6 || !strings.Contains(b.String(), "STATUS: fail") {
		t.Errorf("%d fails:\n%s", fails, b.String())
	}
}

func TestCgroupV2AndNoKernelConfig(t *testing.T) {
	files := goodMachine()
	delete(files, "/proc/config.gz")
	files["/sys/fs/cgroup/cgroup.controllers"] = "cpuset cpu io memory pids\n"
	r := byName(host(fakeRoot(t, files)).All())
	if c := r["cgroups"]; c.Status != Pass || !strings.HasPrefix(c.Detail, "v2") {
		t.Errorf("cgroups: %+v", c)
	}
	if k := r["kernel config"]; k.Status != Warn {
		t.Errorf("kernel config: %+v", k)
	}
}

func TestDisk(t *testing.T) {
	h := host("")
	h.DataDir = filepath.Join(t.TempDir(), "not", "yet")
	h.Fsync = func(string) (float64, error) { return 0.025, nil }
	r := byName(h.Disk())
	if f := r["fsync latency"]; f.Status != Warn || !strings.Contains(f.Detail, "25.0 ms") {
		t.Errorf("fsync: %+v", f)
	}
	if fs := r["filesystem of "+h.DataDir]; fs.Detail == "" {
		t.Errorf("filesystem: %+v", fs)
	}
}
