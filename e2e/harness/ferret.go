package harness

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// FerretDB v1.24 (MongoDB wire protocol, pure-Go SQLite backend) as a process of an env: the
// database of the multi-node tests (sessionstore --backend mongo). Built once by
// scripts/ensure-ferretdb.sh (from tools/ferretdb, cached outside the repo) unless
// $ACCESSPROXY_FERRETDB_BIN names a binary.

var (
	ferretBinOnce sync.Once
	ferretBin     string
	ferretBinErr  error
)

// FerretBinary resolves FerretDB: $ACCESSPROXY_FERRETDB_BIN or scripts/ensure-ferretdb.sh (which
// builds it on first use, minutes, and caches it). The script's progress goes to logW.
func FerretBinary(logW io.Writer) (string, error) {
	ferretBinOnce.Do(func() {
		if b := os.Getenv("ACCESSPROXY_FERRETDB_BIN"); b != "" {
			ferretBin = b
		} else {
			ferretBin, ferretBinErr = runScript(logW, "ensure-ferretdb.sh")
		}
		if ferretBinErr == nil {
			if st, err := os.Stat(ferretBin); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
				ferretBinErr = fmt.Errorf("ferretdb binary %q is not an executable file (%v)", ferretBin, err)
			}
		}
	})
	return ferretBin, ferretBinErr
}

// Ferret is a running FerretDB: one address and one data directory for its whole life, so that
// Kill + Restart is a database restart with its data kept.
type Ferret struct {
	Addr    string // 127.0.0.1:port
	Port    int
	DataDir string // SQLite files (in the env's dir)
	LogPath string

	env      *Env
	bin      string
	proc     *Proc
	logStart int64
}

// URI is the MongoDB connection string.
func (f *Ferret) URI() string { return "mongodb://" + f.Addr + "/" }

// StartFerret builds FerretDB if needed (logW gets the build's progress; nil = stderr) and starts it
// on a free port with its data in a new directory of the env, waiting until it accepts connections.
func StartFerret(env *Env, logW io.Writer) (*Ferret, error) {
	if logW == nil {
		logW = os.Stderr
	}
	bin, err := FerretBinary(logW)
	if err != nil {
		return nil, fmt.Errorf("FerretDB: %w", err)
	}
	dir, err := os.MkdirTemp(env.Dir, "ferretdb-")
	if err != nil {
		return nil, err
	}
	f := &Ferret{DataDir: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "ferretdb.log"), env: env, bin: bin}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		if f.Port, err = FreePort(); err != nil {
			return nil, err
		}
		f.Addr = fmt.Sprintf("127.0.0.1:%d", f.Port)
		if lastErr = f.start(); lastErr == nil {
			return f, nil
		}
		if f.proc == nil || !addrInUse(f.proc.Log()) {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

func (f *Ferret) start() error {
	f.logStart = logSize(f.LogPath)
	p, err := f.env.Start(ProcSpec{
		Name: "ferretdb",
		Path: f.bin,
		Args: []string{"--listen", f.Addr, "--data-dir", f.DataDir, "--log-level", "warn"},
		Log:  f.LogPath,
	})
	if err != nil {
		return err
	}
	f.proc = p
	// It prints "ferretdb listening on <addr>" once the port accepts connections; a connection is
	// the double check (and the only one should the line ever change).
	err = waitFor(60*time.Second, 50*time.Millisecond, p, func() (bool, error) {
		if !strings.Contains(f.logSince(), "ferretdb listening on") {
			return false, nil
		}
		c, err := net.DialTimeout("tcp", f.Addr, time.Second)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	if err != nil {
		p.Stop(3 * time.Second)
		return fmt.Errorf("ferretdb on %s: %v\n%s", f.Addr, err, tailString(f.logSince(), 30))
	}
	return nil
}

// logSince is this run's part of the log.
func (f *Ferret) logSince() string {
	raw, err := os.ReadFile(f.LogPath)
	if err != nil || int64(len(raw)) < f.logStart {
		return ""
	}
	return string(raw[f.logStart:])
}

// Kill SIGKILLs FerretDB (a crash) and waits for it to exit.
func (f *Ferret) Kill() {
	if f.proc != nil {
		f.proc.Kill()
	}
}

// Stop SIGTERMs FerretDB and waits for it to exit.
func (f *Ferret) Stop() {
	if f.proc != nil {
		f.proc.Stop(10 * time.Second)
	}
}

// Restart starts FerretDB again on the same address and data directory (stopping it first if it
// runs). The port is retried for a while should it not be free yet.
func (f *Ferret) Restart() error {
	if f.proc != nil && !f.proc.Exited() {
		f.Stop()
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = f.start(); err == nil {
			return nil
		}
		if f.proc == nil || !addrInUse(f.logSince()) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
	return err
}

// Accepting says whether the port accepts connections now.
func (f *Ferret) Accepting() bool {
	c, err := net.DialTimeout("tcp", f.Addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Proc is the current process.
func (f *Ferret) Proc() *Proc { return f.proc }
