package loadbalancer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/k3ha/k3ha/internal/pki"
)

// stateMode keeps the file private: it maps out the control plane.
const stateMode os.FileMode = 0o600

// state is the file's content; an object rather than a bare list so that
// fields can be added without breaking older files.
type state struct {
	Servers []string `json:"servers"`
}

// load returns the servers saved at path. A missing file (first start) or
// one that cannot be parsed yields none: the servers given to New still
// work, and the next save replaces a damaged file. Being unable to read
// it at all is an error, as it hints at a broken data dir.
func load(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load balancer: read saved servers: %w", err)
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		slog.Warn("load balancer: ignoring unreadable saved server list", "file", path, "err", err)
		return nil, nil
	}
	list, bad := clean(st.Servers)
	if len(bad) > 0 {
		slog.Warn("load balancer: ignoring invalid saved server addresses", "file", path, "invalid", bad)
	}
	return list, nil
}

// save writes the list atomically, so a crash leaves the old list or the
// new one, never a torn file that a restart would have to ignore.
func (lb *LoadBalancer) save(list []string) error {
	if lb.statePath == "" {
		return nil
	}
	data, err := json.MarshalIndent(state{Servers: list}, "", "  ")
	if err != nil {
		return fmt.Errorf("load balancer: encode server list: %w", err)
	}
	if err := pki.WriteFileAtomic(lb.statePath, append(data, '\n'), stateMode); err != nil {
		return fmt.Errorf("load balancer: save server list: %w", err)
	}
	return nil
}
