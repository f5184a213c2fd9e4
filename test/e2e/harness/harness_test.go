package harness

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// helperEnv switches the test binary into a tiny HTTP server, so the test
// needs no python or nc inside the hosts and starts in milliseconds.
const helperEnv = "K3E_HARNESS_HELPER_LISTEN"

func TestMain(m *testing.M) {
	if addr := os.Getenv(helperEnv); addr != "" {
		serveHelper(addr)
		return
	}
	os.Exit(m.Run())
}

// serveHelper answers "ok" on addr and exits 0 on SIGTERM, like a well
// behaved server should.
func serveHelper(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	fmt.Println("helper: listening on", addr)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	go func() {
		<-term
		fmt.Println("helper: SIGTERM, exiting")
		os.Exit(0)
	}()
	err = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	fmt.Fprintln(os.Stderr, "helper:", err)
	os.Exit(3)
}

// curlArgs fetches url; --noproxy keeps proxy settings from the environment
// out of a purely local test.
func curlArgs(url string, maxTime int) []string {
	return []string{"-sS", "--noproxy", "*", "--max-time", fmt.Sprint(maxTime), url}
}

func expectOK(out string, err error) (bool, error) {
	if err != nil {
		return false, fmt.Errorf("%w: %s", err, strings.TrimSpace(out))
	}
	if strings.TrimSpace(out) != "ok" {
		return false, fmt.Errorf("unexpected response %q", out)
	}
	return true, nil
}

func startHelper(t *testing.T, h *Host, logDir, addr string) *Process {
	t.Helper()
	// -test.run=^$ keeps the binary from running tests (and building
	// networks) should the helper switch ever fail.
	return h.Start(t, filepath.Join(logDir, h.Name+".log"), []string{helperEnv + "=" + addr}, os.Args[0], "-test.run=^$")
}

func TestNetwork(t *testing.T) {
	start := time.Now()
	logDir := t.TempDir()

	// Recorded inside the scenario, checked after its cleanups have run.
	var bridge string
	var namespaces, links []string
	var pids []int

	t.Run("scenario", func(t *testing.T) {
		n := NewNetwork(t)
		a := n.AddHost(t, "a")
		b := n.AddHost(t, "b")
		bridge = n.Bridge
		namespaces = []string{a.NS, b.NS}
		links = []string{n.Bridge, a.RootVeth, b.RootVeth}

		if !n.Subnet.Contains(a.IP) || !n.Subnet.Contains(b.IP) || !n.Subnet.Contains(n.Gateway) || a.IP.Equal(b.IP) {
			t.Fatalf("bad addressing: subnet %s gateway %s a %s b %s", n.Subnet, n.Gateway, a.IP, b.IP)
		}
		if len(bridge) > 15 || len(a.RootVeth) > 15 || len(a.NS) > maxNSName {
			t.Fatalf("names too long: %q %q %q", bridge, a.RootVeth, a.NS)
		}

		addr := net.JoinHostPort(a.IP.String(), "8080")
		url := "http://" + addr + "/"
		fromB := func() (bool, error) { return expectOK(b.Run(t, "curl", curlArgs(url, 2)...)) }
		fromRoot := func() (bool, error) {
			out, err := exec.Command("curl", curlArgs(url, 2)...).CombinedOutput()
			return expectOK(string(out), err)
		}

		p := startHelper(t, a, logDir, addr)
		pids = append(pids, p.PID)
		WaitFor(t, 10*time.Second, "host b to reach host a", fromB)
		WaitFor(t, 5*time.Second, "root namespace to reach host a", fromRoot)

		// A host sees itself at its own address, not through loopback only.
		if out, err := a.Run(t, "ip", "-o", "-4", "addr", "show", "dev", "eth0"); err != nil || !strings.Contains(out, a.IP.String()+"/24") {
			t.Fatalf("eth0 of host a: %q, %v", out, err)
		}

		a.Partition(t)
		out, err := b.Run(t, "curl", curlArgs(url, 2)...)
		if err == nil {
			t.Fatalf("host b reached partitioned host a: %q", out)
		}
		t.Logf("partitioned: %v: %s", err, strings.TrimSpace(out))
		a.Heal(t)
		WaitFor(t, 10*time.Second, "host b to reach host a after heal", fromB)

		// Several waiters at once must all see the same outcome.
		var wg sync.WaitGroup
		codes := make([]int, 3)
		errs := make([]error, 3)
		for i := range codes {
			wg.Go(func() { codes[i], errs[i] = p.Wait(10 * time.Second) })
		}
		if p.Exited() {
			t.Fatal("helper exited before Kill")
		}
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if !p.Exited() {
			t.Fatal("Exited() is false after Kill")
		}
		for i := range codes {
			// SIGKILL is not a normal exit, so every waiter gets an error.
			if codes[i] != -1 || errs[i] == nil {
				t.Fatalf("waiter %d: code %d, err %v; want -1 and an error", i, codes[i], errs[i])
			}
		}
		if ok, _ := fromRoot(); ok {
			t.Fatal("host a still answers after Kill")
		}

		// A server that handles SIGTERM stops cleanly.
		p2 := startHelper(t, a, logDir, addr)
		pids = append(pids, p2.PID)
		WaitFor(t, 10*time.Second, "restarted helper to answer", fromRoot)
		if err := p2.Stop(5 * time.Second); err != nil {
			t.Fatalf("Stop: %v; log:\n%s", err, p2.Log())
		}
		if code, err := p2.Wait(time.Second); code != 0 || err != nil {
			t.Fatalf("Wait after Stop: %d, %v", code, err)
		}
		if !strings.Contains(p2.Log(), "SIGTERM, exiting") {
			t.Fatalf("log lacks the helper's shutdown line:\n%s", p2.Log())
		}

		// Left running on purpose: the network cleanup must kill it.
		p3 := b.Start(t, filepath.Join(logDir, "sleep.log"), nil, "sleep", "300")
		pids = append(pids, p3.PID)
		// And one the harness does not track, started directly via Command.
		c := b.Command("sleep", "300")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		go c.Wait() // reap it once cleanup kills it
		pids = append(pids, c.Process.Pid)
	})

	nss, err := listNetns()
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces {
		if slices.Contains(nss, ns) {
			t.Errorf("netns %s left behind", ns)
		}
	}
	out, err := runIP("-o", "link", "show")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range links {
		if strings.Contains(out, " "+l+":") || strings.Contains(out, " "+l+"@") || linkExists(l) {
			t.Errorf("link %s left behind", l)
		}
	}
	if bridge == "" {
		t.Error("scenario did not create a bridge")
	}
	for _, pid := range pids {
		// Reaped processes are gone entirely; a zombie would still answer.
		// The untracked one is reaped by its goroutine, hence the short wait.
		WaitFor(t, 2*time.Second, fmt.Sprintf("process %d to be gone", pid), func() (bool, error) {
			err := syscall.Kill(pid, 0)
			return errors.Is(err, syscall.ESRCH), err
		})
	}
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}

// TestSweep plants leftovers of a "crashed" run and checks that NewNetwork
// removes them while keeping objects of a live owner.
func TestSweep(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("must run as root")
	}
	dead := ownerPrefix + "999999999:1" // beyond pid_max, so never alive
	live, err := selfOwnerTag()
	if err != nil {
		t.Fatal(err)
	}
	id := randID()
	deadNS := nsPrefix + id + "-old"
	deadBridge := bridgePrefix + id
	untaggedBridge := bridgePrefix + randID()
	liveBridge := bridgePrefix + randID()
	// Plant under the lock like the harness does, so a concurrently running
	// sweep cannot catch the live bridge before it is tagged.
	unlock, err := lockHarness()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"netns", "add", deadNS},
		{"link", "add", "name", deadBridge, "type", "bridge"},
		{"link", "set", "dev", deadBridge, "alias", dead},
		{"link", "add", "name", untaggedBridge, "type", "bridge"},
		{"link", "add", "name", liveBridge, "type", "bridge"},
		{"link", "set", "dev", liveBridge, "alias", live},
	} {
		if _, err := runIP(args...); err != nil {
			unlock()
			t.Fatal(err)
		}
	}
	unlock()
	t.Cleanup(func() {
		for _, l := range []string{deadBridge, untaggedBridge, liveBridge} {
			if linkExists(l) {
				runIP("link", "del", "dev", l)
			}
		}
		runIP("netns", "del", deadNS)
	})

	t.Run("new network", func(t *testing.T) { NewNetwork(t) })

	nss, err := listNetns()
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(nss, deadNS) {
		t.Errorf("leftover netns %s not swept", deadNS)
	}
	if linkExists(deadBridge) {
		t.Errorf("bridge %s of a dead owner not swept", deadBridge)
	}
	if linkExists(untaggedBridge) {
		t.Errorf("untagged bridge %s not swept", untaggedBridge)
	}
	if !linkExists(liveBridge) {
		t.Errorf("bridge %s of a live owner was swept", liveBridge)
	}
}

func TestForwardMayDrop(t *testing.T) {
	for _, tc := range []struct {
		out  string
		want bool
	}{
		{"-P FORWARD ACCEPT\n", false},
		{"", false},
		{"-P FORWARD DROP\n", true},
		{"-P FORWARD ACCEPT\n-A FORWARD -j DOCKER-USER\n", true},
	} {
		if got := forwardMayDrop(tc.out); got != tc.want {
			t.Errorf("forwardMayDrop(%q) = %v, want %v", tc.out, got, tc.want)
		}
	}
}
