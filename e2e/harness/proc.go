// Package harness starts the real parts of Strapi Access Proxy (Traefik with the plugin loaded as a
// local plugin, the sessionstore binary, a real Strapi 5 or a fake one) as processes on 127.0.0.1,
// each on a free port, each logging to a file, and stops every one of them whatever happens.
package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Env owns a working directory and the processes started in it. Close stops them all.
type Env struct {
	Dir  string
	Logf func(format string, args ...any)

	mu     sync.Mutex
	procs  []*Proc
	closed bool
	extra  []func() // other resources (fake servers) closed with the env
}

// NewEnv makes an environment rooted at dir (created if missing).
func NewEnv(dir string, logf func(string, ...any)) (*Env, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	e := &Env{Dir: dir, Logf: logf}
	registerEnv(e)
	return e, nil
}

// TB is the part of testing.TB the harness needs.
type TB interface {
	Helper()
	Logf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
}

// ForTest makes an env in the test's temp dir; when the test ends (pass, fail or panic) every process
// is stopped, and on failure every log file is printed.
func ForTest(t TB) *Env {
	t.Helper()
	e, err := NewEnv(t.TempDir(), t.Logf)
	if err != nil {
		t.Fatalf("harness env: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			e.DumpLogs(func(s string) { t.Logf("%s", s) })
		}
		e.Close()
	})
	return e
}

// OnClose registers f to run when the env closes (after its processes are stopped).
func (e *Env) OnClose(f func()) {
	e.mu.Lock()
	e.extra = append(e.extra, f)
	e.mu.Unlock()
}

// Close stops every process of the env (SIGTERM to its group, SIGKILL after a grace period).
func (e *Env) Close() {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return
	}
	e.closed = true
	procs := append([]*Proc(nil), e.procs...)
	extra := e.extra
	e.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func(p *Proc) { defer wg.Done(); p.Stop(5 * time.Second) }(p)
	}
	wg.Wait()
	for i := len(extra) - 1; i >= 0; i-- {
		extra[i]()
	}
	unregisterEnv(e)
}

// killAll is the emergency path (signal): SIGKILL to every group, no waiting.
func (e *Env) killAll() {
	e.mu.Lock()
	procs := append([]*Proc(nil), e.procs...)
	e.mu.Unlock()
	for _, p := range procs {
		p.signalGroup(syscall.SIGKILL)
	}
}

// DumpLogs passes each process log (its last 200 lines) to out.
func (e *Env) DumpLogs(out func(string)) {
	e.mu.Lock()
	procs := append([]*Proc(nil), e.procs...)
	e.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range procs {
		if seen[p.LogPath] {
			continue
		}
		seen[p.LogPath] = true
		out(fmt.Sprintf("===== %s log (%s) =====\n%s", p.Name, p.LogPath, tailFile(p.LogPath, 200)))
	}
}

func tailFile(path string, n int) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d earlier lines)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// Proc is one started process, in its own process group, its output appended to LogPath.
type Proc struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	logFile *os.File
}

// ProcSpec says how to start a process.
type ProcSpec struct {
	Name string
	Path string
	Args []string
	Dir  string
	Env  []string // added to os.Environ()
	Log  string   // log file (appended); default Env.Dir/<name>.log
}

// Start starts a process and registers it with the env.
func (e *Env) Start(spec ProcSpec) (*Proc, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return nil, errors.New("env closed")
	}
	logPath := spec.Log
	if logPath == "" {
		logPath = filepath.Join(e.Dir, spec.Name+".log")
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "----- %s start %s: %s %s\n", spec.Name, time.Now().Format(time.RFC3339Nano), spec.Path, strings.Join(spec.Args, " "))
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir = spec.Dir
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout = f
	cmd.Stderr = f
	// Own process group (so the whole tree can be signalled), and killed by the kernel should this
	// process die without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p := &Proc{Name: spec.Name, LogPath: logPath, cmd: cmd, done: make(chan struct{}), logFile: f}
	go func() {
		p.err = cmd.Wait()
		fmt.Fprintf(f, "----- %s exited %s: %v\n", spec.Name, time.Now().Format(time.RFC3339Nano), p.err)
		f.Close()
		close(p.done)
	}()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p, nil
}

// Pid of the process.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited says whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the wait error once exited.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

func (p *Proc) signalGroup(sig syscall.Signal) {
	if p.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// Kill sends SIGKILL to the process group and waits for the process.
func (p *Proc) Kill() {
	p.signalGroup(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *Proc) Stop(grace time.Duration) {
	if p.Exited() {
		p.signalGroup(syscall.SIGKILL) // leftovers of the group, if any
		return
	}
	p.signalGroup(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.signalGroup(syscall.SIGKILL)
		<-p.done
	}
	p.signalGroup(syscall.SIGKILL)
}

// Log returns the process log so far.
func (p *Proc) Log() string {
	raw, _ := os.ReadFile(p.LogPath)
	return string(raw)
}

// FreePort returns a port that was free a moment ago on 127.0.0.1 (callers retry on collision).
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port, nil
}

// PortFree says whether a port can be listened on now.
func PortFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// addrInUse says whether a log shows a bind collision.
func addrInUse(log string) bool {
	return strings.Contains(log, "address already in use") || strings.Contains(log, "EADDRINUSE")
}

// ---- every env of the process, killed on SIGINT/SIGTERM ----

// OnSignal, when set before the first env is made, replaces the default reaction to SIGINT/SIGTERM/
// SIGHUP (SIGKILL every process, exit 130): the demo uses it to stop everything gracefully.
var OnSignal func(os.Signal)

var (
	envsMu     sync.Mutex
	envs       = map[*Env]bool{}
	signalOnce sync.Once
)

func registerEnv(e *Env) {
	envsMu.Lock()
	envs[e] = true
	envsMu.Unlock()
	signalOnce.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
		go func() {
			sig := <-ch
			if OnSignal != nil {
				OnSignal(sig)
				return
			}
			fmt.Fprintf(os.Stderr, "\nharness: %v: stopping every started process\n", sig)
			KillAll()
			os.Exit(130)
		}()
	})
}

func unregisterEnv(e *Env) {
	envsMu.Lock()
	delete(envs, e)
	envsMu.Unlock()
}

// KillAll SIGKILLs every process of every open env.
func KillAll() {
	envsMu.Lock()
	list := make([]*Env, 0, len(envs))
	for e := range envs {
		list = append(list, e)
	}
	envsMu.Unlock()
	for _, e := range list {
		e.killAll()
	}
}

// waitFor polls cond every interval until it returns true, an error, or timeout; it gives up early
// when p has exited.
func waitFor(timeout, interval time.Duration, p *Proc, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited before it was ready: %v", p.Name, p.err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v", timeout)
		}
		time.Sleep(interval)
	}
}

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
