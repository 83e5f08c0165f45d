// Package ferret starts a real MongoDB wire server for tests and benchmarks: FerretDB v1.24.0 with
// its pure-Go SQLite backend, built once by scripts/ensure-ferretdb.sh (from the tiny module
// tools/ferretdb, so FerretDB's dependencies stay out of this module) and cached in
// ~/.cache/strapi-access-proxy/ferretdb-v1.24.0/ferretdb. ACCESSPROXY_TEST_MONGO_URI points the
// tests at a real MongoDB instead; ACCESSPROXY_FERRETDB_BIN at another FerretDB binary.
package ferret

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strapi-access-proxy/accessproxy/sessionstore/internal/testdb"
)

// EnvURI names a MongoDB to test against instead of FerretDB.
const EnvURI = "ACCESSPROXY_TEST_MONGO_URI"

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of the FerretDB binary, building it on first use (minutes, once).
func Binary(tb testing.TB) string {
	tb.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("ACCESSPROXY_FERRETDB_BIN"); p != "" {
			binPath = p
			return
		}
		out, err := testdb.Ensure("ensure-ferretdb.sh", nil, os.Stderr)
		if err != nil {
			binErr = fmt.Errorf("scripts/ensure-ferretdb.sh: %w", err)
			return
		}
		binPath = out
	})
	if binErr != nil {
		tb.Fatalf("building FerretDB: %v", binErr)
	}
	return binPath
}

// Server is one FerretDB process.
type Server struct {
	Addr string // 127.0.0.1:port
	Dir  string // SQLite data directory
	bin  string

	mu  sync.Mutex
	cmd *exec.Cmd
}

// URI is the connection string.
func (s *Server) URI() string { return "mongodb://" + s.Addr + "/" }

// Start runs a FerretDB on a free port with its data in dir.
func Start(tb testing.TB, dir string) (*Server, error) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	s := &Server{Addr: addr, Dir: dir, bin: Binary(tb)}
	return s, s.Restart()
}

// Restart starts the process again on the same address and data (after Kill or Stop).
func (s *Server) Restart() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.Command(s.bin, "--listen", s.Addr, "--data-dir", s.Dir, "--log-level", "error")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the tests
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ferretdb listening") {
				ready <- nil
				break
			}
		}
		ready <- fmt.Errorf("ferretdb exited before listening on %s", s.Addr)
		for sc.Scan() {
		}
	}()
	select {
	case err = <-ready:
	case <-time.After(60 * time.Second):
		err = fmt.Errorf("ferretdb not listening on %s after 60s", s.Addr)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return err
	}
	s.cmd = cmd
	return nil
}

// Kill stops the process with SIGKILL (a crash) and waits for it.
func (s *Server) Kill() { s.stop(syscall.SIGKILL) }

// Stop stops the process with SIGTERM and waits for it.
func (s *Server) Stop() { s.stop(syscall.SIGTERM) }

func (s *Server) stop(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
	sharedDir  string
)

// SharedURI returns ACCESSPROXY_TEST_MONGO_URI if set, else the URI of a FerretDB started once per
// test binary (call StopShared from TestMain). Tests use a fresh database name each (DBName).
func SharedURI(tb testing.TB) string {
	tb.Helper()
	if uri := os.Getenv(EnvURI); uri != "" {
		return uri
	}
	sharedOnce.Do(func() {
		sharedDir, sharedErr = os.MkdirTemp("", "ferretdb-test-")
		if sharedErr == nil {
			shared, sharedErr = Start(tb, sharedDir)
		}
	})
	if sharedErr != nil {
		tb.Fatalf("starting FerretDB: %v", sharedErr)
	}
	return shared.URI()
}

// IsFerret reports whether SharedURI is a FerretDB started here.
func IsFerret() bool { return os.Getenv(EnvURI) == "" }

// StopShared stops the shared FerretDB and removes its data.
func StopShared() {
	if shared != nil {
		shared.Stop()
	}
	if sharedDir != "" {
		_ = os.RemoveAll(sharedDir)
	}
}

// DBName returns a fresh database name.
func DBName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + "_" + hex.EncodeToString(b)
}
