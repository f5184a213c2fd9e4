package hostcheck

import (
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Network checks what pod networking needs from the kernel.
func (h Host) Network() []Result {
	var out []Result
	r := Result{Section: "Network", Name: "bridge netfilter", Detail: "active (bridged pod traffic passes iptables)"}
	if _, err := os.Stat(h.path("/proc/sys/net/bridge")); err != nil {
		r.Status, r.Detail, r.Fix = Fail, "/proc/sys/net/bridge is missing: Services would not answer pods on the same node", "modprobe br_netfilter (and add it to /etc/modules-load.d)"
	} else if v := h.sysctl("net/bridge/bridge-nf-call-iptables"); v != "1" {
		r.Status, r.Detail, r.Fix = Warn, "net.bridge.bridge-nf-call-iptables is "+v, "k3ha's kube-proxy sets it to 1 at start"
	}
	out = append(out, r)
	r = Result{Section: "Network", Name: "IP forwarding", Detail: "on"}
	if v := h.sysctl("net/ipv4/ip_forward"); v != "1" {
		r.Detail = "off now; k3ha turns net.ipv4.ip_forward on when a node starts"
	}
	return append(out, r)
}

func (h Host) sysctl(name string) string {
	data, err := os.ReadFile(h.path("/proc/sys/" + name))
	if err != nil {
		return "unreadable"
	}
	return strings.TrimSpace(string(data))
}

// Ports checks that the ports a server listens on are free.
func (h Host) Ports() []Result {
	var out []Result
	for _, p := range serverPorts {
		r := Result{Section: "Network", Name: fmt.Sprintf("port %d (%s)", p.port, p.what), Detail: "free"}
		if err := h.Listen(p.port); err != nil {
			r.Status, r.Detail, r.Fix = Fail, "in use: "+err.Error(), "stop what listens there (another k3ha or Kubernetes?)"
		}
		out = append(out, r)
	}
	return out
}

// Disk checks the data dir's filesystem and how fast it syncs.
func (h Host) Disk() []Result {
	if h.DataDir == "" {
		return nil
	}
	dir := h.DataDir
	for {
		if _, err := os.Stat(dir); err == nil || dir == "/" {
			break
		}
		dir = parent(dir)
	}
	var out []Result
	r := Result{Section: "Data dir", Name: "filesystem of " + h.DataDir}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		r.Status, r.Detail = Warn, err.Error()
	} else {
		r.Detail = fmt.Sprintf("%s, %.1f GiB free", fsName(st.Type), float64(st.Bavail)*float64(st.Bsize)/(1<<30))
		if st.Type == unix.TMPFS_MAGIC {
			r.Status, r.Fix = Warn, "data in tmpfs is gone after a reboot: use a disk-backed --data-dir"
		}
	}
	out = append(out, r)
	if h.Fsync == nil {
		return out
	}
	r = Result{Section: "Data dir", Name: "fsync latency"}
	p99, err := h.Fsync(dir)
	switch {
	case err != nil:
		r.Status, r.Detail = Warn, "not measured: "+err.Error()
	case time.Duration(p99*float64(time.Second)) > 10*time.Millisecond:
		r.Status, r.Detail = Warn, fmt.Sprintf("p99 %.1f ms, over 10 ms: embedded etcd may lose leadership", p99*1000)
		r.Fix = "put --data-dir on an SSD (not an SD card)"
	default:
		r.Detail = fmt.Sprintf("p99 %.2f ms", p99*1000)
	}
	return append(out, r)
}

func parent(dir string) string {
	if i := strings.LastIndex(strings.TrimRight(dir, "/"), "/"); i > 0 {
		return dir[:i]
	}
	return "/"
}

func fsName(t int64) string {
	switch t {
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlay"
	case 0x2fc12fc1:
		return "zfs"
	}
	return fmt.Sprintf("filesystem type 0x%x", t)
}
