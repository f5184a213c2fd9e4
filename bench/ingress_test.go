//go:build bench

package bench

// Traefik, the packaged ingress: how soon after a new server's start an
// Ingress is served on the node's port 80, and what Traefik costs in memory
// idle and after serving requests.

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

const (
	ingressRuns      = 3
	ingressPollEvery = 100 * time.Millisecond
	ingressGoal      = 30 * time.Second
	traefikRSSGoal   = 100e6
	ingressRequests  = 2000
	ingressHost      = "web.k3ha.bench"
)

// ingressWorkload is a web pod, its Service and an Ingress with a host rule.
func ingressWorkload(node string) string {
	return sinkPod("web", node, "app: web", `"serve", ":8080"`) + "---\n" + cluster.WebIngressYAML(ingressHost)
}

// getIngress asks the node's port 80 for the Ingress's host, from the
// machine's own namespace (the test network's bridge).
func getIngress(client *http.Client, ip string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+ip+"/", nil)
	if err != nil {
		return "", err
	}
	req.Host = ingressHost
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HTTP %s", resp.Status)
	}
	return string(body), err
}

func TestIngress(t *testing.T) {
	sec := newSection("ingress", "Ingress: server start to Traefik serving an Ingress, and Traefik's memory")
	defer sec.write(t)
	n := harness.NewNetwork(t)
	client := &http.Client{Timeout: 2 * time.Second}

	var served, ready []time.Duration
	var last *cluster.Server
	for i := 0; i < ingressRuns; i++ {
		node := fmt.Sprintf("in-%d", i)
		s := cluster.NewServer(t, k3haBin, n.AddHost(t, node))
		if err := cluster.AddImage(s.DataDir(), benchImageFile, benchImage(t)); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		s.Start()
		s.WaitReady()
		// Applied as soon as the API serves, as a user's manifest would be.
		kubectlApply(t, s, ingressWorkload(node))
		ip := s.Host.IP.String()
		for {
			if s.Proc.Exited() {
				t.Fatalf("%s exited:\n%s", s.Name, cluster.Tail(s.Proc.Log(), 30))
			}
			body, err := getIngress(client, ip)
			if err == nil && strings.Contains(body, "hello from web") {
				served = append(served, time.Since(t0))
				break
			}
			if time.Since(t0) > 4*time.Minute {
				t.Fatalf("the Ingress was not served 4 minutes after the start: %v %q", err, body)
			}
			time.Sleep(ingressPollEvery)
		}
		r, _, err := parseStartLog(s.Proc.Log(), t0)
		if err != nil {
			t.Fatal(err)
		}
		ready = append(ready, r)
		if i < ingressRuns-1 {
			s.Stop(stopTimeout)
		}
		last = s
	}

	// Memory: the last server's Traefik, idle, then after requests.
	time.Sleep(idleForRSS)
	node := last.Name
	idle := podMem(t, node)["traefik"]
	ip := last.Host.IP.String()
	begin := time.Now()
	for i := 0; i < ingressRequests; i++ {
		if _, err := getIngress(client, ip); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	took := time.Since(begin)
	loaded := podMem(t, node)["traefik"]
	if idle.RSS == 0 || loaded.RSS == 0 {
		t.Fatalf("no traefik process found on %s", node)
	}
	last.Stop(stopTimeout)

	sec.printf("\n%d fresh servers (SQLite, with their agent, the packaged components), each on a new host and data dir.\n", ingressRuns)
	sec.printf("The clock starts just before the fork; once /v1-k3ha/readyz answers, a pod, its Service and an Ingress for\n")
	sec.printf("host %s are applied, and the machine asks the node's port 80 for that host every %v until the pod\n", ingressHost, ingressPollEvery)
	sec.printf("answers. Traefik is installed by the Helm controller from the server's static chart; its port 80 is\n")
	sec.printf("servicelb's forwarder. \"k3ha ready\" is the server's own `took=`.\n")
	sec.table([]string{"series", "runs", "median to Ingress served", "min", "max", "median k3ha ready", "samples (s)"},
		[][]string{{"fresh", fmt.Sprint(ingressRuns), "**" + secs(median(served)) + "**", secs(slices.Min(served)), secs(slices.Max(served)), secs(median(ready)), secsList(served)}})
	sec.printf("- goal: under %s: median is **%.2f×** the goal\n\n", secs(ingressGoal), float64(median(served))/float64(ingressGoal))
	sec.printf("Traefik's memory (its process on the node, from /proc): %v idle after the Ingress was first served, then after\n", idleForRSS)
	sec.printf("%d sequential requests through it (%.0f requests/s, one client, keep-alive).\n", ingressRequests, float64(ingressRequests)/took.Seconds())
	sec.table([]string{"when", "VmRSS", "RssAnon", "RssFile"}, [][]string{
		{"idle", "**" + mb(idle.RSS) + "**", mb(idle.Anon), mb(idle.File)},
		{fmt.Sprintf("after %d requests", ingressRequests), "**" + mb(loaded.RSS) + "**", mb(loaded.Anon), mb(loaded.File)},
	})
	sec.printf("- goal: under %s: idle **%.2f×**, after the requests **%.2f×** the goal\n", mb(traefikRSSGoal),
		float64(idle.RSS)/traefikRSSGoal, float64(loaded.RSS)/traefikRSSGoal)
}
