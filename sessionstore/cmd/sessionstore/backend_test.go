package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpenBackend: the one switch refuses what it does not know (a usage error, no storage
// touched) and opens what it does.
func TestOpenBackend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	for _, tc := range []struct {
		name string
		b    backendFlags
		want string
	}{
		{"unknown", backendFlags{backend: "redis", boltPath: path}, `must be bolt, mongo or postgres, got "redis"`},
		{"empty", backendFlags{backend: "", boltPath: path}, `must be bolt, mongo or postgres, got ""`},
		{"case matters", backendFlags{backend: "Bolt", boltPath: path}, `got "Bolt"`},
		{"mongo without uri", backendFlags{backend: "mongo", boltPath: path}, "--mongo-uri"},
		{"postgres without url", backendFlags{backend: "postgres", boltPath: path, mongoURI: "mongodb://x/"}, "--postgres-url (SESSIONSTORE_POSTGRES_URL) is required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := openBackend(t.Context(), &tc.b, openOptions{lockTimeout: time.Second})
			var usage *usageError
			if s != nil || !errors.As(err, &usage) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("openBackend = %v, %v; want a usage error containing %q", s, err, tc.want)
			}
		})
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a refused backend created the file: %v", err)
	}

	b := backendFlags{backend: "bolt", boltPath: path}
	s, err := openBackend(t.Context(), &b, openOptions{lockTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAdminUnknownBackend: the CLI no longer opens the bolt file when --backend names something
// else; it refuses with one line and exit code 2, like the server.
func TestAdminUnknownBackend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"sessions", "list", "--user", "1", "--backend", "redis"}, nil, `--backend (SESSIONSTORE_BACKEND) must be bolt, mongo or postgres, got "redis"`},
		{[]string{"sessions", "revoke", "--user", "1"}, []string{"SESSIONSTORE_BACKEND=bbolt"}, `got "bbolt"`},
		{[]string{"sessions", "revoke", "--session", "x", "--backend", "mongo"}, nil, "--mongo-uri"},
		{[]string{"sessions", "list", "--user", "1"}, []string{"SESSIONSTORE_BACKEND=postgres"}, "--postgres-url"},
	} {
		code, out, stderr := runCLI(t, tc.env, append(tc.args, "--bolt-path", path)...)
		if code != exitUsage || out != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
			t.Fatalf("%v %v = %d %q %q; want exit 2 and one line containing %q", tc.args, tc.env, code, out, stderr, tc.want)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a refused backend created the file: %v", err)
	}
}
