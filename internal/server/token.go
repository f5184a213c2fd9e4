package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/layout"
	"github.com/k3ha/k3ha/internal/pki"
	"github.com/k3ha/k3ha/internal/token"
)

// tokens are the server's and the agents' join tokens.
type tokens struct {
	server token.Token
	agent  token.Token
}

// ensureTokens works out the server's tokens: the secret the user gave,
// else the one stored, else a new one; the agent secret likewise, falling
// back to the server secret. A given token that differs from the stored
// one is not refused here: the cluster's bootstrap data decides (the
// cluster's token may have been rotated while this server was down).
// Nothing is written until then (writeTokens).
func ensureTokens(l layout.Server, cfg *config.Server, caPEM []byte) (tokens, error) {
	given, err := token.FromFlags(cfg.Token, cfg.TokenFile, "token")
	if err != nil {
		return tokens{}, err
	}
	if given.Secure() {
		if err := given.VerifyCA(caPEM); err != nil {
			return tokens{}, fmt.Errorf("--token belongs to another cluster: %w", err)
		}
	}
	stored, err := readToken(l.TokenFile())
	if err != nil {
		return tokens{}, err
	}
	secret := given.Password
	if secret == "" {
		secret = stored.Password
	}
	if secret == "" {
		if secret, err = token.GenerateSecret(); err != nil {
			return tokens{}, err
		}
	}
	agentGiven, err := token.FromFlags(cfg.AgentToken, cfg.AgentTokenFile, "agent-token")
	if err != nil {
		return tokens{}, err
	}
	agentSecret := agentGiven.Password
	if agentSecret == "" {
		// A rotated agent token lives in the agent-token file, which the
		// cluster's bootstrap data carries to every server.
		if storedAgent, err := readToken(l.AgentTokenFile()); err == nil && storedAgent.Password != stored.Password {
			agentSecret = storedAgent.Password
		}
	}
	if agentSecret == "" {
		agentSecret = secret
	}
	return newTokens(caPEM, secret, agentSecret), nil
}

func newTokens(caPEM []byte, server, agent string) tokens {
	return tokens{server: token.New(caPEM, token.RoleServer, server), agent: token.New(caPEM, token.RoleNode, agent)}
}

// writeTokens writes <data-dir>/server/token and agent-token in the secure
// form, once the datastore has accepted the server token.
func writeTokens(l layout.Server, t tokens) error {
	if err := pki.WriteFileAtomic(l.TokenFile(), []byte(t.server.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	if err := pki.WriteFileAtomic(l.AgentTokenFile(), []byte(t.agent.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("agent token file: %w", err)
	}
	return nil
}

func readToken(path string) (token.Token, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return token.Token{}, nil
	}
	if err != nil {
		return token.Token{}, fmt.Errorf("token file: %w", err)
	}
	t, err := token.Parse(string(data))
	if err != nil {
		return token.Token{}, fmt.Errorf("token file %s: %w", path, err)
	}
	return t, nil
}

// rotated is t after the server token became secret: the agent token
// follows when it was the same as the server's.
func rotated(t tokens, caPEM []byte, secret string) tokens {
	agent := t.agent.Password
	if agent == t.server.Password {
		agent = secret
	}
	return newTokens(caPEM, secret, agent)
}

// liveTokens are the server's tokens while it runs: a rotation changes
// them, on this server or (noticed by tokenWatcher) another.
type liveTokens struct {
	layout layout.Server
	ca     []byte
	mu     sync.RWMutex
	t      tokens
}

func (lt *liveTokens) get() tokens {
	lt.mu.RLock()
	defer lt.mu.RUnlock()
	return lt.t
}

// secrets are the server and agent secrets, for the supervisor.
func (lt *liveTokens) secrets() (string, string) {
	t := lt.get()
	return t.server.Password, t.agent.Password
}

// set writes the token files and makes t current.
func (lt *liveTokens) set(t tokens) error {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	if err := writeTokens(lt.layout, t); err != nil {
		return err
	}
	lt.t = t
	return nil
}
