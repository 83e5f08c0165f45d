package harness

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

var (
	storeBuildOnce sync.Once
	storeBin       string
	storeBuildDir  string
	storeBuildErr  error
)

// Cleanup removes what the harness built for this process (the sessionstore binary). Call it when
// every env is closed (end of TestMain, of the demo, of the benchmark).
func Cleanup() {
	if storeBuildDir != "" {
		_ = os.RemoveAll(storeBuildDir)
	}
}

// StoreBinary builds sessionstore once per process (or uses $ACCESSPROXY_SESSIONSTORE_BIN).
func StoreBinary() (string, error) {
	storeBuildOnce.Do(func() {
		if b := os.Getenv("ACCESSPROXY_SESSIONSTORE_BIN"); b != "" {
			storeBin = b
			return
		}
		root, err := RepoRoot()
		if err != nil {
			storeBuildErr = err
			return
		}
		dir, err := os.MkdirTemp("", "accessproxy-sessionstore-bin-")
		if err != nil {
			storeBuildErr = err
			return
		}
		storeBuildDir = dir
		bin := filepath.Join(dir, "sessionstore")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/sessionstore")
		cmd.Dir = filepath.Join(root, "sessionstore")
		out, err := cmd.CombinedOutput()
		if err != nil {
			storeBuildErr = fmt.Errorf("building sessionstore: %v\n%s", err, out)
			return
		}
		storeBin = bin
	})
	return storeBin, storeBuildErr
}

// RandomString returns n random bytes, base64url encoded.
func RandomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Store is a running sessionstore process (bolt backend, or mongo: see StartStoreWith).
type Store struct {
	URL      string
	Port     int
	Token    string
	Key      string // base64 of 32 bytes
	BoltPath string // bolt backend: the database file

	Backend       string // "bolt", "mongo" or "postgres"
	MongoURI      string // mongo backend
	MongoDatabase string // mongo backend
	PostgresURL   string // postgres backend
	Dir           string // the store's own directory (log, bolt file)

	name     string
	env      *Env
	bin      string
	proc     *Proc
	extraEnv []string
}

// StoreOptions say how to start a sessionstore (zero value: bolt, random token and key, free port).
type StoreOptions struct {
	Port          int    // 0 = a free one
	Backend       string // "bolt" (default) or "mongo"
	MongoURI      string // required with the mongo backend
	MongoDatabase string // mongo backend; default "accessproxy"
	PostgresURL   string // required with the postgres backend
	// Token and Key: "" = random. Replicas over one database must share the key (it encrypts the
	// stored Strapi JWTs); their tokens may differ (each plugin presents its own store's).
	Token string
	Key   string // base64 of 32 bytes
	Name  string // process name in logs (default "sessionstore")
	// Env is extra environment of the process, e.g. SESSIONSTORE_CONSOLE_LISTEN (every flag has one).
	Env []string
}

// StartStore builds (once) and starts a sessionstore with a random token and key, its bolt file in
// the env's dir, and waits for /healthz.
func StartStore(env *Env) (*Store, error) { return StartStoreAt(env, 0) }

// StartStoreAt is StartStore on a given port (0 = a free one).
func StartStoreAt(env *Env, port int) (*Store, error) {
	return StartStoreWith(env, StoreOptions{Port: port})
}

// NewStoreKey returns a random encryption key for the store (32 bytes, base64).
func NewStoreKey() string {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(key)
}

// StartStoreWith starts a sessionstore as opts say and waits for /healthz. With the mongo backend
// the store itself waits up to 30 s for the database, so the wait here is longer.
func StartStoreWith(env *Env, opts StoreOptions) (*Store, error) {
	bin, err := StoreBinary()
	if err != nil {
		return nil, err
	}
	if opts.Backend == "" {
		opts.Backend = "bolt"
	}
	if opts.Backend != "bolt" && opts.Backend != "mongo" && opts.Backend != "postgres" {
		return nil, fmt.Errorf("sessionstore backend %q: want bolt, mongo or postgres", opts.Backend)
	}
	if opts.Backend == "postgres" && opts.PostgresURL == "" {
		return nil, fmt.Errorf("sessionstore: the postgres backend needs a PostgresURL")
	}
	if opts.Backend == "mongo" {
		if opts.MongoURI == "" {
			return nil, fmt.Errorf("sessionstore: the mongo backend needs a MongoURI")
		}
		if opts.MongoDatabase == "" {
			opts.MongoDatabase = "accessproxy"
		}
	}
	if opts.Token == "" {
		opts.Token = RandomString(48)
	}
	if opts.Key == "" {
		opts.Key = NewStoreKey()
	}
	if opts.Name == "" {
		opts.Name = "sessionstore"
	}
	dir, err := os.MkdirTemp(env.Dir, opts.Name+"-")
	if err != nil {
		return nil, err
	}
	s := &Store{
		Token:         opts.Token,
		Key:           opts.Key,
		Backend:       opts.Backend,
		MongoURI:      opts.MongoURI,
		MongoDatabase: opts.MongoDatabase,
		PostgresURL:   opts.PostgresURL,
		Dir:           dir,
		name:          opts.Name,
		env:           env,
		bin:           bin,
		extraEnv:      opts.Env,
	}
	if s.Backend == "bolt" {
		s.BoltPath = filepath.Join(dir, "sessions.db")
	}
	port := opts.Port
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s.Port = port
		if s.Port == 0 {
			if s.Port, err = FreePort(); err != nil {
				return nil, err
			}
		}
		s.URL = fmt.Sprintf("http://127.0.0.1:%d", s.Port)
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
		if s.proc == nil || !addrInUse(s.proc.Log()) || port != 0 {
			return nil, lastErr
		}
	}
	return nil, lastErr
}

func (s *Store) start() error {
	args := []string{"--listen", fmt.Sprintf("127.0.0.1:%d", s.Port), "--backend", s.Backend}
	// Secrets through the environment, not the command line (the URI may carry a password).
	env := append([]string{"SESSIONSTORE_TOKEN=" + s.Token, "SESSIONSTORE_ENCRYPTION_KEY=" + s.Key}, s.extraEnv...)
	ready := 20 * time.Second
	if s.Backend == "mongo" {
		args = append(args, "--mongo-database", s.MongoDatabase)
		env = append(env, "SESSIONSTORE_MONGO_URI="+s.MongoURI)
		ready = 45 * time.Second // the store waits up to 30 s for the database and its indexes
	} else if s.Backend == "postgres" {
		env = append(env, "SESSIONSTORE_POSTGRES_URL="+s.PostgresURL)
		ready = 45 * time.Second // the store waits up to 30 s for the database and its migrations
	} else {
		args = append(args, "--bolt-path", s.BoltPath)
	}
	p, err := s.env.Start(ProcSpec{
		Name: s.name,
		Path: s.bin,
		Args: args,
		Env:  env,
		Log:  filepath.Join(s.Dir, "sessionstore.log"),
	})
	if err != nil {
		return err
	}
	s.proc = p
	client := &http.Client{Timeout: time.Second}
	err = waitFor(ready, 50*time.Millisecond, p, func() (bool, error) {
		resp, err := client.Get(s.URL + "/healthz")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		p.Stop(2 * time.Second)
		return fmt.Errorf("sessionstore: %v\n%s", err, tailString(p.Log(), 30))
	}
	return nil
}

// Kill SIGKILLs the store.
func (s *Store) Kill() {
	if s.proc != nil {
		s.proc.Kill()
	}
}

// Stop SIGTERMs the store and waits for it to exit.
func (s *Store) Stop() {
	if s.proc != nil {
		s.proc.Stop(10 * time.Second)
	}
}

// Restart starts the store again on the same port and bolt file or database (stopping it first if
// running).
func (s *Store) Restart() error {
	if s.proc != nil && !s.proc.Exited() {
		s.Stop()
	}
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.start(); err == nil {
			return nil
		}
		if s.proc == nil || !addrInUse(s.proc.Log()) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
	return err
}

// Healthy says whether /healthz answers 200.
func (s *Store) Healthy() bool {
	resp, err := (&http.Client{Timeout: time.Second}).Get(s.URL + "/healthz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Proc is the current process.
func (s *Store) Proc() *Proc { return s.proc }
