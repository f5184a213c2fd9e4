package registries

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadAndRender(t *testing.T) {
	dir := t.TempDir()
	ca := write(t, dir, "ca.crt", "x")
	path := write(t, dir, "registries.yaml", `
mirrors:
  docker.io:
    endpoint: ["https://mirror.example.com:5000", "registry.example.com/custom/path"]
  "*":
    endpoint: ["http://10.0.0.5:5000"]
configs:
  mirror.example.com:5000:
    auth: {username: alice, password: "s3cret"}
    tls: {ca_file: `+ca+`}
  private.example.com:
    tls: {insecure_skip_verify: true}
`)
	r, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	files := r.HostFiles()
	docker := files["docker.io"]
	for _, want := range []string{
		`server = "https://registry-1.docker.io"`,
		`[host."https://mirror.example.com:5000"]`,
		`ca = "` + ca + `"`,
		`[host."https://registry.example.com/custom/path"]`,
		"override_path = true",
	} {
		if !strings.Contains(docker, want) {
			t.Errorf("docker.io hosts.toml lacks %q:\n%s", want, docker)
		}
	}
	if strings.Index(docker, "mirror.example.com") > strings.Index(docker, "registry.example.com/custom") {
		t.Error("endpoints out of order")
	}
	if d := files["_default"]; strings.Contains(d, "server =") || !strings.Contains(d, `[host."http://10.0.0.5:5000"]`) {
		t.Errorf("wildcard:\n%s", d)
	}
	if p := files["private.example.com"]; !strings.Contains(p, `server = "https://private.example.com"`) || !strings.Contains(p, "skip_verify = true") {
		t.Errorf("TLS-only host:\n%s", p)
	}
	if a := r.Auths(); len(a) != 1 || a["mirror.example.com:5000"].Password != "s3cret" {
		t.Errorf("auths %v", a)
	}

	// Written, then replaced; an admin's own dir is left alone.
	hosts := filepath.Join(dir, "certs.d")
	if err := os.MkdirAll(filepath.Join(hosts, "mine.example.com"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(hosts, "mine.example.com"), "hosts.toml", "server = \"https://mine\"\n")
	if err := r.WriteHosts(hosts); err != nil {
		t.Fatal(err)
	}
	if err := (&Registries{}).WriteHosts(hosts); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(hosts)
	if len(entries) != 1 || entries[0].Name() != "mine.example.com" {
		t.Fatalf("left in certs.d: %v", entries)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	for content, want := range map[string]string{
		"mirrors:\n  docker.io:\n    endpoints: [x]\n":                        `unknown key "endpoints"`,
		"mirrors:\n  docker.io:\n    endpoint: [\"ftp://x\"]\n":               `mirrors."docker.io".endpoint[0]`,
		"configs:\n  h:\n    tls: {ca_file: /no/such/ca.crt}\n":               `configs."h".tls.ca_file`,
		"configs:\n  https://h:\n    auth: {username: u}\n":                   "without a scheme",
		"configs:\n  h:\n    tls: {cert_file: " + dir + "/registries.yaml}\n": "go together",
	} {
		path := write(t, dir, "registries.yaml", content)
		if _, err := Load(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", content, err, want)
		}
	}
	if r, err := Load(filepath.Join(dir, "absent.yaml")); err != nil || len(r.HostFiles()) != 0 {
		t.Fatalf("missing file: %v %v", r, err)
	}
}
