package supervisor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/k3ha/k3ha/internal/config"
	"github.com/k3ha/k3ha/internal/token"
)

// ErrRejected means the server does not accept the token's secret (401).
var ErrRejected = errors.New("the secret in the token is not this cluster's (HTTP 401)")

// ErrForbidden means the token is valid but its role may not read the path
// (403), e.g. an agent token used to join a server.
var ErrForbidden = errors.New("the token's role lacks access (HTTP 403)")

const (
	requestTimeout = 10 * time.Second
	firstBackoff   = time.Second
	maxBackoff     = 15 * time.Second
	// maxBody bounds what we read; the largest answer, the bootstrap
	// files, is a few tens of KiB.
	maxBody = 16 << 20
)

// Client talks to the supervisor API of one server. It trusts only the
// cluster CA fetched (and, with a secure token, verified) by Dial.
type Client struct {
	url  string // scheme://host:port, no trailing slash
	ca   []byte
	user string
	pass string
	http *http.Client
	// timeout bounds one request (requestTimeout unless set).
	timeout time.Duration
}

// WithTimeout returns a client whose requests may each take up to d: for
// operations that do work, such as a snapshot.
func (c *Client) WithTimeout(d time.Duration) *Client {
	cc := *c
	cc.timeout = d
	return &cc
}

// Dial fetches the cluster CA from serverURL's /cacerts without sending
// credentials, checks it against the token's CA hash (with a bare secret
// it cannot, and warns), and returns a client that trusts exactly that CA.
// role (token.RoleServer or token.RoleNode) is the basic-auth user when
// the token does not name one. Connection errors and 5xx answers are
// retried with backoff from 1 s to 15 s until ctx ends, here and in every
// later request; other errors are returned at once.
func Dial(ctx context.Context, serverURL string, tok token.Token, role string) (*Client, error) {
	base, host, err := parseServerURL(serverURL)
	if err != nil {
		return nil, err
	}
	user := tok.Username
	if user == "" {
		user = role
	}
	if user != token.RoleServer && user != token.RoleNode {
		return nil, fmt.Errorf("dial %s: role %q is neither %q nor %q", base, user, token.RoleServer, token.RoleNode)
	}
	if tok.Password == "" {
		return nil, fmt.Errorf("dial %s: token has no secret", base)
	}

	// The CA is what we are about to learn, so this one request cannot
	// verify the server; it carries no credentials and its answer is
	// checked against the token below instead.
	probeTransport := newTransport(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
	defer probeTransport.CloseIdleConnections()
	probe := &Client{url: base, http: newHTTPClient(probeTransport)}
	caPEM, state, err := probe.get(ctx, PathCACerts, false)
	if err != nil {
		return nil, fmt.Errorf("fetch cluster CA: %w", err)
	}

	if tok.Secure() {
		if err := tok.VerifyCA(caPEM); err != nil {
			return nil, fmt.Errorf("CA served on %s%s is not the one the token pins (another cluster's token, or the connection is intercepted): %w", base, PathCACerts, err)
		}
	} else {
		slog.Warn("token has no CA hash, so the cluster CA cannot be verified; use the K10 form of the token to pin it",
			"url", base+PathCACerts, "ca_sha256", token.HashCA(caPEM))
	}

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("GET %s%s: answer holds no PEM certificate", base, PathCACerts)
	}
	// Fail here, with a clear message, rather than at the first
	// authenticated request if the server's certificate does not fit the
	// CA it hands out (or the name we dialled).
	if err := verifyPeer(state, pool, host); err != nil {
		return nil, fmt.Errorf("server %s presents a certificate that is not valid under the CA it serves on %s: %w", base, PathCACerts, err)
	}

	return &Client{
		url:  base,
		ca:   caPEM,
		user: user,
		pass: tok.Password,
		http: newHTTPClient(newTransport(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})),
	}, nil
}

// CACerts returns the cluster server CA bundle as served on /cacerts.
func (c *Client) CACerts() []byte { return slices.Clone(c.ca) }

// URL returns the server's base URL, e.g. https://10.0.0.1:6443.
func (c *Client) URL() string { return c.url }

// Config returns the cluster's critical settings.
func (c *Client) Config(ctx context.Context) (config.Critical, error) {
	var v config.Critical
	err := c.getJSON(ctx, PathConfig, &v)
	return v, err
}

// Bootstrap returns the cluster's shared secret files (server role only).
func (c *Client) Bootstrap(ctx context.Context) (BootstrapFiles, error) {
	var v BootstrapFiles
	err := c.getJSON(ctx, PathServerBootstrap, &v)
	return v, err
}

// DBInfo returns the etcd members (server role only).
func (c *Client) DBInfo(ctx context.Context) (DBInfo, error) {
	var v DBInfo
	err := c.getJSON(ctx, PathDBInfo, &v)
	return v, err
}

// NodeCerts asks for this node's kubelet and kube-proxy certificates.
func (c *Client) NodeCerts(ctx context.Context, req NodeCertsRequest) (NodeCerts, error) {
	var v NodeCerts
	err := c.postJSON(ctx, PathNodeCerts, req, &v)
	return v, err
}

// Operation asks the server to carry out the operation name with in and
// decodes its answer into out.
func (c *Client) Operation(ctx context.Context, name string, in, out any) error {
	return c.postJSON(ctx, PathOperation+name, in, out)
}

// APIServers returns the "host:port" of every server's API port.
func (c *Client) APIServers(ctx context.Context) ([]string, error) {
	var v []string
	err := c.getJSON(ctx, PathAPIServers, &v)
	return v, err
}

func (c *Client) getJSON(ctx context.Context, path string, v any) error {
	body, _, err := c.get(ctx, path, true)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s%s: decode answer: %w", c.url, path, err)
	}
	return nil
}

// get does GET path, retrying transient failures until ctx ends. Errors
// name the URL and path.
func (c *Client) get(ctx context.Context, path string, auth bool) ([]byte, *tls.ConnectionState, error) {
	return c.do(ctx, http.MethodGet, path, nil, auth)
}

// postJSON sends in as JSON and decodes the answer into out.
func (c *Client) postJSON(ctx context.Context, path string, in, out any) error {
	payload, err := json.Marshal(in)
	if err != nil {
		return err
	}
	body, _, err := c.do(ctx, http.MethodPost, path, payload, true)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("POST %s%s: decode answer: %w", c.url, path, err)
	}
	return nil
}

// do makes a request, retrying transient failures until ctx ends.
func (c *Client) do(ctx context.Context, method, path string, payload []byte, auth bool) ([]byte, *tls.ConnectionState, error) {
	u := c.url + path
	delay := firstBackoff
	var last error
	for attempt := 1; ; attempt++ {
		body, state, retry, err := c.try(ctx, method, u, path, payload, auth)
		if err == nil {
			return body, state, nil
		}
		if ctx.Err() != nil {
			return nil, nil, giveUp(ctx, method, u, attempt, last)
		}
		if !retry {
			return nil, nil, err
		}
		last = err
		slog.Info("waiting for server", "url", u, "attempt", attempt, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, giveUp(ctx, method, u, attempt, last)
		case <-t.C:
		}
		delay = min(2*delay, maxBackoff)
	}
}

func giveUp(ctx context.Context, method, u string, attempts int, last error) error {
	if last == nil {
		return fmt.Errorf("%s %s: %w", method, u, context.Cause(ctx))
	}
	return fmt.Errorf("%s %s: gave up after %d attempts: %w; last error: %w", method, u, attempts, context.Cause(ctx), last)
}

// try makes one request. A retryable error is the bare cause (the caller
// adds the URL); any other error is complete.
func (c *Client) try(ctx context.Context, method, u, path string, payload []byte, auth bool) (body []byte, state *tls.ConnectionState, retry bool, err error) {
	timeout := c.timeout
	if timeout == 0 {
		timeout = requestTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var reqBody io.Reader
	if payload != nil {
		reqBody = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(rctx, method, u, reqBody)
	if err != nil {
		return nil, nil, false, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		err = bare(err)
		if retryable(err) {
			return nil, nil, true, err
		}
		return nil, nil, false, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		err = fmt.Errorf("read answer: %w", err)
		if retryable(err) {
			return nil, nil, true, err
		}
		return nil, nil, false, fmt.Errorf("%s %s: %w", method, u, err)
	}
	if len(body) > maxBody {
		return nil, nil, false, fmt.Errorf("%s %s: answer larger than %d bytes", method, u, maxBody)
	}

	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		return body, resp.TLS, false, nil
	case code >= 500:
		return nil, nil, true, fmt.Errorf("server answered %s: %q", resp.Status, snippet(body))
	case code == http.StatusUnauthorized && auth:
		return nil, nil, false, fmt.Errorf("token rejected by %s (%s %s): %w", c.url, method, path, ErrRejected)
	case code == http.StatusUnprocessableEntity:
		return nil, nil, false, fmt.Errorf("%s: %s", c.url, strings.TrimSpace(string(body)))
	case code == http.StatusForbidden && auth:
		return nil, nil, false, fmt.Errorf("%s %s on %s refused: %s: %w", method, path, c.url, snippet(body), ErrForbidden)
	default:
		return nil, nil, false, fmt.Errorf("%s %s: unexpected answer %s: %q", method, u, resp.Status, snippet(body))
	}
}

// bare strips net/http's *url.Error, whose text repeats the URL we already
// name ourselves.
func bare(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// retryable reports whether err may go away by waiting: the server is
// not up yet, restarting, or the network is not ready. Certificate and
// protocol errors mean a wrong server or URL, which waiting does not fix.
func retryable(err error) bool {
	var (
		verifyErr  *tls.CertificateVerificationError
		unknownCA  x509.UnknownAuthorityError
		badHost    x509.HostnameError
		badCert    x509.CertificateInvalidError
		notTLS     tls.RecordHeaderError
		netErr     net.Error
		dnsErr     *net.DNSError
		opErr      *net.OpError
		transients = []error{
			io.EOF, io.ErrUnexpectedEOF, context.DeadlineExceeded,
			syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
			syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT, syscall.EPIPE,
		}
	)
	switch {
	case errors.As(err, &verifyErr), errors.As(err, &unknownCA), errors.As(err, &badHost),
		errors.As(err, &badCert), errors.As(err, &notTLS):
		return false
	case slices.ContainsFunc(transients, func(t error) bool { return errors.Is(err, t) }):
		return true
	case errors.As(err, &netErr) && netErr.Timeout():
		return true
	case errors.As(err, &dnsErr):
		// The name may resolve once the network is up.
		return true
	default:
		return errors.As(err, &opErr) && opErr.Op == "dial"
	}
}

// snippet keeps error bodies short; they are quoted where used so a
// hostile answer cannot forge log lines.
func snippet(body []byte) string {
	const limit = 200
	s := strings.TrimSpace(string(body))
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	return s
}

func verifyPeer(state *tls.ConnectionState, roots *x509.CertPool, host string) error {
	if state == nil || len(state.PeerCertificates) == 0 {
		return errors.New("no certificate presented")
	}
	inter := x509.NewCertPool()
	for _, c := range state.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := state.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       host,
	})
	return err
}

// parseServerURL returns the base URL (no trailing slash) and host name.
func parseServerURL(s string) (base, host string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("server URL: %w", err)
	}
	if u.User != nil {
		// Credentials come from the token only; do not echo these.
		return "", "", fmt.Errorf("server URL %s must not contain credentials", u.Redacted())
	}
	if u.Scheme != "https" || u.Host == "" {
		return "", "", fmt.Errorf("server URL %q must look like https://<host>:<port>", s)
	}
	return u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/"), u.Hostname(), nil
}

func newTransport(tlsConfig *tls.Config) *http.Transport {
	return &http.Transport{
		// Cluster-internal traffic: a proxy from the environment, meant
		// for the internet, must not see the token or break joins.
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: requestTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: requestTimeout,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        4,
		IdleConnTimeout:     90 * time.Second,
	}
}

func newHTTPClient(t *http.Transport) *http.Client {
	return &http.Client{
		Transport: t,
		// A redirect would be followed with our credentials attached; the
		// supervisor never redirects, so treat one as an unexpected answer.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
