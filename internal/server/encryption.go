package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/k3ha/k3ha/internal/bootstrap"
	"github.com/k3ha/k3ha/internal/datastore"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/pki"
)

// EncryptionRequest is what `k3ha secrets-encrypt` asks for: status,
// rotate-keys or reencrypt.
type EncryptionRequest struct {
	Operation string `json:"operation"`
}

// EncryptionStatus is the answer.
type EncryptionStatus struct {
	Enabled     bool              `json:"enabled"`
	ActiveKey   string            `json:"activeKey,omitempty"`
	Keys        []string          `json:"keys,omitempty"`
	Hash        string            `json:"hash,omitempty"`
	Servers     map[string]string `json:"servers,omitempty"` // apiserver address → the config hash it runs with
	HashesMatch bool              `json:"hashesMatch"`
	Reencrypted int               `json:"reencrypted,omitempty"`
}

// encryption rotates the Secrets' encryption key of every server.
type encryption struct {
	layout   layout.Server
	client   kubernetes.Interface
	endpoint datastore.Endpoint
	tokens   *liveTokens
	port     int
}

// keyName is a new key's name: a time, without the colons of RFC 3339, so
// that the raw value's prefix k8s:enc:aescbc:v1:<name>: stays readable.
func keyName(t time.Time) string { return "k3ha-key-" + strconv.FormatInt(t.Unix(), 10) }

func (e *encryption) handle(ctx context.Context, req EncryptionRequest) (EncryptionStatus, error) {
	if _, err := os.Stat(e.layout.EncryptionConfig()); err != nil {
		if req.Operation == "status" {
			return EncryptionStatus{HashesMatch: true}, nil
		}
		return EncryptionStatus{}, errors.New("secrets encryption is off on this cluster (start every server with --secrets-encryption)")
	}
	switch req.Operation {
	case "status":
		return e.status(ctx)
	case "rotate-keys":
		return e.rotateKeys(ctx)
	case "reencrypt":
		n, err := e.reencrypt(ctx)
		if err != nil {
			return EncryptionStatus{}, err
		}
		st, err := e.status(ctx)
		st.Reencrypted = n
		return st, err
	}
	return EncryptionStatus{}, fmt.Errorf("unknown secrets-encrypt operation %q (status, rotate-keys, reencrypt)", req.Operation)
}

func (e *encryption) read() ([]byte, *apiserverv1.EncryptionConfiguration, error) {
	data, err := os.ReadFile(e.layout.EncryptionConfig())
	if err != nil {
		return nil, nil, err
	}
	var cfg apiserverv1.EncryptionConfiguration
	if err := json.Unmarshal(data, &cfg); err != nil {
		return nil, nil, fmt.Errorf("encryption config: %w", err)
	}
	if len(cfg.Resources) == 0 || len(cfg.Resources[0].Providers) == 0 || cfg.Resources[0].Providers[0].AESCBC == nil {
		return nil, nil, errors.New("encryption config: not k3ha's (aescbc first for secrets)")
	}
	return data, &cfg, nil
}

func configHash(data []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(data)) }

func (e *encryption) status(ctx context.Context) (EncryptionStatus, error) {
	data, cfg, err := e.read()
	if err != nil {
		return EncryptionStatus{}, err
	}
	st := EncryptionStatus{Enabled: true, Hash: configHash(data)}
	for _, k := range cfg.Resources[0].Providers[0].AESCBC.Keys {
		st.Keys = append(st.Keys, k.Name)
	}
	st.ActiveKey = st.Keys[0]
	if st.Servers, err = e.loaded(ctx); err != nil {
		return st, err
	}
	st.HashesMatch = true
	for _, h := range st.Servers {
		// "initial": not reloaded since its start, when it read the file
		// every server then had; only a reported hash can differ.
		st.HashesMatch = st.HashesMatch && (h == st.Hash || h == "initial")
	}
	return st, nil
}

// rotateKeys replaces the key on every server without a moment where a
// server could not read a Secret: the new key is added last (every server
// can decrypt with it), then made first (every server encrypts with it),
// then every Secret is rewritten, and only then is the old key dropped.
func (e *encryption) rotateKeys(ctx context.Context) (EncryptionStatus, error) {
	_, cfg, err := e.read()
	if err != nil {
		return EncryptionStatus{}, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return EncryptionStatus{}, err
	}
	keys := &cfg.Resources[0].Providers[0].AESCBC.Keys
	old := append([]apiserverv1.Key(nil), (*keys)...)
	fresh := apiserverv1.Key{Name: keyName(time.Now()), Secret: base64.StdEncoding.EncodeToString(secret)}
	for _, step := range []struct {
		what string
		keys []apiserverv1.Key
	}{
		{"add the new key", append(append([]apiserverv1.Key(nil), old...), fresh)},
		{"encrypt with the new key", append([]apiserverv1.Key{fresh}, old...)},
	} {
		*keys = step.keys
		if err := e.publish(ctx, cfg); err != nil {
			return EncryptionStatus{}, fmt.Errorf("rotate-keys: %s: %w", step.what, err)
		}
		slog.Info("secrets encryption: every server has the new config", "step", step.what, "key", fresh.Name)
	}
	n, err := e.reencrypt(ctx)
	if err != nil {
		return EncryptionStatus{}, fmt.Errorf("rotate-keys: the old key is kept until every Secret is rewritten: %w", err)
	}
	*keys = []apiserverv1.Key{fresh}
	if err := e.publish(ctx, cfg); err != nil {
		return EncryptionStatus{}, fmt.Errorf("rotate-keys: drop the old key: %w", err)
	}
	slog.Info("secrets encryption key rotated", "key", fresh.Name, "reencrypted", n)
	st, err := e.status(ctx)
	st.Reencrypted = n
	return st, err
}

// publish writes the config here and into the cluster's bootstrap data
// (the other servers take it from there), then waits until every
// apiserver runs with it.
func (e *encryption) publish(ctx context.Context, cfg *apiserverv1.EncryptionConfiguration) error {
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	err = withKV(e.endpoint, func(kv clientv3.KV) error {
		for attempt := 0; attempt < 5; attempt++ {
			blob, rev, _, err := bootstrap.LoadRev(ctx, kv)
			if err != nil {
				return err
			}
			bd, err := bootstrap.Open(blob, e.tokens.get().server.Password)
			if err != nil {
				return err
			}
			bd.Files[relTo(e.layout, e.layout.EncryptionConfig())] = data
			sealed, err := bootstrap.Seal(bd, e.tokens.get().server.Password)
			if err != nil {
				return err
			}
			if ok, err := bootstrap.Replace(ctx, kv, rev, sealed, nil); err != nil || ok {
				return err
			}
		}
		return errors.New("the bootstrap data keeps changing; try again")
	})
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(e.layout.EncryptionConfig(), data, 0o600); err != nil {
		return err
	}
	want := configHash(data)
	var last map[string]string
	err = wait.PollUntilContextTimeout(ctx, time.Second, 3*time.Minute, true, func(ctx context.Context) (bool, error) {
		loaded, err := e.loaded(ctx)
		if err != nil {
			return false, nil
		}
		last = loaded
		for _, h := range loaded {
			if h != want {
				return false, nil
			}
		}
		return len(loaded) > 0, nil
	})
	if err != nil {
		return fmt.Errorf("not every apiserver took the new encryption config (they run with %v, want %s): %w", last, want, err)
	}
	return nil
}

// loaded asks every apiserver which encryption config it runs with (the
// hash its reloads report in its metrics).
func (e *encryption) loaded(ctx context.Context) (map[string]string, error) {
	addrs, err := apiserverAddrs(ctx, e.client)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(e.layout.Cert(layout.AdminClient), e.layout.Key(layout.AdminClient))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(e.layout.Cert(layout.ServerCA))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}}}
	out := map[string]string{}
	for _, addr := range addrs {
		resp, err := hc.Get("https://" + addr + "/metrics")
		if err != nil {
			return nil, err
		}
		body := &bytes.Buffer{}
		_, err = body.ReadFrom(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		out[addr] = lastConfigHash(body.Bytes())
	}
	return out, nil
}

// lastConfigHash reads apiserver_encryption_config_controller_last_config_info's
// hash label; "initial" when the apiserver has not reloaded since it started.
func lastConfigHash(metrics []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(metrics))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_encryption_config_controller_last_config_info{") {
			continue
		}
		if m := hashLabel.FindStringSubmatch(line); m != nil {
			return m[1]
		}
	}
	return "initial"
}

var hashLabel = regexp.MustCompile(`[{,]hash="([^"]+)"`)

// apiserverAddrs are every server's API address, from the kubernetes
// Service's endpoints.
func apiserverAddrs(ctx context.Context, c kubernetes.Interface) ([]string, error) {
	slices, err := c.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=kubernetes"})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, sl := range slices.Items {
		for _, p := range sl.Ports {
			for _, ep := range sl.Endpoints {
				for _, a := range ep.Addresses {
					if p.Port != nil {
						out = append(out, net.JoinHostPort(a, strconv.Itoa(int(*p.Port))))
					}
				}
			}
		}
	}
	return out, nil
}

// reencrypt rewrites every Secret: the apiserver stores each with the
// current first key (an unchanged Secret read with another key is written
// anyway).
func (e *encryption) reencrypt(ctx context.Context) (int, error) {
	n := 0
	opts := metav1.ListOptions{Limit: 100}
	for {
		list, err := e.client.CoreV1().Secrets("").List(ctx, opts)
		if err != nil {
			return n, err
		}
		for i := range list.Items {
			sec := &list.Items[i]
			for attempt := 0; ; attempt++ {
				_, err := e.client.CoreV1().Secrets(sec.Namespace).Update(ctx, sec, metav1.UpdateOptions{})
				if err == nil || apierrors.IsNotFound(err) {
					break
				}
				if !apierrors.IsConflict(err) || attempt == 5 {
					return n, fmt.Errorf("rewrite Secret %s/%s: %w", sec.Namespace, sec.Name, err)
				}
				if sec, err = e.client.CoreV1().Secrets(sec.Namespace).Get(ctx, sec.Name, metav1.GetOptions{}); err != nil {
					if apierrors.IsNotFound(err) {
						break
					}
					return n, err
				}
			}
			n++
		}
		if list.Continue == "" {
			break
		}
		opts.Continue = list.Continue
	}
	slog.Info("secrets re-encrypted with the current key", "secrets", n)
	return n, nil
}
