package helm

import (
	"testing"

	"helm.sh/helm/v3/pkg/release"
)

func TestDecide(t *testing.T) {
	deployed := func(hash string) ReleaseState {
		return ReleaseState{Exists: true, Latest: release.StatusDeployed, Deployed: true, Revision: 1, Hash: hash}
	}
	cases := []struct {
		name     string
		deleting bool
		rel      ReleaseState
		want     Action
	}{
		{"new chart", false, ReleaseState{}, Install},
		{"unchanged", false, deployed("h"), None},
		{"values changed", false, deployed("old"), Upgrade},
		{"installed by the helm CLI", false, deployed(""), Upgrade},
		{"last upgrade failed", false, ReleaseState{Exists: true, Latest: release.StatusFailed, Deployed: true, Hash: "h"}, Upgrade},
		{"interrupted upgrade", false, ReleaseState{Exists: true, Latest: release.StatusPendingUpgrade, Deployed: true, Hash: "h"}, Upgrade},
		{"first install failed", false, ReleaseState{Exists: true, Latest: release.StatusFailed}, Reinstall},
		{"interrupted install", false, ReleaseState{Exists: true, Latest: release.StatusPendingInstall}, Reinstall},
		{"deleted", true, deployed("h"), Uninstall},
		{"deleted, never installed", true, ReleaseState{}, None},
	}
	for _, c := range cases {
		if got := Decide(c.deleting, c.rel, "h"); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
