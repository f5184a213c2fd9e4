package agent

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUsableFromPods(t *testing.T) {
	for conf, want := range map[string]bool{
		"nameserver 10.255.255.53\n":                               true,
		"search x\nnameserver 192.0.2.1\nnameserver 2001:db8::1\n": true,
		"nameserver 127.0.0.53\n":                                  false,
		"nameserver 192.0.2.1\nnameserver 127.0.0.1\n":             false,
		"nameserver fe80::1\n":                                     false,
		"# nothing\n":                                              false,
		"nameserver not-an-ip\n":                                   false,
	} {
		if got := usableFromPods([]byte(conf)); got != want {
			t.Errorf("%q: got %v, want %v", conf, got, want)
		}
	}
}

func TestResolvConf(t *testing.T) {
	dir := t.TempDir()
	given := filepath.Join(dir, "given.conf")
	if err := os.WriteFile(given, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// --resolv-conf is used as given.
	if got, err := resolvConf(given, dir); err != nil || got != given {
		t.Fatalf("got %q %v", got, err)
	}
	if _, err := resolvConf(filepath.Join(dir, "missing"), dir); err == nil {
		t.Fatal("a missing --resolv-conf was accepted")
	}
	// No usable host file: public resolvers, written under dir.
	saved := hostResolvConfs
	defer func() { hostResolvConfs = saved }()
	hostResolvConfs = []string{given, filepath.Join(dir, "absent")}
	got, err := resolvConf("", dir)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(got); string(data) != fallbackResolvConf || filepath.Dir(got) != dir {
		t.Fatalf("fallback %s: %q", got, data)
	}
}
