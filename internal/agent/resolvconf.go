package agent

import (
	"bufio"
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/k3ha/k3ha/internal/pki"
)

// hostResolvConfs are tried in order when --resolv-conf is not given.
var hostResolvConfs = []string{"/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"}

// fallbackResolvConf is written when no host file is usable.
const fallbackResolvConf = "nameserver 8.8.8.8\nnameserver 2001:4860:4860::8888\n"

// resolvConf is the file the kubelet gives pods with dnsPolicy Default, the
// cluster DNS among them, as their upstream resolvers: --resolv-conf as
// given, else the first host file whose every nameserver can be reached
// from a pod (a loopback resolver such as systemd-resolved's 127.0.0.53
// cannot), else a file of public resolvers written under dir.
func resolvConf(flag, dir string) (string, error) {
	if flag != "" {
		if _, err := os.Stat(flag); err != nil {
			return "", fmt.Errorf("--resolv-conf: %w", err)
		}
		return flag, nil
	}
	for _, path := range hostResolvConfs {
		data, err := os.ReadFile(path)
		if err == nil && usableFromPods(data) {
			return path, nil
		}
	}
	path := filepath.Join(dir, "resolv.conf")
	slog.Warn("no usable host resolv.conf (nameservers missing or on loopback); pods and the cluster DNS use public resolvers; give --resolv-conf to choose",
		"file", path, "tried", strings.Join(hostResolvConfs, ","))
	if err := pki.WriteFileAtomic(path, []byte(fallbackResolvConf), 0o644); err != nil {
		return "", fmt.Errorf("resolv.conf: %w", err)
	}
	return path, nil
}

// usableFromPods tells whether a resolv.conf names at least one nameserver
// and all of them are unicast addresses a pod can reach.
func usableFromPods(data []byte) bool {
	found := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		ip, err := netip.ParseAddr(f[1])
		if err != nil || !ip.IsGlobalUnicast() {
			return false
		}
		found = true
	}
	return found
}
