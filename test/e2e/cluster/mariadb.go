package cluster

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/k3ha/k3ha/test/e2e/harness"
)

// MariaDB is a MariaDB server of the test's own (Debian's
// mariadb-server-core), like Postgres: its own data dir, a test host's
// address, never a system-wide instance.
type MariaDB struct {
	T        testing.TB
	Host     *harness.Host
	Dir      string
	Password string
	Proc     *harness.Process

	as account
}

// MariaDBAvailable reports whether the server programs are installed.
func MariaDBAvailable() error {
	for _, p := range []string{"mariadbd", "mariadb-install-db"} {
		if _, err := exec.LookPath(p); err != nil {
			if _, err := os.Stat(filepath.Join("/usr/sbin", p)); err != nil {
				return fmt.Errorf("%s not found; install Debian's mariadb-server-core and mariadb-client-core (.ci/run does)", p)
			}
		}
	}
	return nil
}

// NewMariaDB creates the system tables in a new data dir; nothing runs
// until Start.
func NewMariaDB(t testing.TB, host *harness.Host) *MariaDB {
	t.Helper()
	if err := MariaDBAvailable(); err != nil {
		t.Fatal(err)
	}
	as, err := unprivileged("mysql", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	dir := dbDir(t, "k3ha-e2e-mariadb-")
	m := &MariaDB{T: t, Host: host, Dir: dir, Password: dbPassword(), as: as}
	if err := os.Mkdir(m.dataDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	// Runs at every start, before clients are let in: the account k3ha uses.
	initSQL := fmt.Sprintf("CREATE USER IF NOT EXISTS 'k3ha'@'%%' IDENTIFIED BY '%s';\nGRANT ALL ON *.* TO 'k3ha'@'%%';\n", m.Password)
	if err := os.WriteFile(m.initFile(), []byte(initSQL), 0o600); err != nil {
		t.Fatal(err)
	}
	as.own(t, m.initFile(), m.dataDir(), dir)
	as.run(t, dir, "mariadb-install-db", "--no-defaults", "--datadir="+m.dataDir(),
		"--auth-root-authentication-method=normal", "--skip-test-db")
	return m
}

func (m *MariaDB) dataDir() string  { return filepath.Join(m.Dir, "data") }
func (m *MariaDB) initFile() string { return filepath.Join(m.Dir, "init.sql") }

// Addr is where the server listens.
func (m *MariaDB) Addr() string { return net.JoinHostPort(m.Host.IP.String(), "3306") }

// DSN is the --datastore-endpoint of a k3ha server using this database.
func (m *MariaDB) DSN(database string) string {
	return fmt.Sprintf("mysql://k3ha:%s@tcp(%s)/%s", m.Password, m.Addr(), database)
}

// Start runs mariadbd in its host as the unprivileged account and waits
// until it accepts connections.
func (m *MariaDB) Start() {
	m.T.Helper()
	m.Proc = m.as.startServer(m.T, m.Host, filepath.Join(m.Dir, "mariadb.log"),
		"mariadbd", "--no-defaults", "--datadir="+m.dataDir(), "--bind-address="+m.Host.IP.String(), "--port=3306",
		"--socket="+filepath.Join(m.Dir, "mysqld.sock"), "--pid-file="+filepath.Join(m.Dir, "mysqld.pid"),
		"--init-file="+m.initFile(), "--skip-name-resolve", "--max-connections=300",
		// Not the note on every connection a killed server left open: the
		// end of a failed test's output is for the k3ha logs before it.
		"--log-warnings=1")
	waitAccepting(m.T, m.Proc, "mariadbd", func() (bool, error) {
		c, err := net.DialTimeout("tcp", m.Addr(), 2*time.Second)
		if err != nil {
			return false, err
		}
		c.Close()
		return true, nil
	})
}
