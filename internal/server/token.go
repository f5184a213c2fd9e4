package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

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

// ensureTokens writes <data-dir>/server/token and agent-token in the secure
// form. The secret is the one the user gave, else the one stored, else new.
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
	switch {
	case stored.Password != "" && secret != "" && secret != stored.Password:
		return tokens{}, fmt.Errorf("--token differs from the token this server was set up with (%s); start it with the original token", l.TokenFile())
	case secret == "":
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
		agentSecret = secret
	}
	t := tokens{
		server: token.New(caPEM, token.RoleServer, secret),
		agent:  token.New(caPEM, token.RoleNode, agentSecret),
	}
	if err := pki.WriteFileAtomic(l.TokenFile(), []byte(t.server.String()+"\n"), 0o600); err != nil {
		return tokens{}, fmt.Errorf("token file: %w", err)
	}
	if err := pki.WriteFileAtomic(l.AgentTokenFile(), []byte(t.agent.String()+"\n"), 0o600); err != nil {
		return tokens{}, fmt.Errorf("agent token file: %w", err)
	}
	return t, nil
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
