package etcd

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/embed"
	"sigs.k8s.io/yaml"

	"github.com/k3ha/k3ha/internal/layout"
)

// Ports of the embedded etcd, as K3s uses them.
const (
	clientPort  = 2379
	peerPort    = 2380
	metricsPort = 2381
	httpPort    = 2382
)

// Sections of etcd's config file that hold the TLS settings.
const (
	clientSecurity = "client-transport-security"
	peerSecurity   = "peer-transport-security"
)

// settings is etcd's config file as a tree of values that the YAML encoder
// types correctly: strings, bools, int64/uint64, []string, and one level of
// nested settings for the TLS sections.
type settings map[string]any

// valueKind says how an --etcd-arg value is typed in the file.
type valueKind int

const (
	kindString valueKind = iota
	kindBool
	kindInt
	kindUint
	kindDuration // written as nanoseconds: the file is decoded as JSON into time.Duration
	kindList     // comma-separated on the command line, a YAML list in the file
	kindURLs     // comma-separated URLs; checked here because etcd exits the process on a bad one
)

// fileKey is where a setting goes in the file and how its value is typed.
type fileKey struct {
	section string // "" for top level
	name    string
	kind    valueKind
}

// loggingKeys cannot work: etcd's records always go to k3ha's log.
var loggingKeys = map[string]bool{
	"logger": true, "log-level": true, "log-format": true, "log-outputs": true,
	"enable-log-rotation": true, "log-rotation-config-json": true,
}

// ownedKeys are k3ha's to decide: the member name is the node name (the
// join checks and member removal go by it) and the data must be where
// HasData looks for it.
var ownedKeys = map[string]string{"name": "--node-name", "data-dir": "--data-dir", "wal-dir": "--data-dir"}

// knownKeys maps every settable etcd flag name to its place in the file.
// The top-level keys come from embed.Config's own field tags, so the list
// follows the etcd version in go.mod.
var knownKeys = sync.OnceValue(func() map[string]fileKey {
	keys := map[string]fileKey{}
	durationType := reflect.TypeFor[time.Duration]()
	t := reflect.TypeFor[embed.Config]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		var k valueKind
		switch {
		case f.Type == durationType:
			k = kindDuration
		case f.Type.Kind() == reflect.String:
			k = kindString
		case f.Type.Kind() == reflect.Bool:
			k = kindBool
		case f.Type.Kind() >= reflect.Int && f.Type.Kind() <= reflect.Int64:
			k = kindInt
		case f.Type.Kind() >= reflect.Uint && f.Type.Kind() <= reflect.Uint64:
			k = kindUint
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.String:
			k = kindList
		default:
			continue // structures (discovery, gRPC options) have no flag form
		}
		keys[name] = fileKey{name: name, kind: k}
	}
	// Keys the file decodes outside embed.Config's tagged fields.
	for _, name := range []string{"listen-peer-urls", "listen-client-urls", "listen-client-http-urls",
		"initial-advertise-peer-urls", "advertise-client-urls", "listen-metrics-urls"} {
		keys[name] = fileKey{name: name, kind: kindURLs}
	}
	for _, name := range []string{"cors", "host-whitelist", "feature-gates"} {
		keys[name] = fileKey{name: name, kind: kindString}
	}
	// TLS flags live in the two security sections of the file.
	for flag, k := range map[string]fileKey{
		"cert-file":                         {clientSecurity, "cert-file", kindString},
		"key-file":                          {clientSecurity, "key-file", kindString},
		"client-cert-file":                  {clientSecurity, "client-cert-file", kindString},
		"client-key-file":                   {clientSecurity, "client-key-file", kindString},
		"client-cert-auth":                  {clientSecurity, "client-cert-auth", kindBool},
		"trusted-ca-file":                   {clientSecurity, "trusted-ca-file", kindString},
		"auto-tls":                          {clientSecurity, "auto-tls", kindBool},
		"client-cert-allowed-hostname":      {clientSecurity, "allowed-hostname", kindList},
		"peer-cert-file":                    {peerSecurity, "cert-file", kindString},
		"peer-key-file":                     {peerSecurity, "key-file", kindString},
		"peer-client-cert-file":             {peerSecurity, "client-cert-file", kindString},
		"peer-client-key-file":              {peerSecurity, "client-key-file", kindString},
		"peer-client-cert-auth":             {peerSecurity, "client-cert-auth", kindBool},
		"peer-trusted-ca-file":              {peerSecurity, "trusted-ca-file", kindString},
		"peer-auto-tls":                     {peerSecurity, "auto-tls", kindBool},
		"peer-cert-allowed-cn":              {peerSecurity, "allowed-cn", kindList},
		"peer-cert-allowed-hostname":        {peerSecurity, "allowed-hostname", kindList},
		"peer-skip-client-san-verification": {peerSecurity, "skip-client-san-verification", kindBool},
		"socket-reuse-port":                 {"socket-options", "reuse-port", kindBool},
		"socket-reuse-address":              {"socket-options", "reuse-address", kindBool},
	} {
		keys[flag] = k
	}
	for name := range loggingKeys {
		delete(keys, name)
	}
	return keys
})

// CheckArgs reports the first --etcd-arg that etcd would not accept,
// naming its key, so that a server can refuse bad settings before it
// changes anything.
func CheckArgs(args []string) error {
	_, err := parseArgs(args)
	return err
}

// parseArgs turns --etcd-arg key=value pairs into settings typed for the
// file. Keys may be given with or without leading dashes.
func parseArgs(args []string) (settings, error) {
	out := settings{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		k = strings.TrimLeft(strings.TrimSpace(k), "-")
		if !ok || k == "" {
			return nil, fmt.Errorf("--etcd-arg %q: want key=value", a)
		}
		if loggingKeys[k] {
			return nil, fmt.Errorf("--etcd-arg %s: etcd logs through k3ha's log and cannot be configured separately; use --debug to see etcd's info messages", k)
		}
		if flag, owned := ownedKeys[k]; owned {
			return nil, fmt.Errorf("--etcd-arg %s: k3ha sets it from %s", k, flag)
		}
		fk, known := knownKeys()[k]
		if !known {
			return nil, fmt.Errorf("--etcd-arg %s: not an etcd setting k3ha can pass on (use etcd's flag name, e.g. heartbeat-interval)", k)
		}
		val, err := typed(fk.kind, v)
		if err != nil {
			return nil, fmt.Errorf("--etcd-arg %s=%s: %w", k, v, err)
		}
		out.set(fk, val)
	}
	return out, nil
}

func typed(kind valueKind, v string) (any, error) {
	switch kind {
	case kindBool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, errors.New("want true or false")
		}
		return b, nil
	case kindInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, errors.New("want a whole number")
		}
		return n, nil
	case kindUint:
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, errors.New("want a non-negative whole number")
		}
		return n, nil
	case kindDuration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return nil, errors.New("want a duration such as 500ms or 5s")
		}
		return int64(d), nil
	case kindList:
		return splitList(v), nil
	case kindURLs:
		if _, err := types.NewURLs(strings.Split(v, ",")); err != nil {
			return nil, err
		}
		return v, nil
	default:
		return v, nil
	}
}

func (s settings) set(k fileKey, v any) {
	if k.section == "" {
		s[k.name] = v
		return
	}
	sec, _ := s[k.section].(settings)
	if sec == nil {
		sec = settings{}
		s[k.section] = sec
	}
	sec[k.name] = v
}

// merged returns s with over applied key by key, inside sections too.
func (s settings) merged(over settings) settings {
	out := make(settings, len(s))
	for k, v := range s {
		if sec, ok := v.(settings); ok {
			v = sec.merged(nil)
		}
		out[k] = v
	}
	for k, v := range over {
		osec, oIsSec := v.(settings)
		sec, isSec := out[k].(settings)
		if oIsSec && isSec {
			out[k] = sec.merged(osec)
			continue
		}
		out[k] = v
	}
	return out
}

// str is a top-level string setting, "" if absent.
func (s settings) str(key string) string {
	v, _ := s[key].(string)
	return v
}

// baseSettings is k3ha's own etcd configuration for this node, before the
// user's --etcd-arg values and the cluster bootstrap settings.
func baseSettings(cfg Config) settings {
	l := cfg.Layout
	ip := cfg.NodeIP.String()
	clientURLs := []string{httpsURL(ip, clientPort)}
	if !cfg.NodeIP.Equal(net.IPv4(127, 0, 0, 1)) {
		// k3ha's own clients and the apiserver always use loopback.
		clientURLs = append(clientURLs, httpsURL("127.0.0.1", clientPort))
	}
	s := settings{
		"name":                        cfg.Name,
		"data-dir":                    l.EtcdDir(),
		"listen-client-urls":          strings.Join(clientURLs, ","),
		"advertise-client-urls":       httpsURL(ip, clientPort),
		"listen-peer-urls":            httpsURL(ip, peerPort),
		"initial-advertise-peer-urls": httpsURL(ip, peerPort),
		"listen-metrics-urls":         "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(metricsPort)),
		// etcd's HTTP endpoints (health, version, the JSON gateway) on a
		// loopback port of their own leave the client port to gRPC alone, which
		// etcd then serves with gRPC's own transport instead of through Go's
		// HTTP/2 server: side by side, 9-12% more creates/s through the API.
		"listen-client-http-urls": httpsURL("127.0.0.1", httpPort),
		clientSecurity: settings{
			"cert-file":        l.Cert(layout.EtcdServer),
			"key-file":         l.Key(layout.EtcdServer),
			"trusted-ca-file":  l.Cert(layout.EtcdServerCA),
			"client-cert-auth": true,
		},
		peerSecurity: settings{
			"cert-file":        l.Cert(layout.EtcdPeer),
			"key-file":         l.Key(layout.EtcdPeer),
			"trusted-ca-file":  l.Cert(layout.EtcdPeerCA),
			"client-cert-auth": true,
		},
		// etcd's own defaults: a dead leader is replaced within one to two
		// seconds. Slow disks (SD cards) may need longer, via --etcd-arg.
		"heartbeat-interval":  int64(100),
		"election-timeout":    int64(1000),
		"snapshot-count":      int64(10000),
		"quota-backend-bytes": int64(2 << 30),
		// Refuse membership changes that would cost quorum.
		"strict-reconfig-check": true,
		"pre-vote":              true,
		// Loading this file builds a throw-away logger before k3ha installs
		// its own; this keeps that one off stderr.
		"log-outputs": []string{"/dev/null"},
	}
	if cfg.ForceNewCluster {
		s["force-new-cluster"] = true
	}
	return s
}

// render is the full config: k3ha's settings, the cluster bootstrap
// settings (if any), then the user's values, which win key by key.
func render(cfg Config, user settings, initialCluster, state string) settings {
	s := baseSettings(cfg)
	if initialCluster != "" {
		s["initial-cluster"] = initialCluster
	}
	if state != "" {
		s["initial-cluster-state"] = state
	}
	return s.merged(user)
}

const fileHeader = `# etcd configuration, written by k3ha at every start: edits are lost.
# Change settings with --etcd-arg key=value (etcd's flag names).
# etcd decodes this file as JSON: durations are in nanoseconds.
`

func (s settings) marshal() ([]byte, error) {
	b, err := yaml.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("render etcd config: %w", err)
	}
	return append([]byte(fileHeader), b...), nil
}

func httpsURL(host string, port int) string {
	return "https://" + net.JoinHostPort(host, strconv.Itoa(port))
}

// splitList splits a comma-separated setting, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
