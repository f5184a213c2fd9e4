//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

const haToken = "e2e-ha-secret"

// startHA starts n servers: the first with --cluster-init, the others
// joining it, each waiting for the previous one.
func startHA(t *testing.T, net *harness.Network, n int, extra ...string) []*cluster.Server {
	t.Helper()
	var servers []*cluster.Server
	for i := 0; i < n; i++ {
		args := append([]string{"--disable-agent"}, extra...)
		if i == 0 {
			args = append(args, "--cluster-init")
		} else {
			args = append(args, "--server", servers[0].URL())
		}
		s := newServer(t, net.AddHost(t, fmt.Sprintf("s%d", i+1)), args...)
		s.Env = []string{"K3HA_TOKEN=" + haToken}
		s.Start()
		s.WaitReady()
		servers = append(servers, s)
	}
	return servers
}

func putConfigMap(t *testing.T, s *cluster.Server, name, value string) error {
	_, err := s.Client().CoreV1().ConfigMaps("default").Create(context.Background(),
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"v": value}}, metav1.CreateOptions{})
	return err
}

func getConfigMap(t *testing.T, s *cluster.Server, name string) (string, error) {
	cm, err := s.Client().CoreV1().ConfigMaps("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return cm.Data["v"], nil
}

// waitConfigMap waits until s serves the ConfigMap with value.
func waitConfigMap(t *testing.T, s *cluster.Server, name, value string) {
	t.Helper()
	harness.WaitFor(t, time.Minute, fmt.Sprintf("%s serves configmap %s=%s", s.Name, name, value), func() (bool, error) {
		got, err := getConfigMap(t, s, name)
		return err == nil && got == value, err
	})
}

// writeOutage measures how long after since a fresh write through s
// succeeds. Writes start every 200 ms, each on its own: a request that was
// in flight when the leader died waits for etcd's request timeout, which is
// not what a client retrying sees.
func writeOutage(t *testing.T, s *cluster.Server, name string, since time.Time) (time.Duration, string) {
	t.Helper()
	type result struct {
		took time.Duration
		name string
	}
	done := make(chan result, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs := s.Client()
	var lastErr atomic.Value
	for i := 0; ; i++ {
		go func(i int) {
			obj := fmt.Sprintf("%s-%d", name, i)
			_, err := cs.CoreV1().ConfigMaps("default").Create(ctx,
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: obj}}, metav1.CreateOptions{})
			if err != nil {
				lastErr.Store(err.Error())
				return
			}
			select {
			case done <- result{time.Since(since), obj}:
			default:
			}
		}(i)
		select {
		case r := <-done:
			return r.took, r.name
		case <-ctx.Done():
			t.Fatalf("no write through %s succeeded within a minute; last error: %v", s.Name, lastErr.Load())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// etcdLeader waits until one of servers reports that it holds the etcd
// leadership, and returns it.
func etcdLeader(t *testing.T, servers []*cluster.Server) *cluster.Server {
	t.Helper()
	var leader *cluster.Server
	harness.WaitFor(t, time.Minute, "an etcd leader", func() (bool, error) {
		for _, s := range servers {
			if ok, err := s.IsEtcdLeader(); err == nil && ok {
				leader = s
				return true, nil
			}
		}
		return false, nil
	})
	return leader
}

func memberNames(t *testing.T, s *cluster.Server) []string {
	t.Helper()
	ms, err := s.Members()
	if err != nil {
		t.Fatalf("members through %s: %v", s.Name, err)
	}
	var names []string
	for _, m := range ms {
		names = append(names, fmt.Sprintf("%s learner=%v", m.Name, m.IsLearner))
	}
	return names
}

// TestHACluster builds three servers on embedded etcd and puts them through
// what users do to them: writes anywhere, refused joins, a killed leader,
// restarts while another server is down, restarts with stray flags.
func TestHACluster(t *testing.T) {
	n := harness.NewNetwork(t)
	servers := startHA(t, n, 3)
	s1, s2, s3 := servers[0], servers[1], servers[2]

	t.Run("fault tolerance is reported", func(t *testing.T) {
		s2.WaitLog(t, time.Minute, "an even count")
		s3.WaitLog(t, time.Minute, "tolerated_failures=1")
	})

	t.Run("members", func(t *testing.T) {
		want := []string{"s1 learner=false", "s2 learner=false", "s3 learner=false"}
		for _, s := range servers {
			if got := memberNames(t, s); !reflect.DeepEqual(got, want) {
				t.Fatalf("members through %s: %v, want %v", s.Name, got, want)
			}
		}
	})

	t.Run("etcd ports", func(t *testing.T) { testEtcdPorts(t, s1) })

	t.Run("manifests dropped on one server", func(t *testing.T) { testManifests(t, servers) })

	t.Run("supervisor paths", func(t *testing.T) {
		get := func(path, user, pass string) (int, string) {
			req, _ := http.NewRequest("GET", s2.URL()+path, nil)
			if user != "" {
				req.SetBasicAuth(user, pass)
			}
			resp, err := s2.VerifiedClient().Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if code, _ := get("/v1-k3ha/server-bootstrap", "node", haToken); code != 403 {
			t.Errorf("bootstrap with the agent token: %d, want 403", code)
		}
		if code, _ := get("/v1-k3ha/server-bootstrap", "server", "wrong"); code != 401 {
			t.Errorf("bootstrap with a wrong secret: %d, want 401", code)
		}
		if code, body := get("/v1-k3ha/server-bootstrap", "server", haToken); code != 200 || !strings.Contains(body, "server-ca.key") {
			t.Errorf("bootstrap with the server token: %d", code)
		}
		harness.WaitFor(t, time.Minute, "three apiservers listed", func() (bool, error) {
			code, body := get("/v1-k3ha/apiservers", "node", haToken)
			var list []string
			_ = json.Unmarshal([]byte(body), &list)
			return code == 200 && len(list) == 3, fmt.Errorf("%d %s", code, body)
		})
		if code, body := get("/db/info", "node", haToken); code != 403 {
			t.Errorf("/db/info with the agent token: %d %s", code, body)
		}
		metrics := s2.MustKubectl("get", "--raw", "/metrics")
		if !strings.Contains(metrics, "k3ha_etcd_disk_fsync_p99_seconds") {
			t.Errorf("/metrics lacks the fsync gauge")
		}
	})

	t.Run("write anywhere, read everywhere", func(t *testing.T) {
		for _, w := range servers {
			if err := putConfigMap(t, w, "from-"+w.Name, w.Name); err != nil {
				t.Fatalf("write through %s: %v", w.Name, err)
			}
		}
		for _, r := range servers {
			for _, w := range servers {
				waitConfigMap(t, r, "from-"+w.Name, w.Name)
			}
		}
		if out := s2.MustKubectl("get", "configmap", "from-s1", "-o", "jsonpath={.data.v}"); out != "s1" {
			t.Fatalf("kubectl through s2: %q", out)
		}
	})

	t.Run("refused joins change nothing", func(t *testing.T) {
		before := memberNames(t, s1)
		ca := s1.Token()[3:67] // K10<hash>::server:<secret>
		wrongHash := strings.Repeat("0", 64)
		cases := []struct {
			name  string
			token string
			args  []string
			want  []string
		}{
			{"wrong secret", "not-the-secret", nil, []string{"token rejected by " + s1.URL()}},
			{"wrong CA hash", "K10" + wrongHash + "::server:" + haToken, nil, []string{wrongHash, ca}},
			{"cluster-cidr", haToken, []string{"--cluster-cidr", "10.50.0.0/16"}, []string{"--cluster-cidr", "10.50.0.0/16", "10.42.0.0/16"}},
			{"service-cidr", haToken, []string{"--service-cidr", "10.53.0.0/16", "--cluster-dns", "10.53.0.10"}, []string{"--service-cidr", "--cluster-dns"}},
			{"cluster-domain", haToken, []string{"--cluster-domain", "other.local"}, []string{"--cluster-domain", "other.local"}},
			{"secrets-encryption", haToken, []string{"--secrets-encryption"}, []string{"--secrets-encryption"}},
			{"flannel-backend", haToken, []string{"--flannel-backend", "host-gw"}, []string{"--flannel-backend", `"host-gw"`, `"vxlan"`}},
			{"disable-helm-controller", haToken, []string{"--disable-helm-controller"}, []string{`--disable-helm-controller: this server has "true", the cluster has "false"`}},
			{"disable traefik", haToken, []string{"--disable", "traefik"}, []string{`--disable: this server has "traefik", the cluster has ""`}},
			{"duplicate node name", haToken, []string{"--node-name", "s2"}, []string{`"s2"`, "another --node-name"}},
		}
		for i, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				h := n.AddHost(t, fmt.Sprintf("j%d", i))
				j := newServer(t, h, append([]string{"--disable-agent", "--server", s1.URL(), "--token", c.token}, c.args...)...)
				out, code := runK3ha(t, h, j.Args...)
				if code == 0 {
					t.Fatalf("join was accepted:\n%s", out)
				}
				for _, w := range c.want {
					if !strings.Contains(out, w) {
						t.Errorf("output does not mention %q:\n%s", w, tail(out, 15))
					}
				}
				if _, err := os.Stat(j.DataDir()); !os.IsNotExist(err) {
					entries, _ := os.ReadDir(j.DataDir())
					t.Errorf("the refused server left its data dir behind: %v", entries)
				}
				if after := memberNames(t, s1); !reflect.DeepEqual(after, before) {
					t.Fatalf("member list changed: %v → %v", before, after)
				}
			})
		}
	})

	t.Run("leader killed", func(t *testing.T) {
		leader := etcdLeader(t, servers)
		var other *cluster.Server
		for _, s := range servers {
			if s != leader {
				other = s
				break
			}
		}
		if err := leader.Proc.Kill(); err != nil {
			t.Fatal(err)
		}
		outage, written := writeOutage(t, other, "after-kill", time.Now())
		t.Logf("SIGKILL of the leader (%s): a write through %s succeeded after %v", leader.Name, other.Name, outage.Round(time.Millisecond))
		leader.Start()
		leader.WaitReady()
		harness.WaitFor(t, time.Minute, leader.Name+" caught up", func() (bool, error) {
			_, err := getConfigMap(t, leader, written)
			return err == nil, err
		})
	})

	t.Run("leader cut off", func(t *testing.T) {
		leader := etcdLeader(t, servers)
		var others []*cluster.Server
		for _, s := range servers {
			if s != leader {
				others = append(others, s)
			}
		}
		leader.Host.Partition(t)
		healed := false
		defer func() {
			if !healed {
				leader.Host.Heal(t)
			}
		}()
		outage, written := writeOutage(t, others[0], "while-cut", time.Now())
		t.Logf("%s cut off: a write through %s succeeded after %v", leader.Name, others[0].Name, outage.Round(time.Millisecond))
		waitConfigMap(t, others[1], written, "")
		// The minority must not accept writes: that would be a split brain.
		if out, err := leader.K3haKubectl("--request-timeout=5s", "create", "configmap", "in-minority"); err == nil {
			t.Fatalf("a write through the cut-off %s succeeded: %s", leader.Name, out)
		}
		leader.Host.Heal(t)
		healed = true
		waitConfigMap(t, leader, written, "")
		harness.WaitFor(t, time.Minute, "a write through "+leader.Name+" after healing", func() (bool, error) {
			err := putConfigMap(t, leader, "after-heal", "1")
			return err == nil, err
		})
		waitConfigMap(t, others[0], "after-heal", "1")
	})

	t.Run("restart while the first server is down", func(t *testing.T) {
		s1.Stop(30 * time.Second)
		s2.Stop(30 * time.Second)
		if err := putConfigMap(t, s3, "while-s2-down", "y"); err == nil {
			t.Fatal("a write succeeded with two of three servers down")
		}
		s2.Start()
		s2.WaitReady()
		if err := putConfigMap(t, s2, "s2-back", "z"); err != nil {
			t.Fatalf("write through s2 with s1 down: %v", err)
		}
		waitConfigMap(t, s3, "s2-back", "z")
		s1.Start()
		s1.WaitReady()
		waitConfigMap(t, s1, "s2-back", "z")
	})

	t.Run("stray flags on restart are ignored", func(t *testing.T) {
		s3.Stop(30 * time.Second)
		args := s3.Args
		s3.Args = append(append([]string{}, args...), "--server", "https://"+n.Gateway.String()+":6443", "--datastore-endpoint", "postgres://nobody@"+n.Gateway.String()+"/none")
		s3.Start()
		s3.WaitReady()
		s3.WaitLog(t, time.Second, "ignored")
		waitConfigMap(t, s3, "from-s1", "s1")
		if got := memberNames(t, s3); len(got) != 3 {
			t.Fatalf("members after the restart: %v", got)
		}
		s3.Args = args
	})

	t.Run("cluster reset after losing quorum", func(t *testing.T) { testClusterReset(t, n, servers) })
}

// testClusterReset is the way out after quorum is lost for good: with the
// other servers gone, --cluster-reset makes s1 the only member, with its data.
func testClusterReset(t *testing.T, n *harness.Network, servers []*cluster.Server) {
	s1 := servers[0]
	for _, s := range servers {
		if !s.Proc.Exited() {
			s.Stop(30 * time.Second)
		}
	}
	out, code := runK3ha(t, s1.Host, append(append([]string{}, s1.Args...), "--cluster-reset", "--cluster-reset-restore-path", "/nowhere")...)
	if code == 0 || !strings.Contains(out, "no such file") || !strings.Contains(out, "nothing was changed") {
		t.Fatalf("reset with a missing snapshot: exit %d\n%s", code, tail(out, 10))
	}
	out, code = runK3ha(t, s1.Host, append(append([]string{}, s1.Args...), "--cluster-reset")...)
	if code != 0 || !strings.Contains(out, "cluster reset") {
		t.Fatalf("--cluster-reset: exit %d\n%s", code, tail(out, 15))
	}
	s1.Start()
	s1.WaitReady()
	if got := memberNames(t, s1); !reflect.DeepEqual(got, []string{"s1 learner=false"}) {
		t.Fatalf("members after the reset: %v", got)
	}
	waitConfigMap(t, s1, "from-s2", "s2")
	if err := putConfigMap(t, s1, "after-reset", "ok"); err != nil {
		t.Fatalf("write after the reset: %v", err)
	}
}

// TestFiveServers checks that five servers tolerate two failures.
func TestFiveServers(t *testing.T) {
	n := harness.NewNetwork(t)
	servers := startHA(t, n, 5)
	servers[4].WaitLog(t, time.Minute, "tolerated_failures=2")
	if err := servers[3].Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := servers[4].Proc.Kill(); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, time.Minute, "a write with two of five servers dead", func() (bool, error) {
		err := putConfigMap(t, servers[0], "two-down", "ok")
		return err == nil, err
	})
	waitConfigMap(t, servers[2], "two-down", "ok")
}

// testEtcdPorts checks that etcd serves gRPC alone on its client port and its
// HTTP endpoints on a loopback port of their own, both with mutual TLS.
func testEtcdPorts(t *testing.T, s *cluster.Server) {
	l := layout.NewServer(s.DataDir())
	ca := []string{"-s", "--max-time", "5", "--cacert", l.Cert(layout.EtcdServerCA)}
	withCert := append(slices.Clone(ca), "--cert", l.Cert(layout.EtcdClient), "--key", l.Key(layout.EtcdClient))
	curl := func(args []string, url string) (string, error) {
		return s.Host.Run(t, "curl", append(slices.Clone(args), url)...)
	}
	if out, err := curl(withCert, "https://127.0.0.1:2382/health"); err != nil || !strings.Contains(out, `"health":"true"`) {
		t.Errorf("etcd /health on 2382 with a client certificate: %q %v", out, err)
	}
	if out, err := curl(ca, "https://127.0.0.1:2382/health"); err == nil || strings.Contains(out, "health") {
		t.Errorf("etcd /health on 2382 answered a client without a certificate: %q", out)
	}
	if out, _ := curl(withCert, "https://127.0.0.1:2379/health"); strings.Contains(out, "health") {
		t.Errorf("etcd's client port still serves HTTP: %q", out)
	}
	// gRPC on the client port works: the member list came through it.
	if len(memberNames(t, s)) == 0 {
		t.Error("no etcd members through the client port")
	}
}
