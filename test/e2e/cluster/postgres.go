package cluster

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/harness"
)

// Postgres is a PostgreSQL server of the test's own (Debian's postgresql
// package), in a data dir of its own, listening on a test host's address
// like a database machine on the LAN. It never uses a system-wide instance.
type Postgres struct {
	T        testing.TB
	Host     *harness.Host
	Dir      string
	Password string
	Proc     *harness.Process

	bin string
	as  account
}

// PostgresBinDir finds the server programs: Debian keeps them under
// /usr/lib/postgresql/<version>/bin, off PATH.
func PostgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", fmt.Errorf("no PostgreSQL server programs (initdb) found; install Debian's postgresql package (.ci/run does)")
}

// NewPostgres initialises a database cluster with a superuser k3ha and a
// random password; nothing runs until Start.
func NewPostgres(t testing.TB, host *harness.Host) *Postgres {
	t.Helper()
	bin, err := PostgresBinDir()
	if err != nil {
		t.Fatal(err)
	}
	as, err := unprivileged("postgres", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	dir := dbDir(t, "k3ha-e2e-pg-")
	p := &Postgres{T: t, Host: host, Dir: dir, Password: dbPassword(), bin: bin, as: as}
	pwFile := filepath.Join(dir, "pwfile")
	if err := os.WriteFile(pwFile, []byte(p.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p.dataDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	as.own(t, pwFile, p.dataDir(), dir)
	as.run(t, dir, filepath.Join(bin, "initdb"), "-D", p.dataDir(), "-U", "k3ha", "--pwfile", pwFile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
	// Servers connect from the other test hosts.
	hba, err := os.OpenFile(filepath.Join(p.dataDir(), "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(hba, "host all all 0.0.0.0/0 scram-sha-256")
	hba.Close()
	return p
}

func (p *Postgres) dataDir() string { return filepath.Join(p.Dir, "data") }

// Addr is where the server listens.
func (p *Postgres) Addr() string { return net.JoinHostPort(p.Host.IP.String(), "5432") }

// DSN is the --datastore-endpoint of a k3ha server using this database.
func (p *Postgres) DSN(database string) string {
	return fmt.Sprintf("postgres://k3ha:%s@%s/%s?sslmode=disable", p.Password, p.Addr(), database)
}

// Start runs postgres in its host as the unprivileged account and waits
// until it accepts connections. The harness kills it with the test.
func (p *Postgres) Start() {
	p.T.Helper()
	p.Proc = p.as.startServer(p.T, p.Host, filepath.Join(p.Dir, "postgres.log"),
		filepath.Join(p.bin, "postgres"), "-D", p.dataDir(),
		"-c", "listen_addresses="+p.Host.IP.String(), "-c", "unix_socket_directories="+p.Dir,
		"-c", "max_connections=300")
	waitAccepting(p.T, p.Proc, "postgres", func() (bool, error) {
		out, err := exec.Command(filepath.Join(p.bin, "pg_isready"), "-h", p.Host.IP.String(), "-p", "5432", "-t", "2").CombinedOutput()
		return err == nil, fmt.Errorf("%v: %s", err, out)
	})
}

// Stop shuts postgres down fast (SIGINT: clients are disconnected).
func (p *Postgres) Stop() {
	p.T.Helper()
	if err := p.Proc.Signal(syscall.SIGINT); err != nil {
		p.T.Fatal(err)
	}
	if _, err := p.Proc.Wait(30 * time.Second); err != nil {
		p.T.Fatalf("postgres did not stop: %v", err)
	}
}
