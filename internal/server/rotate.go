package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/k3ha/k3ha/internal/bootstrap"
	"github.com/k3ha/k3ha/internal/component"
	"github.com/k3ha/k3ha/internal/datastore"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/logging"
	"github.com/k3ha/k3ha/internal/token"
)

// TokenRotation is what `k3ha token rotate` asks for.
type TokenRotation struct {
	// NewToken is the new secret, bare or as a full K10 token of this cluster.
	NewToken string `json:"newToken"`
	// Agent rotates the agent token instead of the server token.
	Agent bool `json:"agent,omitempty"`
}

// TokenRotated is the answer: the new token in full.
type TokenRotated struct {
	Token string `json:"token"`
}

// tokenRotator re-seals the cluster's bootstrap data and switches this
// server to the new token; the other servers follow (tokenWatcher).
type tokenRotator struct {
	layout   layout.Server
	tokens   *liveTokens
	endpoint datastore.Endpoint
}

func (r *tokenRotator) rotate(ctx context.Context, req TokenRotation) (TokenRotated, error) {
	newTok, err := token.Parse(req.NewToken)
	if err != nil || newTok.Password == "" {
		return TokenRotated{}, fmt.Errorf("--new-token: not a token: %v", err)
	}
	if newTok.Secure() {
		if err := newTok.VerifyCA(r.tokens.ca); err != nil {
			return TokenRotated{}, fmt.Errorf("--new-token belongs to another cluster: %w", err)
		}
	}
	cur := r.tokens.get()
	var next tokens
	err = withKV(r.endpoint, func(kv clientv3.KV) error {
		blob, rev, found, err := bootstrap.LoadRev(ctx, kv)
		if err != nil {
			return err
		}
		if !found {
			return errors.New("the datastore holds no bootstrap data to re-seal")
		}
		data, err := bootstrap.Open(blob, cur.server.Password)
		if err != nil {
			return fmt.Errorf("this server's token no longer opens the cluster's bootstrap data (rotated elsewhere?): %w", err)
		}
		var record []byte
		secret := cur.server.Password
		if req.Agent {
			next = newTokens(r.tokens.ca, secret, newTok.Password)
			rel := relTo(r.layout, r.layout.AgentTokenFile())
			data.Files[rel] = []byte(next.agent.String() + "\n")
		} else {
			next = rotated(cur, r.tokens.ca, newTok.Password)
			secret = newTok.Password
			if rel := relTo(r.layout, r.layout.AgentTokenFile()); data.Files[rel] != nil {
				data.Files[rel] = []byte(next.agent.String() + "\n")
			}
			if record, err = bootstrap.Seal(bootstrap.Data{Files: map[string][]byte{bootstrap.RotatedToken: []byte(secret)}}, cur.server.Password); err != nil {
				return err
			}
		}
		sealed, err := bootstrap.Seal(data, secret)
		if err != nil {
			return err
		}
		ok, err := bootstrap.Replace(ctx, kv, rev, sealed, record)
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("the bootstrap data changed meanwhile (another rotation?); try again")
		}
		return nil
	})
	if err != nil {
		return TokenRotated{}, fmt.Errorf("token rotation: %w", err)
	}
	if err := r.tokens.set(next); err != nil {
		return TokenRotated{}, err
	}
	which, full := "server", next.server.String()
	if req.Agent {
		which, full = "agent", next.agent.String()
	}
	slog.Info("token rotated: the cluster's bootstrap data is sealed with the new token; the other servers follow", "token", which)
	return TokenRotated{Token: full}, nil
}

// relTo is path relative to the server dir, as bootstrap data names files.
func relTo(l layout.Server, path string) string {
	rel, _ := filepath.Rel(l.Root, path)
	return filepath.ToSlash(rel)
}

// watchBootstrap notices a change of the cluster's bootstrap data made on
// another server: a token rotation (this server switches to the new token,
// so that it keeps answering joins and restarts with it) or a new
// secrets-encryption config (written here, where the apiserver reloads it).
func watchBootstrap(r *tokenRotator) *component.Periodic {
	return &component.Periodic{Label: "bootstrap data watcher", Every: watchEvery,
		Setup: func() (func(context.Context), func(), error) {
			c, err := r.endpoint.Client(logging.Zap("etcd-client"))
			if err != nil {
				return nil, nil, err
			}
			var seen int64
			tick := func(ctx context.Context) {
				if rev, err := checkBootstrap(ctx, r, c, seen); err == nil {
					seen = rev
				} else if ctx.Err() == nil {
					slog.Warn("could not check the bootstrap data for a token rotation", "err", err)
				}
			}
			return tick, func() { c.Close() }, nil
		}}
}

// watchEvery is how often the bootstrap data is checked for a rotation.
const watchEvery = 5 * time.Second

// checkBootstrap adopts the bootstrap data's tokens and settings when it
// changed since seen.
func checkBootstrap(ctx context.Context, r *tokenRotator, kv clientv3.KV, seen int64) (int64, error) {
	blob, rev, found, err := bootstrap.LoadRev(ctx, kv)
	if err != nil || !found || rev == seen {
		return rev, err
	}
	lt := r.tokens
	cur := lt.get()
	data, secret, err := openFollowingRotation(ctx, kv, blob, cur.server.Password)
	if err != nil {
		return 0, err
	}
	next := cur
	if secret != cur.server.Password {
		next = rotated(cur, lt.ca, secret)
	}
	l := r.layout
	if stale := data.Stale(l); len(stale) > 0 {
		if err := data.WriteFiles(l, stale); err != nil {
			return 0, err
		}
		slog.Info("the cluster's settings changed: taken from the datastore", "files", strings.Join(stale, ","))
	}
	if raw := data.Files[relTo(l, l.AgentTokenFile())]; raw != nil {
		if agent, err := token.Parse(string(raw)); err == nil && agent.Password != next.agent.Password {
			next = newTokens(lt.ca, next.server.Password, agent.Password)
			slog.Info("the cluster's agent token was rotated: this server now takes the new one")
		}
	}
	if next != cur {
		if err := lt.set(next); err != nil {
			return 0, err
		}
	}
	return rev, nil
}
