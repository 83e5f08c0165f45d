// Package testdb holds what the test databases' helpers (ferret, postgres) share.
package testdb

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

// Ensure runs the repository's scripts/<script> (an ensure-*.sh: idempotent, cached outside the
// repository) with env added, its stderr to stderr (nil: discarded), and returns what it printed
// on stdout, trimmed: the path it ensured.
func Ensure(script string, env []string, stderr io.Writer) (string, error) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", script))
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = stderr
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}
