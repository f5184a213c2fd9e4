package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func newFlags(t *testing.T) (*Server, *pflag.FlagSet) {
	t.Helper()
	s := &Server{}
	fs := pflag.NewFlagSet("server", pflag.ContinueOnError)
	s.AddFlags(fs)
	return s, fs
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func env(vars map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
}

func TestPrecedence(t *testing.T) {
	file := writeFile(t, "token: from-file\nnode-name: file-node\ncluster-domain: file.local\ntls-san: [a.example, 10.0.0.9]\nhttps-listen-port: 7443\ncluster-init: true\n")
	cases := []struct {
		name      string
		args      []string
		vars      map[string]string
		wantToken string
		wantNode  string
	}{
		{"file over default", nil, nil, "from-file", "file-node"},
		{"env over file", nil, map[string]string{"K3HA_TOKEN": "from-env"}, "from-env", "file-node"},
		{"K3HA over K3S", nil, map[string]string{"K3HA_TOKEN": "ha", "K3S_TOKEN": "s"}, "ha", "file-node"},
		{"K3S accepted", nil, map[string]string{"K3S_TOKEN": "s"}, "s", "file-node"},
		{"flag over env", []string{"--token", "from-flag", "--node-name", "flag-node"}, map[string]string{"K3HA_TOKEN": "from-env", "K3HA_NODE_NAME": "env-node"}, "from-flag", "flag-node"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, fs := newFlags(t)
			if err := fs.Parse(append([]string{"--config", file}, c.args...)); err != nil {
				t.Fatal(err)
			}
			if err := (Sources{Env: ServerEnv, LookupEnv: env(c.vars)}).Apply(fs); err != nil {
				t.Fatal(err)
			}
			if s.Token != c.wantToken || s.NodeName != c.wantNode {
				t.Fatalf("token=%q node=%q, want %q %q", s.Token, s.NodeName, c.wantToken, c.wantNode)
			}
			if s.ClusterDomain != "file.local" || s.HTTPSPort != 7443 || !s.ClusterInit {
				t.Fatalf("file values not applied: %+v", s)
			}
			if strings.Join(s.TLSSANs, ",") != "a.example,10.0.0.9" {
				t.Fatalf("tls-san = %v", s.TLSSANs)
			}
			if s.ClusterCIDR != DefaultClusterCIDR {
				t.Fatalf("default lost: %s", s.ClusterCIDR)
			}
		})
	}
}

func TestDefaultFileIsRead(t *testing.T) {
	s, fs := newFlags(t)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	src := Sources{Env: ServerEnv, LookupEnv: env(nil), DefaultFile: writeFile(t, "node-name: from-default\n")}
	if err := src.Apply(fs); err != nil {
		t.Fatal(err)
	}
	if s.NodeName != "from-default" {
		t.Fatalf("node-name = %q", s.NodeName)
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	file := writeFile(t, "node-name: via-env-file\n")
	s, fs := newFlags(t)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := (Sources{Env: ServerEnv, LookupEnv: env(map[string]string{"K3S_CONFIG_FILE": file})}).Apply(fs); err != nil {
		t.Fatal(err)
	}
	if s.NodeName != "via-env-file" {
		t.Fatalf("node-name = %q", s.NodeName)
	}
}

func TestConfigFileErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	unreadable := writeFile(t, "token: x\n")
	if err := os.Chmod(unreadable, 0); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, file, want string
	}{
		{"unknown key", writeFile(t, "tokn: x\n"), `unknown key "tokn"`},
		{"config key", writeFile(t, "config: /x\n"), `unknown key "config"`},
		{"not a map", writeFile(t, "- a\n- b\n"), "not a YAML map"},
		{"list for scalar", writeFile(t, "node-name: [a, b]\n"), "takes a single value"},
		{"bad bool", writeFile(t, "cluster-init: maybe\n"), `key "cluster-init"`},
		{"explicit missing", missing, "no such file"},
	}
	if os.Geteuid() != 0 { // root reads any file
		cases = append(cases, struct{ name, file, want string }{"unreadable", unreadable, "permission denied"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, fs := newFlags(t)
			if err := fs.Parse([]string{"--config", c.file}); err != nil {
				t.Fatal(err)
			}
			err := (Sources{Env: ServerEnv, LookupEnv: env(nil)}).Apply(fs)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to mention %q", err, c.want)
			}
		})
	}
}

func TestUnreadableConfigIsDirectory(t *testing.T) {
	// Root can read any file, so a directory stands in for an unreadable file.
	_, fs := newFlags(t)
	dir := t.TempDir()
	if err := fs.Parse([]string{"--config", dir}); err != nil {
		t.Fatal(err)
	}
	err := (Sources{Env: ServerEnv, LookupEnv: env(nil)}).Apply(fs)
	if err == nil || !strings.Contains(err.Error(), "config file") {
		t.Fatalf("err = %v", err)
	}
}

func TestMissingDefaultFileIsFine(t *testing.T) {
	_, fs := newFlags(t)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	src := Sources{Env: ServerEnv, LookupEnv: env(nil), DefaultFile: filepath.Join(t.TempDir(), "absent.yaml")}
	if err := src.Apply(fs); err != nil {
		t.Fatal(err)
	}
}

// --cluster-dns defaults to the 10th address of --service-cidr, as in K3s.
func TestClusterDNSDefault(t *testing.T) {
	for cidr, want := range map[string]string{"10.43.0.0/16": "10.43.0.10", "10.99.0.0/16": "10.99.0.10", "172.16.8.0/22": "172.16.8.10"} {
		s, fs := newFlags(t)
		if err := fs.Parse([]string{"--service-cidr", cidr}); err != nil {
			t.Fatal(err)
		}
		if err := s.Validate(); err != nil {
			t.Fatal(err)
		}
		if s.ClusterDNS != want {
			t.Errorf("--service-cidr %s: cluster DNS %s, want %s", cidr, s.ClusterDNS, want)
		}
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{nil, nil},
		{[]string{"--https-listen-port", "70000"}, []string{"--https-listen-port"}},
		{[]string{"--cluster-cidr", "10.42.0.0/33"}, []string{"--cluster-cidr", "CIDR"}},
		{[]string{"--cluster-cidr", "10.42.0.1/16"}, []string{"host bits", "10.42.0.0/16"}},
		{[]string{"--service-cidr", "10.42.0.0/24"}, []string{"overlaps"}},
		{[]string{"--service-cidr", "10.99.0.0/16", "--cluster-dns", "10.43.0.10"}, []string{"--cluster-dns", "outside"}},
		{[]string{"--cluster-dns", "10.99.0.10"}, []string{"--cluster-dns", "outside"}},
		{[]string{"--node-ip", "10.0.0"}, []string{"--node-ip"}},
		{[]string{"--advertise-address", "127.0.0.1"}, []string{"loopback"}},
		{[]string{"--node-name", "Bad_Name"}, []string{"--node-name"}},
		{[]string{"--server", "http://x:6443", "--token", "t"}, []string{"--server", "https"}},
		{[]string{"--server", "https://x:6443"}, []string{"--server", "needs the cluster's token"}},
		{[]string{"--cluster-init", "--datastore-endpoint", "postgres://x"}, []string{"--cluster-init", "--datastore-endpoint"}},
		{[]string{"--disable", "traefik,bogus"}, []string{`unknown component "bogus"`}},
		{[]string{"--write-kubeconfig-mode", "0999"}, []string{"--write-kubeconfig-mode"}},
		{[]string{"--token", "a", "--token-file", "b"}, []string{"--token-file"}},
		{[]string{"--kube-apiserver-arg", "novalue"}, []string{"key=value"}},
		{[]string{"--cluster-reset-restore-path", "/x"}, []string{"--cluster-reset"}},
		{[]string{"--cluster-domain", "a..b"}, []string{"--cluster-domain"}},
		{[]string{"--flannel-backend", "host-gw"}, nil},
		{[]string{"--flannel-backend", "wireguard"}, []string{"--flannel-backend", "no longer supported", "wireguard-native"}},
		{[]string{"--flannel-backend", "udp"}, []string{"--flannel-backend", `"udp" is unknown`, "vxlan, host-gw"}},
		{[]string{"--node-external-ip", "203.0.113.5", "--flannel-external-ip"}, nil},
		{[]string{"--node-external-ip", "203.0.113"}, []string{"--node-external-ip", "not an IPv4 address"}},
		{[]string{"--node-external-ip", "fd00::5"}, []string{"--node-external-ip", "not an IPv4 address"}},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			s, fs := newFlags(t)
			if err := fs.Parse(c.args); err != nil {
				t.Fatal(err)
			}
			err := s.Validate()
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %v", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestKubeconfigMode(t *testing.T) {
	s := &Server{WriteKubeconfigMode: "0644"}
	if s.KubeconfigMode() != 0o644 {
		t.Fatalf("mode %o", s.KubeconfigMode())
	}
}

func TestCriticalDiff(t *testing.T) {
	a := (&Server{ClusterCIDR: "10.42.0.0/16", ServiceCIDR: "10.43.0.0/16", ClusterDNS: "10.43.0.10", ClusterDomain: "cluster.local", Disable: []string{"traefik", "coredns", "traefik"}}).Critical()
	b := a
	b.Disable = []string{"coredns", "traefik"}
	if d := a.Diff(b); len(d) != 0 {
		t.Fatalf("same settings differ: %v", d)
	}
	b.ClusterCIDR, b.SecretsEncryption, b.Disable, b.FlannelExternalIP, b.DisableNetworkPolicy = "10.50.0.0/16", true, nil, true, true
	d := a.Diff(b)
	want := []string{
		`--cluster-cidr: this server has "10.42.0.0/16", the cluster has "10.50.0.0/16"`,
		`--disable: this server has "coredns,traefik", the cluster has ""`,
		`--disable-network-policy: this server has "false", the cluster has "true"`,
		`--secrets-encryption: this server has "false", the cluster has "true"`,
		`--flannel-external-ip: this server has "false", the cluster has "true"`,
	}
	if strings.Join(d, "\n") != strings.Join(want, "\n") {
		t.Fatalf("diff:\n%s\nwant:\n%s", strings.Join(d, "\n"), strings.Join(want, "\n"))
	}
}

// The flannel backend is cluster-wide; a cluster recorded before the flag
// existed ran the default.
func TestCriticalFlannelBackend(t *testing.T) {
	mine := (&Server{FlannelBackend: FlannelHostGW}).Critical()
	old := Critical{}
	if d := mine.Diff(old); len(d) != 1 || d[0] != `--flannel-backend: this server has "host-gw", the cluster has "vxlan"` {
		t.Fatalf("diff %v", d)
	}
	if d := (&Server{FlannelBackend: FlannelVXLAN}).Critical().Diff(old); len(d) != 0 {
		t.Fatalf("the default differs from a cluster without the setting: %v", d)
	}
}
