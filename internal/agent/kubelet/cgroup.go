package kubelet

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const cgroupFS = "/sys/fs/cgroup"

// ensureCgroupRoot creates the node's cgroup root in every cgroup v1
// hierarchy (the kubelet requires it to exist in all of them); on a cgroup v2
// host one directory is enough. cpuset children start without CPUs or memory
// nodes, so those are copied from the parent.
func ensureCgroupRoot(root string) error {
	if root == "" || root == "/" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(cgroupFS, "cgroup.controllers")); err == nil {
		return os.MkdirAll(filepath.Join(cgroupFS, root), 0o755)
	}
	entries, err := os.ReadDir(cgroupFS)
	if err != nil {
		return fmt.Errorf("cgroups: %w", err)
	}
	for _, e := range entries {
		hier := filepath.Join(cgroupFS, e.Name())
		if !e.IsDir() || e.Name() == "unified" {
			continue
		}
		if st, err := os.Lstat(hier); err != nil || st.Mode()&os.ModeSymlink != 0 {
			continue // cpu,cpuacct style aliases point at a hierarchy visited anyway
		}
		if err := makePath(hier, root, e.Name()); err != nil {
			return err
		}
	}
	return nil
}

// makePath creates root below hier one level at a time, so that cpuset
// values can be inherited at each level.
func makePath(hier, root, name string) error {
	dir := hier
	for _, part := range strings.Split(strings.Trim(root, "/"), "/") {
		parent := dir
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		if strings.Contains(name, "cpuset") {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if cur, _ := os.ReadFile(filepath.Join(dir, f)); len(bytes.TrimSpace(cur)) > 0 {
					continue
				}
				val, err := os.ReadFile(filepath.Join(parent, f))
				if err != nil {
					return fmt.Errorf("read %s: %w", filepath.Join(parent, f), err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), val, 0o644); err != nil {
					return fmt.Errorf("write %s: %w", filepath.Join(dir, f), err)
				}
			}
		}
	}
	return nil
}
