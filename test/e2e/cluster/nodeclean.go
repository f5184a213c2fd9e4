package cluster

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// killNode kills every process in the node's cgroup root (/k3ha/<node>):
// the pods' containers. They live in network namespaces of their own, so
// killing a host's processes does not reach them. Then it removes the
// node's cgroups and unmounts what containerd mounted under dir (container
// root filesystems, pod network namespaces), so the test's temp dir can go.
func killNode(t testing.TB, node, dir string) {
	marker := "/k3ha/" + node + "/"
	for round := 0; round < 50; round++ {
		pids := cgroupPIDs(marker)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond) // give the kernel a moment to reap before looking again
	}
	if left := cgroupPIDs(marker); len(left) > 0 {
		t.Logf("cleanup: processes of node %s still alive: %v", node, left)
	}
	removeCgroups("/k3ha/" + node)
	removeCgroups("/k3ha") // only goes when no other node is left in it
	unmountUnder(t, dir)
}

// unmountUnder detaches every mount below dir, deepest first.
func unmountUnder(t testing.TB, dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			mounts = append(mounts, fields[4])
		}
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, m := range mounts {
		if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil {
			t.Logf("cleanup: unmount %s: %v", m, err)
		}
	}
}

func cgroupPIDs(marker string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cgroup"))
		if err != nil {
			continue
		}
		if strings.Contains(string(data)+"/", marker) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// removeCgroups removes root and its children in every hierarchy, deepest first.
func removeCgroups(root string) {
	hiers, _ := filepath.Glob("/sys/fs/cgroup/*")
	hiers = append(hiers, "/sys/fs/cgroup")
	for _, h := range hiers {
		var dirs []string
		_ = filepath.WalkDir(filepath.Join(h, root), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			_ = syscall.Rmdir(d)
		}
	}
}

// KillNode is a node's power loss: SIGKILL to k3ha and to every container
// of the node, whose mounts go too.
func (s *Server) KillNode() {
	s.T.Helper()
	if err := s.Proc.Kill(); err != nil {
		s.T.Fatalf("kill %s: %v", s.Name, err)
	}
	killNode(s.T, s.Name, s.Dir)
}

// NodeProcesses are the processes of a node's pods (its cgroup root).
func NodeProcesses(node string) []int { return cgroupPIDs("/k3ha/" + node + "/") }
