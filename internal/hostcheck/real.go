package hostcheck

import (
	"net"
	"os/exec"
	"strconv"

	"github.com/k3ha/k3ha/internal/disk"
)

// Real is this machine, with the data dir whose disk is checked.
func Real(dataDir string) Host {
	return Host{
		LookPath: func(name string) error { _, err := exec.LookPath(name); return err },
		Listen: func(port int) error {
			ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
			if err != nil {
				return err
			}
			return ln.Close()
		},
		DataDir: dataDir,
		Fsync: func(dir string) (float64, error) {
			p, err := disk.FsyncP99(dir, disk.FsyncSamples)
			return p.Seconds(), err
		},
	}
}
