package harness

// The repository the harness runs from, and the scripts in it that build or install its parts.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// RepoRoot finds the repository root: $ACCESSPROXY_REPO, or the nearest parent of the working
// directory holding .traefik.yml and e2e/.
func RepoRoot() (string, error) {
	if r := os.Getenv("ACCESSPROXY_REPO"); r != "" {
		return filepath.Abs(r)
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, ".traefik.yml")) && fileExists(filepath.Join(dir, "e2e", "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found (set ACCESSPROXY_REPO)")
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// runScript runs a repo script with bash and returns its trimmed stdout; its stderr goes to logW
// (and is returned in the error).
func runScript(logW io.Writer, script string, args ...string) (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	var out, errb bytes.Buffer
	cmd := exec.Command("bash", append([]string{filepath.Join(root, "scripts", script)}, args...)...)
	cmd.Dir = root
	cmd.Stdout = &out
	if logW != nil {
		cmd.Stderr = io.MultiWriter(&errb, logW)
	} else {
		cmd.Stderr = &errb
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("scripts/%s failed: %v\n%s", script, err, tailString(errb.String(), 40))
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return strings.TrimSpace(lines[len(lines)-1]), nil
}

func tailString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
