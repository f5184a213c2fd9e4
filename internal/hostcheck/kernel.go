package hostcheck

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

func (h Host) path(p string) string { return filepath.Join(h.Root, p) }

// cgroupControllers a node needs: the kubelet and runc limit pods with them.
var cgroupControllers = []string{"cpu", "cpuset", "memory", "pids"}

// Cgroups checks the cgroup hierarchy and its controllers.
func (h Host) Cgroups() Result {
	r := Result{Section: "Kernel", Name: "cgroups"}
	mode, have := h.cgroupMode()
	var missing []string
	for _, c := range cgroupControllers {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
		}
	}
	r.Detail = fmt.Sprintf("%s, controllers %s", mode, strings.Join(have, " "))
	if mode == "none" {
		r.Status, r.Detail, r.Fix = Fail, "no cgroup filesystem under /sys/fs/cgroup", "mount cgroup2 on /sys/fs/cgroup (or cgroup v1 hierarchies)"
	} else if len(missing) > 0 {
		r.Status = Fail
		r.Detail += "; missing " + strings.Join(missing, " ")
		r.Fix = "enable them on the kernel command line (e.g. cgroup_enable=memory cgroup_memory=1 cgroup_enable=cpuset) and reboot"
	}
	return r
}

// cgroupMode tells v2, v1 (hybrid when a cgroup2 is mounted beside it) or
// none, and the controllers this process can use.
func (h Host) cgroupMode() (string, []string) {
	// The root of a unified (v2) hierarchy lists its controllers; under v1
	// that file exists only below /sys/fs/cgroup/unified, if anywhere.
	if data, err := os.ReadFile(h.path("/sys/fs/cgroup/cgroup.controllers")); err == nil {
		return "v2", strings.Fields(string(data))
	}
	data, err := os.ReadFile(h.path("/proc/self/cgroup"))
	if err != nil {
		return "none", nil
	}
	var have []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) == 3 && f[1] != "" {
			for _, c := range strings.Split(f[1], ",") {
				if !strings.HasPrefix(c, "name=") {
					have = append(have, c)
				}
			}
		}
	}
	if len(have) == 0 {
		return "none", nil
	}
	slices.Sort(have)
	mode := "v1"
	if _, err := os.Stat(h.path("/sys/fs/cgroup/unified")); err == nil {
		mode = "v1 (hybrid)"
	}
	return mode, slices.Compact(have)
}

// Kernel options: without a required one pods or their network cannot
// work; without an optional one a feature is missing.
var (
	requiredOptions = []string{"NAMESPACES", "NET_NS", "PID_NS", "IPC_NS", "UTS_NS", "CGROUPS", "CGROUP_CPUACCT",
		"CGROUP_DEVICE", "CGROUP_FREEZER", "CGROUP_SCHED", "CGROUP_PIDS", "CPUSETS", "MEMCG", "KEYS", "VETH", "BRIDGE",
		"BRIDGE_NETFILTER", "IP_NF_FILTER", "IP_NF_TARGET_MASQUERADE", "NETFILTER_XT_MATCH_ADDRTYPE",
		"NETFILTER_XT_MATCH_CONNTRACK", "NETFILTER_XT_MATCH_COMMENT", "NETFILTER_XT_MATCH_MULTIPORT", "IP_NF_NAT", "NF_NAT",
		"POSIX_MQUEUE", "OVERLAY_FS", "SECCOMP"}
	optionalOptions = map[string]string{
		"USER_NS": "user namespaces for pods", "VXLAN": "the vxlan overlay between nodes", "WIREGUARD": "encrypted pod traffic (wireguard)",
		"IP_SET": "network policy", "NETFILTER_XT_MATCH_STATISTIC": "Services with several endpoints", "CFS_BANDWIDTH": "CPU limits",
		"CGROUP_HUGETLB": "hugepages limits", "BLK_CGROUP": "disk I/O limits",
	}
)

// Kernel checks the kernel's build options, if its config can be read.
func (h Host) Kernel() []Result {
	cfg, from, err := h.kernelConfig()
	if err != nil {
		return []Result{h.Overlay(), {Section: "Kernel", Name: "kernel config", Status: Warn,
			Detail: "not readable (" + err.Error() + "); options not checked", Fix: "load the configs module for /proc/config.gz"}}
	}
	out := []Result{h.Overlay(), {Section: "Kernel", Name: "kernel config", Detail: "read from " + from}}
	var missing []string
	for _, o := range requiredOptions {
		if v := cfg["CONFIG_"+o]; v != "y" && v != "m" {
			missing = append(missing, o)
		}
	}
	r := Result{Section: "Kernel", Name: "required options", Detail: fmt.Sprintf("all %d present", len(requiredOptions))}
	if len(missing) > 0 {
		r.Status, r.Detail, r.Fix = Fail, "missing "+strings.Join(missing, " "), "use a kernel built with them"
	}
	out = append(out, r)
	var lacking []string
	for _, o := range slices.Sorted(maps.Keys(optionalOptions)) {
		if v := cfg["CONFIG_"+o]; v != "y" && v != "m" {
			lacking = append(lacking, fmt.Sprintf("%s (%s)", o, optionalOptions[o]))
		}
	}
	r = Result{Section: "Kernel", Name: "optional options", Detail: "all present"}
	if len(lacking) > 0 {
		r.Status, r.Detail, r.Fix = Warn, "missing "+strings.Join(lacking, ", "), "only needed for those features"
	}
	return append(out, r)
}

// kernelConfig reads /proc/config.gz, else /boot/config-<release>.
func (h Host) kernelConfig() (map[string]string, string, error) {
	var r io.Reader
	from := h.path("/proc/config.gz")
	if f, err := os.Open(from); err == nil {
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return nil, "", err
		}
		r = zr
	} else {
		var u unix.Utsname
		_ = unix.Uname(&u)
		from = h.path("/boot/config-" + unix.ByteSliceToString(u.Release[:]))
		f, err := os.Open(from)
		if err != nil {
			return nil, "", fmt.Errorf("neither /proc/config.gz nor %s", from)
		}
		defer f.Close()
		r = f
	}
	cfg := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && strings.HasPrefix(k, "CONFIG_") {
			cfg[k] = v
		}
	}
	return cfg, from, sc.Err()
}

// Overlay checks that containerd's overlayfs snapshotter can mount.
func (h Host) Overlay() Result {
	r := Result{Section: "Kernel", Name: "overlay filesystem", Detail: "available"}
	data, err := os.ReadFile(h.path("/proc/filesystems"))
	if err != nil || !strings.Contains(string(data), "\toverlay\n") {
		r.Status, r.Detail, r.Fix = Fail, "not in /proc/filesystems: containers cannot get their root filesystems", "modprobe overlay, or use a kernel with OVERLAY_FS"
	}
	return r
}
