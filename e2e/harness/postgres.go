package harness

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PostgreSQL 15 (Debian's postgresql, installed when missing by scripts/ensure-postgres.sh) as a
// process of an env: the database of the multi-node tests with sessionstore --backend postgres.
// The server runs in the foreground (so that Kill is a real SIGKILL of the postmaster), as the
// unprivileged user nobody when the tests run as root (PostgreSQL refuses root), with trust auth on
// loopback only and its unix socket in its own directory.

var (
	pgBinOnce sync.Once
	pgBinDir  string
	pgBinErr  error
)

// PostgresBinDir resolves initdb/postgres: $ACCESSPROXY_POSTGRES_BIN or scripts/ensure-postgres.sh.
func PostgresBinDir(logW io.Writer) (string, error) {
	pgBinOnce.Do(func() {
		if d := os.Getenv("ACCESSPROXY_POSTGRES_BIN"); d != "" {
			pgBinDir = d
			return
		}
		pgBinDir, pgBinErr = runScript(logW, "ensure-postgres.sh")
	})
	return pgBinDir, pgBinErr
}

// Postgres is a running PostgreSQL: one port and one data directory for its whole life, so that
// Kill + Restart is a database restart with its data kept.
type Postgres struct {
	Port    int
	Dir     string // data directory and socket directory live below it
	LogPath string

	env      *Env
	bin      string
	asUs     []string // setpriv prefix when running as root, else nil
	settings []string // extra -c name=value
	proc     *Proc
}

// URL is the connection string of database db (user postgres, trust auth).
func (p *Postgres) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.Port, db)
}

// Addr is 127.0.0.1:port.
func (p *Postgres) Addr() string { return fmt.Sprintf("127.0.0.1:%d", p.Port) }

// StartPostgres initialises a cluster in a new directory (removed when the env closes) and starts
// it, with extra server settings ("name=value").
func StartPostgres(env *Env, logW io.Writer, settings ...string) (*Postgres, error) {
	p, err := newPostgres(env, logW, settings)
	if err != nil {
		return nil, err
	}
	if err := p.as("initdb", "-D", p.dataDir(), "-U", "postgres", "--auth=trust", "--no-sync", "--encoding=UTF8", "--locale=C"); err != nil {
		return nil, err
	}
	return p, p.start()
}

// StartPostgresStandby makes a streaming standby of primary (pg_basebackup -R; it connects as
// application_name "standby", the name to put in the primary's synchronous_standby_names) on a
// port of its own, and starts it.
func StartPostgresStandby(env *Env, logW io.Writer, primary *Postgres, settings ...string) (*Postgres, error) {
	p, err := newPostgres(env, logW, settings)
	if err != nil {
		return nil, err
	}
	conn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres application_name=standby", primary.Port)
	if err := p.as("pg_basebackup", "-d", conn, "-D", p.dataDir(), "-R", "-X", "stream", "--no-sync"); err != nil {
		return nil, err
	}
	return p, p.start()
}

// Promote makes a standby the primary and waits until it is.
func (p *Postgres) Promote() error {
	return p.as("pg_ctl", "-D", p.dataDir(), "-w", "-t", "60", "promote")
}

// as runs one of the server's programs as the server's user.
func (p *Postgres) as(prog string, args ...string) error {
	argv := append(append(append([]string{}, p.asUs...), filepath.Join(p.bin, prog)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v\n%s", prog, err, out)
	}
	return nil
}

func newPostgres(env *Env, logW io.Writer, settings []string) (*Postgres, error) {
	if logW == nil {
		logW = os.Stderr
	}
	bin, err := PostgresBinDir(logW)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}
	// Not below env.Dir: the server's user must be able to reach it.
	dir, err := os.MkdirTemp("", "e2e-postgres-")
	if err != nil {
		return nil, err
	}
	env.OnClose(func() { _ = os.RemoveAll(dir) })
	p := &Postgres{Dir: dir, LogPath: filepath.Join(dir, "postgres.log"), env: env, bin: bin, settings: settings}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("nobody")
		if err != nil {
			return nil, fmt.Errorf("running as root and no user nobody to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		p.asUs = []string{"setpriv", "--reuid=" + u.Uid, "--regid=" + u.Gid, "--clear-groups", "--"}
	}
	if p.Port, err = FreePort(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Postgres) dataDir() string { return filepath.Join(p.Dir, "data") }

func (p *Postgres) start() error {
	from := logSize(p.LogPath)
	args := append(append([]string{}, p.asUs...), filepath.Join(p.bin, "postgres"), "-D", p.dataDir(),
		"-c", "port="+strconv.Itoa(p.Port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+p.Dir,
		"-c", "max_connections=200", "-c", "fsync=on", "-c", "synchronous_commit=on")
	for _, kv := range p.settings {
		args = append(args, "-c", kv)
	}
	proc, err := p.env.Start(ProcSpec{Name: "postgres", Path: args[0], Args: args[1:], Log: p.LogPath, Env: []string{"LC_ALL=C"}})
	if err != nil {
		return err
	}
	p.proc = proc
	err = waitFor(60*time.Second, 50*time.Millisecond, proc, func() (bool, error) {
		// A standby says "ready to accept read-only connections".
		if log := proc.Log(); int64(len(log)) < from || !strings.Contains(log[from:], "database system is ready to accept") {
			return false, nil
		}
		return p.Accepting(), nil
	})
	if err != nil {
		proc.Stop(3 * time.Second)
		return fmt.Errorf("postgres on %s: %v\n%s", p.Addr(), err, tailString(proc.Log(), 30))
	}
	return nil
}

// Kill SIGKILLs the postmaster (a crash; its backends exit when they notice) and waits for it.
func (p *Postgres) Kill() {
	if p.proc != nil {
		p.proc.Kill()
	}
}

// Restart starts the server again on the same port and data (after Kill: crash recovery first).
func (p *Postgres) Restart() error {
	if p.proc != nil && !p.proc.Exited() {
		p.proc.Stop(10 * time.Second)
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = p.start(); err == nil {
			return nil
		}
		// Backends of the killed postmaster may hold the shared memory a moment longer.
		if !strings.Contains(err.Error(), "already exists") && !strings.Contains(err.Error(), "in use") {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
	return err
}

// Accepting says whether the port accepts connections now.
func (p *Postgres) Accepting() bool {
	c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
