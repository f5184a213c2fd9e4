package helm

import "helm.sh/helm/v3/pkg/release"

// Action is what a HelmChart's release needs.
type Action int

// The actions, in the order a release lives through them.
const (
	None      Action = iota
	Install          // no release yet
	Upgrade          // chart or values changed, or the last attempt failed
	Reinstall        // no revision was ever deployed: start over
	Uninstall        // the HelmChart is being deleted
)

func (a Action) String() string {
	return [...]string{"none", "install", "upgrade", "reinstall", "uninstall"}[a]
}

// ReleaseState is what Helm's storage says of a release.
type ReleaseState struct {
	Exists bool
	// Latest is the newest revision's status; Deployed whether any
	// revision is deployed now.
	Latest   release.Status
	Deployed bool
	// Revision and Hash are the deployed revision's number and the hash of
	// what it was made from (a label k3ha puts on the release).
	Revision int
	Hash     string
}

// Decide what a HelmChart needs: deleting says it is being deleted,
// wantHash identifies its chart and values.
func Decide(deleting bool, rel ReleaseState, wantHash string) Action {
	switch {
	case deleting && rel.Exists:
		return Uninstall
	case deleting:
		return None
	case !rel.Exists:
		return Install
	case !rel.Deployed:
		return Reinstall
	case rel.Latest != release.StatusDeployed, wantHash != rel.Hash:
		return Upgrade
	}
	return None
}
