//go:build bench

package bench

// The pod network benchmark: TCP throughput and round trips between a pod on
// a server's node and a pod on an agent's node, for each flannel backend
// that runs here, against the same two hosts talking directly.

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/cluster"
	"github.com/k3ha/k3ha/test/e2e/harness"
)

const (
	netRounds     = 3
	blastSeconds  = "5"
	rttCount      = "2000"
	sinkPort      = "9000"
	vxlanGoal     = 0.8 // of host-to-host throughput
	netSectionKey = "pod-network"
)

// netFigures are one round's measurements.
type netFigures struct {
	mbit           float64
	rttP50, rttP99 float64 // µs
}

// parseFigures reads testapp's KEY=value output.
func parseFigures(t *testing.T, blastOut, rttOut string) netFigures {
	t.Helper()
	var f netFigures
	fields := map[string]string{}
	for _, w := range strings.Fields(blastOut + " " + rttOut) {
		if k, v, ok := strings.Cut(w, "="); ok {
			fields[k] = v
		}
	}
	var err error
	for k, dst := range map[string]*float64{"MBIT_PER_S": &f.mbit, "RTT_US_P50": &f.rttP50, "RTT_US_P99": &f.rttP99} {
		if *dst, err = strconv.ParseFloat(fields[k], 64); err != nil {
			t.Fatalf("%s missing in %q / %q", k, blastOut, rttOut)
		}
	}
	return f
}

func sinkPod(name, node, labels, args string) string {
	return cluster.PodYAML("default", name, node, labels, benchImageRef, args)
}

// TestPodNetwork measures each backend in a cluster of its own (a server
// with its agent and a standalone agent on one subnet), and host to host on
// the same two hosts in the same rounds, so the ratio is not skewed by the
// shared machine's load changing between them.
func TestPodNetwork(t *testing.T) {
	sec := newSection(netSectionKey, "Pod network: throughput and round trips between nodes, per flannel backend")
	app := filepath.Join(t.TempDir(), "testapp")
	if err := cluster.BuildTestApp(app); err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	ratios := map[string][]float64{}
	for _, backend := range netBackends {
		n := harness.NewNetwork(t)
		sh, ah := n.AddHost(t, "nb-server"), n.AddHost(t, "nb-agent")
		s := nodeServer(t, sh, "--flannel-backend", backend)
		s.Start()
		s.WaitReady()
		a := nodeAgent(t, k3haBin, ah, s)
		a.Start()
		sinkIP := sinkAndClient(t, s, "nb-server", "nb-agent", "")
		hostSink := ah.Start(t, filepath.Join(t.TempDir(), "sink.log"), nil, app, "sink", ":"+sinkPort)
		for round := 1; round <= netRounds; round++ {
			pod := measure(t, func(args ...string) (string, error) {
				return s.Kubectl(append([]string{"exec", "client", "--", "/app"}, args...)...)
			}, sinkIP)
			host := measure(t, func(args ...string) (string, error) {
				return sh.Run(t, app, args...)
			}, ah.IP.String())
			ratio := pod.mbit / host.mbit
			ratios[backend] = append(ratios[backend], ratio)
			rows = append(rows, []string{backend, strconv.Itoa(round),
				fmt.Sprintf("%.0f", pod.mbit), fmt.Sprintf("%.0f", host.mbit), fmt.Sprintf("**%.2f**", ratio),
				fmt.Sprintf("%.0f / %.0f", pod.rttP50, pod.rttP99), fmt.Sprintf("%.0f / %.0f", host.rttP50, host.rttP99)})
			t.Logf("%s round %d: pod %.0f Mbit/s, host %.0f Mbit/s (%.2f); rtt p50 pod %.0f µs, host %.0f µs",
				backend, round, pod.mbit, host.mbit, ratio, pod.rttP50, host.rttP50)
		}
		if err := hostSink.Kill(); err != nil {
			t.Logf("sink: %v", err)
		}
		a.Stop(30 * time.Second)
		s.Stop(30 * time.Second)
	}
	rows = append(rows, kernelVXLANRounds(t, app, ratios)...)
	sec.printf(`
Two hosts (network namespaces on one bridge of this machine, veth pairs: no real wire, so the
figures show the backends' own cost in CPU). For each backend a server with its agent and a
standalone agent, each on its own host; a pod on each node (the test image); from the client pod
`+"`/app blast`"+` sends 128 KiB writes over one TCP connection for %ss to a sink pod on the other
node, then `+"`/app rtt`"+` makes %s one-byte round trips. "host" is the same program run directly in
the two hosts' network namespaces, in the same round. Throughput in Mbit/s; round trips in µs (p50 / p99).
"kernel vxlan" is the same path built by hand with ip(8) on two more hosts (a pod namespace
behind a cni0 bridge on each, a VXLAN device as flannel makes it, static routes and FDB entries),
without k3ha, conntrack or iptables: what the kernel's VXLAN alone costs on these veths.
wireguard-native runs in userspace (wireguard-go) where the kernel has no WireGuard module, as here.
`, blastSeconds, rttCount)
	sec.table([]string{"backend", "round", "pod to pod", "host to host", "pod / host", "rtt pod", "rtt host"}, rows)
	for _, backend := range netBackends {
		sec.printf("- %s: pod / host throughput median **%.2f**\n", backend, median(ratios[backend]))
	}
	sec.printf("- kernel vxlan (no k3ha): pod / host throughput median **%.2f**; k3ha's vxlan reaches %.2f of it\n",
		median(ratios[kernelVXLAN]), median(ratios["vxlan"])/median(ratios[kernelVXLAN]))
	sec.printf("- goal: vxlan at least %.1f of host to host; the median is **%.2f** (%.2f× the goal)\n",
		vxlanGoal, median(ratios["vxlan"]), median(ratios["vxlan"])/vxlanGoal)
	sec.write(t)
}

const kernelVXLAN = "kernel vxlan"

var netBackends = []string{"vxlan", "host-gw", "wireguard-native"}

// kernelVXLANRounds measures the hand-built VXLAN (bareVXLAN) against host
// to host on its own two hosts, in rounds like the backends'.
func kernelVXLANRounds(t *testing.T, app string, ratios map[string][]float64) [][]string {
	n := harness.NewNetwork(t)
	hosts := [2]*harness.Host{n.AddHost(t, "vx1"), n.AddHost(t, "vx2")}
	pods := bareVXLAN(t, hosts)
	podSink := pods[1].command(app, "sink", ":"+sinkPort)
	if err := podSink.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = podSink.Process.Kill(); _ = podSink.Wait() }()
	hostSink := hosts[1].Start(t, filepath.Join(t.TempDir(), "sink.log"), nil, app, "sink", ":"+sinkPort)
	defer func() { _ = hostSink.Kill() }()
	var rows [][]string
	for round := 1; round <= netRounds; round++ {
		pod := measure(t, func(args ...string) (string, error) {
			out, err := pods[0].command(app, args...).CombinedOutput()
			return string(out), err
		}, "10.244.2.2")
		host := measure(t, func(args ...string) (string, error) {
			return hosts[0].Run(t, app, args...)
		}, hosts[1].IP.String())
		ratio := pod.mbit / host.mbit
		ratios[kernelVXLAN] = append(ratios[kernelVXLAN], ratio)
		rows = append(rows, []string{kernelVXLAN + " (no k3ha)", strconv.Itoa(round),
			fmt.Sprintf("%.0f", pod.mbit), fmt.Sprintf("%.0f", host.mbit), fmt.Sprintf("**%.2f**", ratio),
			fmt.Sprintf("%.0f / %.0f", pod.rttP50, pod.rttP99), fmt.Sprintf("%.0f / %.0f", host.rttP50, host.rttP99)})
		t.Logf("%s round %d: pod %.0f Mbit/s, host %.0f Mbit/s (%.2f)", kernelVXLAN, round, pod.mbit, host.mbit, ratio)
	}
	return rows
}

// sinkAndClient waits for both nodes, runs a sink pod (with labels, if
// any) on the agent's node and a client pod on the server's, and returns
// the sink's IP once both run.
func sinkAndClient(t *testing.T, s *cluster.Server, serverNode, agentNode, labels string) string {
	t.Helper()
	for _, node := range []string{serverNode, agentNode} {
		harness.WaitFor(t, nodeReadyWait, node+" Ready", func() (bool, error) {
			out, err := s.Kubectl("get", "node", node, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
			return out == "True", fmt.Errorf("%v: %s", err, out)
		})
	}
	sink := sinkPod("sink", agentNode, labels, `"sink", ":`+sinkPort+`"`)
	for _, y := range []string{sink, sinkPod("client", serverNode, "", `"serve", ":8080"`)} {
		kubectlApply(t, s, y)
	}
	var sinkIP string
	harness.WaitFor(t, podRunningWait, "sink and client Running", func() (bool, error) {
		out, err := s.Kubectl("get", "pods", "sink", "client", "-o", `jsonpath={range .items[*]}{.status.phase} {end}{.items[0].status.podIP}`)
		f := strings.Fields(out)
		if len(f) == 3 && f[0] == "Running" && f[1] == "Running" {
			sinkIP = f[2]
			return true, nil
		}
		return false, fmt.Errorf("%v: %s", err, out)
	})
	return sinkIP
}

// kubectlApply applies a manifest through s.
func kubectlApply(t *testing.T, s *cluster.Server, yaml string) {
	t.Helper()
	cmd := s.KubectlCmd("apply", "-f", "-")
	cmd.Stdin = strings.NewReader(yaml)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kubectl apply: %v: %s", err, out)
	}
}

// measure runs blast and rtt through run against the sink at ip.
func measure(t *testing.T, run func(args ...string) (string, error), ip string) netFigures {
	t.Helper()
	addr := ip + ":" + sinkPort
	var blastOut string
	harness.WaitFor(t, time.Minute, "a blast to "+addr, func() (bool, error) {
		out, err := run("blast", addr, blastSeconds)
		blastOut = out
		return err == nil, fmt.Errorf("%v: %s", err, out)
	})
	rttOut, err := run("rtt", addr, rttCount)
	if err != nil {
		t.Fatalf("rtt to %s: %v %s", addr, err, rttOut)
	}
	return parseFigures(t, blastOut, rttOut)
}
