// Package postgres starts throwaway PostgreSQL clusters for tests and benchmarks: initdb and
// pg_ctl of Debian's postgresql package (installed by scripts/ensure-postgres.sh when missing), a
// cluster in a temp dir on a free localhost port, its unix socket in that dir, trust auth on
// loopback only. PostgreSQL refuses to run as root, so as root the cluster runs as the unprivileged
// user `nobody`. ACCESSPROXY_TEST_POSTGRES_URL points the tests at an existing server instead.
package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb"
)

// EnvURL names a server to test against instead of a throwaway cluster (a role that may create
// databases).
const EnvURL = "ACCESSPROXY_TEST_POSTGRES_URL"

// EnvRequire makes missing binaries a failure instead of a skip (CI, `make store_test`).
const EnvRequire = "ACCESSPROXY_REQUIRE_POSTGRES"

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// BinDir returns the directory of initdb, pg_ctl and postgres: $ACCESSPROXY_POSTGRES_BIN, else what
// scripts/ensure-postgres.sh prints with ACCESSPROXY_POSTGRES_NO_INSTALL=1 (it finds, never installs,
// from tests). A missing install skips the test, or fails it under ACCESSPROXY_REQUIRE_POSTGRES.
func BinDir(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		if d := os.Getenv("ACCESSPROXY_POSTGRES_BIN"); d != "" {
			binDir = d
			return
		}
		out, err := testdb.Ensure("ensure-postgres.sh", []string{"ACCESSPROXY_POSTGRES_NO_INSTALL=1"}, nil)
		if err != nil {
			binErr = fmt.Errorf("PostgreSQL binaries not found (run scripts/ensure-postgres.sh): %w", err)
			return
		}
		binDir = out
	})
	if binErr == nil {
		if _, err := os.Stat(filepath.Join(binDir, "initdb")); err != nil {
			binErr = fmt.Errorf("PostgreSQL binaries not found in %s: %w", binDir, err)
		}
	}
	if binErr != nil {
		if os.Getenv(EnvRequire) != "" {
			tb.Fatalf("%v (%s is set)", binErr, EnvRequire)
		}
		tb.Skipf("skipping: %v; set %s=1 to fail instead", binErr, EnvRequire)
	}
	return binDir
}

// Cluster is one throwaway PostgreSQL server.
type Cluster struct {
	Dir  string // data directory (also the unix socket directory)
	Port int
	// Settings are extra `-c name=value` server settings, after (so over) the test defaults.
	Settings []string
	bin      string
	uid      *syscall.Credential // nil: run as ourselves

	mu      sync.Mutex
	running bool
}

// URL is the connection string of a database of the cluster (user postgres, trust auth).
func (c *Cluster) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, db)
}

// Start runs initdb in a fresh temp dir and starts the cluster with the extra settings; Remove
// deletes it.
func Start(tb testing.TB, settings ...string) (*Cluster, error) {
	tb.Helper()
	c, err := newCluster(tb, settings)
	if err != nil {
		return nil, err
	}
	if err := c.run("initdb", "-D", filepath.Join(c.Dir, "data"), "-U", "postgres", "--auth=trust",
		"--no-sync", "--encoding=UTF8", "--locale=C"); err != nil {
		_ = os.RemoveAll(c.Dir)
		return nil, err
	}
	if err := c.Restart(); err != nil {
		_ = os.RemoveAll(c.Dir)
		return nil, err
	}
	return c, nil
}

// StartStandby makes a streaming standby of primary (pg_basebackup -R, so it follows the primary
// as application_name "standby") on a port of its own and starts it.
func StartStandby(tb testing.TB, primary *Cluster, settings ...string) (*Cluster, error) {
	tb.Helper()
	c, err := newCluster(tb, settings)
	if err != nil {
		return nil, err
	}
	conn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres application_name=standby", primary.Port)
	if err := c.run("pg_basebackup", "-d", conn, "-D", filepath.Join(c.Dir, "data"), "-R", "-X", "stream", "--no-sync"); err != nil {
		_ = os.RemoveAll(c.Dir)
		return nil, err
	}
	if err := c.Restart(); err != nil {
		_ = os.RemoveAll(c.Dir)
		return nil, err
	}
	return c, nil
}

// newCluster makes the directory (owned by the user the server runs as) and picks a free port.
func newCluster(tb testing.TB, settings []string) (*Cluster, error) {
	tb.Helper()
	bin := BinDir(tb)
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, bin: bin, Settings: settings}
	if os.Geteuid() == 0 {
		if c.uid, err = nobody(); err != nil {
			return nil, err
		}
		if err := os.Chown(dir, int(c.uid.Uid), int(c.uid.Gid)); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	c.Port = ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return c, nil
}

func nobody() (*syscall.Credential, error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("running as root and no user nobody to run PostgreSQL as: %w", err)
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// run runs one of the cluster's programs as the cluster's user; its output goes into the error.
func (c *Cluster) run(prog string, args ...string) error {
	cmd := exec.Command(filepath.Join(c.bin, prog), args...)
	cmd.Dir = c.Dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if c.uid != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.uid}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w\n%s", prog, err, out)
	}
	return nil
}

// Restart starts the server on the same port and data (after Stop or Kill); pg_ctl -w waits until
// it accepts connections. Test settings: no fsync (the data is thrown away), enough connections
// for many pools.
func (c *Cluster) Restart() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	opts := fmt.Sprintf("-c port=%d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off "+
		"-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB", c.Port, c.Dir)
	for _, kv := range c.Settings {
		opts += " -c " + kv
	}
	if err := c.run("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-l", filepath.Join(c.Dir, "log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "log"))
		return fmt.Errorf("%w\n%s", err, log)
	}
	c.running = true
	return nil
}

// Stop shuts the server down (fast: active connections are ended).
func (c *Cluster) Stop() { c.stop("fast") }

// Kill stops it as a crash would (immediate: no shutdown checkpoint).
func (c *Cluster) Kill() { c.stop("immediate") }

// Kill9 sends SIGKILL to the postmaster (its backends exit when they notice it is gone), as a
// machine dying would; the data directory stays.
func (c *Cluster) Kill9() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	raw, err := os.ReadFile(filepath.Join(c.Dir, "data", "postmaster.pid"))
	if err != nil {
		return err
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		return err
	}
	c.running = false
	return syscall.Kill(pid, syscall.SIGKILL)
}

// Promote makes a standby the primary and waits until it is (pg_ctl promote -w).
func (c *Cluster) Promote() error {
	return c.run("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-w", "-t", "60", "promote")
}

func (c *Cluster) stop(mode string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return
	}
	_ = c.run("pg_ctl", "-D", filepath.Join(c.Dir, "data"), "-m", mode, "-w", "stop")
	c.running = false
}

// Remove stops the server and deletes its directory.
func (c *Cluster) Remove() {
	c.Stop()
	_ = os.RemoveAll(c.Dir)
}

var (
	sharedOnce sync.Once
	shared     *Cluster
	sharedErr  error
)

// SharedServer returns the URL of ACCESSPROXY_TEST_POSTGRES_URL's server, else of a cluster started
// once per test binary (call StopShared from TestMain), to create databases on (NewDatabase).
func SharedServer(tb testing.TB) string {
	tb.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	BinDir(tb) // skips (or fails) before anything starts
	sharedOnce.Do(func() { shared, sharedErr = Start(tb) })
	if sharedErr != nil {
		tb.Fatalf("starting PostgreSQL: %v", sharedErr)
	}
	return shared.URL("postgres")
}

// IsThrowaway reports whether SharedServer is a cluster started here.
func IsThrowaway() bool { return os.Getenv(EnvURL) == "" }

// StopShared stops the shared cluster and removes its directory.
func StopShared() {
	if shared != nil {
		shared.Remove()
	}
}

// NewDatabase creates a fresh database on the server at serverURL and returns its URL; it is
// dropped when the test ends (connections still open are ended first).
func NewDatabase(tb testing.TB, serverURL string) string {
	tb.Helper()
	name := DBName("t")
	if err := admin(serverURL, `CREATE DATABASE `+name); err != nil {
		tb.Fatalf("creating database: %v", err)
	}
	tb.Cleanup(func() { _ = admin(serverURL, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`) })
	cfg, err := pgx.ParseConfig(serverURL)
	if err != nil {
		tb.Fatal(err)
	}
	return withDatabase(serverURL, cfg.Database, name)
}

// withDatabase replaces the database of a postgres:// URL.
func withDatabase(u, from, to string) string {
	base, query, _ := strings.Cut(u, "?")
	if from != "" && strings.HasSuffix(base, "/"+from) {
		base = strings.TrimSuffix(base, "/"+from)
	}
	base = strings.TrimSuffix(base, "/") + "/" + to
	if query != "" {
		return base + "?" + query
	}
	return base
}

func admin(serverURL, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(ctx, sql)
	return err
}

// DBName returns a fresh database name (lower case: an unquoted identifier).
func DBName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}
